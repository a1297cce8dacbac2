"""The interactive API reference (Swagger UI at /api/v1/docs; /api/v1/redoc leads there), served
from the package under the same Content-Security-Policy as every page.

FastAPI's own pages load Swagger UI from a CDN (and a favicon from another site) and start it
with an inline script: blank offline, and they needed an exemption from the CSP. The UI bundle
comes from the ``fastapi-offline`` wheel (a PyPI dependency, nothing minified is committed here);
each page is plain HTML whose start-up code is an external file under /static/js.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/vendor/api-docs"


def _assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def _page(title: str, openapi_url: str, asset_version: str, head: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{escape(title)}</title>
  <link rel="icon" href="/static/favicon.svg?v={asset_version}" type="image/svg+xml">
  {head}
</head>
<body data-openapi-url="{escape(openapi_url)}">
{body}
</body>
</html>
"""


def install_api_docs(app: FastAPI, *, docs_url: str, redoc_url: str, asset_version: str) -> None:
    """Mount the UI bundle and add the page (``app`` was built with docs_url=None)."""
    assert app.openapi_url is not None  # nosec B101  # type narrowing of a value set in create_app
    openapi_url = app.openapi_url
    title = app.title
    app.mount(ASSETS_URL, StaticFiles(directory=_assets_dir()), name="api-docs-assets")
    v = asset_version

    # Plain Starlette routes, not API routes: pages, outside the OpenAPI document and the SDK.
    async def swagger_ui(_request: Request) -> HTMLResponse:
        return HTMLResponse(_page(
            f"{title} API", openapi_url, v,
            f'<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css?v={v}">',
            f'<div id="swagger-ui"></div>\n'
            f'<script src="{ASSETS_URL}/swagger-ui-bundle.js?v={v}"></script>\n'
            f'<script src="/static/js/api_docs.js?v={v}"></script>',
        ))

    async def redoc(_request: Request) -> RedirectResponse:
        # ReDoc is deliberately not served: its styled-components inject <style> elements, which
        # the CSP's style-src 'self' blocks (ReDoc then shows only "Something went wrong"), and
        # a page-specific 'unsafe-inline' would break "the same CSP on every page". Whoever
        # types /redoc lands on the same reference in Swagger UI.
        return RedirectResponse(docs_url, status_code=307)

    app.add_route(docs_url, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_route(redoc_url, redoc, methods=["GET"], include_in_schema=False)
