"""Quality engine: truth inference, annotator skill, agreement (numpy/scipy only)."""
