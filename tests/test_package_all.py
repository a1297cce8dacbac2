"""The package root's public names, exactly: ``goldlabel`` itself exports only its version;
the libraries are ``goldlabel.quality``, ``goldlabel.models`` and ``goldlabel.client``."""

from __future__ import annotations

import re
import types

import goldlabel


def test_public_names_exactly():
    assert goldlabel.__all__ == ["__version__"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", goldlabel.__version__)
    # subpackages appear as attributes once imported; nothing else is public
    assert [n for n, v in vars(goldlabel).items()
            if not n.startswith("_") and not isinstance(v, types.ModuleType)] == []
