"""The console's import page (issue 12.7): the format menu for a name that does not tell, a JSON
array of items, and a file with a bad byte reported at its line, its good rows kept."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser

SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}


def upload(page, name: str, body: bytes, *, fmt: str = "", partial: bool = False) -> None:
    page.select_option("[data-testid=import-format]", fmt)
    page.set_checked("input[name=partial]", partial)
    page.set_input_files("[data-testid=import-file]", files=[{"name": name, "mimeType": "application/octet-stream",
                                                               "buffer": body}])
    page.click("[data-testid=import-submit]")
    page.wait_for_selector("[data-testid=import-result]:not([hidden])")


def test_format_menu_json_array_and_a_bad_byte(page, server, ui):
    project = server.make_project(SCHEMA, name="formats")
    ui.login(project["manager"], f"/console/projects/{project['id']}/import")

    # A name that does not tell: refused from the name alone, imported once the format is chosen.
    items = json.dumps([{"external_id": f"j{i}", "data": {"text": f"Review {i}"}} for i in range(3)]).encode()
    page.allowed_problems = ("422",)
    upload(page, "export-from-another-tool", items)
    assert "cannot tell the format" in page.inner_text("#import-summary")
    upload(page, "export-from-another-tool", items, fmt="json")
    assert page.inner_text("#import-title") == "Imported"
    assert "json" in page.inner_text("#import-summary")

    # A Latin-1 byte on line 61: the report names line 61; a partial import keeps the other rows.
    rows = [b"external_id,text"] + [b"c%d,review %d" % (n, n) for n in range(2, 71)]
    rows[60] = b"c61,caf\xe9"
    upload(page, "spreadsheet.csv", b"\n".join(rows) + b"\n", partial=True)
    assert page.inner_text("#import-title") == "Imported, with 1 bad row(s) left out"
    cells = page.locator("[data-testid=import-errors] tbody tr").first.locator("td").all_inner_texts()
    assert cells[0] == "61" and cells[2] == "bad_encoding" and cells[3].startswith("column 8:"), cells
    assert "68" in page.inner_text("#import-summary")
