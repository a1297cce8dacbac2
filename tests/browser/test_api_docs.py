"""The API reference pages work offline: Swagger UI and ReDoc come from the package, under the
same Content-Security-Policy as every page (issue 12.9: the docs page loaded Swagger UI from a
CDN, blank without network, and /api/v1/redoc was 404; it now leads to the Swagger page)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

# Every CSP violation the page meets, as the browser reports it to the page itself.
WATCH_CSP = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"""


def _load(page, server, path: str, ready: str) -> list[str]:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.add_init_script(WATCH_CSP)
    response = page.goto(path)
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    page.wait_for_selector(ready)
    assert page.evaluate("window.__csp") == []
    outside = [u for u in requests if not u.startswith(server.base_url) and not u.startswith("data:")]
    assert outside == [], outside
    return requests


def test_swagger_ui_renders_every_operation_offline(page, server, ui):
    requests = _load(page, server, "/api/v1/docs", ".opblock")
    assert any(u.endswith("/api/v1/openapi.json") for u in requests)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/projects/{project_id}/imports" in p for p in paths), paths[:5]
    # The favicon is ours, not another site's.
    assert page.get_attribute("link[rel=icon]", "href").startswith("/static/favicon.svg")
    me = page.locator(".opblock-get:has([data-path='/api/v1/users/me'])").first
    me.locator(".opblock-summary-control").click()
    me.locator(".opblock-body").wait_for()
    assert page.evaluate("window.__csp") == []
    ui.screenshot("api-docs")


def test_redoc_leads_to_the_swagger_page(page, server):
    # ReDoc cannot run under style-src 'self' (it injects <style> elements): deliberately absent.
    _load(page, server, "/api/v1/redoc", ".opblock")
    assert page.url == f"{server.base_url}/api/v1/docs"
