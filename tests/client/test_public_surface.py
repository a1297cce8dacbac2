"""The SDK's public names, its independence from the server code, and its documentation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import goldlabel.client
from goldlabel.client import Client

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def test_public_names():
    assert sorted(goldlabel.client.__all__) == sorted(
        [
            "UNSET",
            "ApiError",
            "BadRequest",
            "Client",
            "Conflict",
            "Forbidden",
            "ImportFailed",
            "Lease",
            "MyAnswer",
            "NotFound",
            "ServerError",
            "TooLarge",
            "Unauthorized",
            "ValidationFailed",
        ]
    )
    for name in goldlabel.client.__all__:
        assert getattr(goldlabel.client, name) is not None


def test_the_sdk_does_not_import_the_server():
    code = (
        "import sys, goldlabel.client, goldlabel.client.transport\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'sqlalchemy')\n"
        "             or m.startswith(('goldlabel.api', 'goldlabel.services', 'goldlabel.storage',\n"
        "                              'goldlabel.domain', 'goldlabel.quality')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"goldlabel.client pulls in server modules: {out.stdout}"


def test_docs_cover_every_method():
    text = DOCS.read_text()
    methods = sorted(n for n in dir(Client) if callable(getattr(Client, n)) and not n.startswith("_"))
    missing = [n for n in methods if f"{n}(" not in text]
    assert not missing, f"docs/sdk.md does not show these Client methods: {missing}"
