"""The OpenAPI contract: bearer auth declared on every operation, problem+json errors, keyset
pagination, and docs/api.md listing every route."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

PREFIX = "/api/v1"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
one_backend = pytest.mark.parametrize("backend", ["sqlite"])  # the document is the same on both


def operations(app) -> list[tuple[str, str, dict]]:
    paths = app.openapi()["paths"]
    return [
        (method.upper(), path, op)
        for path, ops in paths.items()
        if path.startswith(PREFIX + "/")
        for method, op in ops.items()
        if method in HTTP_METHODS
    ]


@one_backend
def test_the_document_is_served_without_credentials(factory):
    anonymous = factory.api_as(None)
    doc = anonymous.get(f"{PREFIX}/openapi.json")
    assert doc.status_code == 200 and doc.json()["openapi"].startswith("3.")
    assert anonymous.get(f"{PREFIX}/docs").status_code == 200


@one_backend
def test_bearer_scheme_is_required_by_every_operation(app):
    schemes = app.openapi()["components"]["securitySchemes"]
    bearer = {
        name
        for name, s in schemes.items()
        if s.get("type") == "http" and s.get("scheme") == "bearer"
    }
    assert bearer, f"no HTTP bearer security scheme in {schemes}"
    ops = operations(app)
    assert len(ops) >= 25
    unsecured = [
        f"{m} {p}"
        for m, p, op in ops
        if not any(set(req) & bearer for req in op.get("security", []))
    ]
    assert not unsecured, f"operations that do not declare the bearer scheme: {unsecured}"


@one_backend
def test_documented_errors_are_problem_json(app):
    wrong = []
    for method, path, op in operations(app):
        errors = {code: r for code, r in op["responses"].items() if code.startswith("4")}
        if "401" not in errors:
            wrong.append(f"{method} {path}: 401 not documented")
        for code, response in errors.items():
            types = set(response.get("content", {}))
            if types and types != {"application/problem+json"}:
                wrong.append(f"{method} {path} {code}: {sorted(types)}")
    assert not wrong, "\n".join(wrong)


def test_keyset_pagination_without_offset_or_count(factory, ctx):
    project = factory.make_project()
    factory.add_items(project, 250)
    api = factory.api_as(project["manager"])
    url = f"{PREFIX}/projects/{project['id']}/items"

    statements: list[str] = []
    offsets: list[object] = []

    def record(_conn, _cursor, statement, parameters, *_args) -> None:
        statements.append(statement.upper())
        # SQLAlchemy's SQLite dialect always writes LIMIT ? OFFSET ?, with 0 when no offset was asked.
        if re.search(r"\bOFFSET \?$", statement.strip(), re.IGNORECASE):
            offsets.append(parameters[-1])
        elif re.search(r"\bOFFSET\b", statement, re.IGNORECASE):
            offsets.append(statement)

    sa.event.listen(ctx.engine, "before_cursor_execute", record)
    try:
        pages, after = [], 0
        while after is not None:
            res = api.get(url, params={"limit": 100, "after": after})
            assert res.status_code == 200, res.text
            page = res.json()
            pages.append(page["items"])
            after = page["next_after"]
            if after is not None:
                assert after == page["items"][-1]["id"]  # the cursor is the last id, not a position
    finally:
        sa.event.remove(ctx.engine, "before_cursor_execute", record)

    assert [len(p) for p in pages] == [100, 100, 50]
    ids = [item["id"] for p in pages for item in p]
    assert ids == sorted(set(ids)) and len(ids) == 250
    item_queries = [s for s in statements if "FROM ITEMS" in s]
    assert item_queries, "the listing read no items?"
    assert all(o == 0 for o in offsets), f"a page was read with OFFSET: {offsets}"
    assert not [s for s in item_queries if re.search(r"\bCOUNT\s*\(", s)], "a page counted items"


def test_page_size_is_bounded(factory, settings):
    project = factory.make_project()
    factory.add_items(project, 3)
    api = factory.api_as(project["manager"])
    url = f"{PREFIX}/projects/{project['id']}/items"
    page = api.get(url, params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_after"] == page["items"][-1]["id"]
    last = api.get(url, params={"limit": 2, "after": page["next_after"]}).json()
    assert len(last["items"]) == 1 and last["next_after"] is None
    huge = api.get(url, params={"limit": settings.page_size_max * 10})
    assert huge.status_code == 200 and huge.json()["next_after"] is None
    for bad in ({"limit": 0}, {"after": -1}, {"limit": "many"}):
        res = api.get(url, params=bad)
        assert res.status_code == 422 and res.json()["code"] == "validation_failed", bad


@one_backend
def test_api_docs_list_every_route(app):
    text = DOCS.read_text()
    missing = [
        f"{m} {p.removeprefix(PREFIX)}"
        for m, p, _ in operations(app)
        if f"`{m} {p.removeprefix(PREFIX)}`" not in text
    ]
    assert not missing, f"docs/api.md does not list these routes (as `METHOD /path`): {missing}"
