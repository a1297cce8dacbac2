"""goldlabel: a self-hosted data engine for high-quality training labels."""

__version__ = "0.1.0"
__all__ = ["__version__"]
