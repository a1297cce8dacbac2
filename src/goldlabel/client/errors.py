"""Exceptions the SDK raises for error responses, built from RFC 9457 problem+json.

Match on the class for the HTTP meaning (``NotFound``, ``Conflict``) and on ``code`` for the
exact reason (``"duplicate_answer"``, ``"lease_expired"``): codes are stable, details are prose.
"""

from __future__ import annotations

from typing import Any

import httpx

from goldlabel.schemas import ImportReport


class ApiError(Exception):
    """An error response from the goldlabel API.

    ``status`` is the HTTP status, ``code`` the stable machine-readable reason, ``detail`` a
    sentence for people, ``errors`` the per-field problems (``loc``, ``code``, ``message`` and,
    for imports, ``line``), ``body`` the whole problem document.
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.body = body or {}

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The exception for an error ``response`` (whose body must already be read)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            # Not a problem document (a proxy in front of the server, say): keep what we can.
            text = response.text.strip()[:500] or response.reason_phrase
            body = {"status": response.status_code, "code": "http_error", "detail": text}
        status = response.status_code
        code = str(body.get("code") or "http_error")
        detail = str(body.get("detail") or response.reason_phrase)
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        kind = (
            _BY_CODE.get(code)
            or _BY_STATUS.get(status)
            or (ServerError if status >= 500 else ApiError)
        )
        return kind(status, code, detail, errors, body)


class BadRequest(ApiError):
    """400: the request cannot be processed as sent."""


class Unauthorized(ApiError):
    """401: no token, or a malformed, unknown or revoked one."""


class Forbidden(ApiError):
    """403: you can see the object but your role does not allow this action."""


class NotFound(ApiError):
    """404: the object does not exist or you have no access to it (the API does not say which)."""


class Conflict(ApiError):
    """409: the request clashes with the current state (``code`` says how)."""


class ValidationFailed(ApiError):
    """422: invalid input; ``errors`` lists each field with its path and code."""


class ImportFailed(ValidationFailed):
    """422 ``import_failed``: an all-or-nothing import had errors and nothing was written."""

    @property
    def report(self) -> ImportReport | None:
        """The import report (rows read, first errors with line numbers), when the server sent one."""
        raw = self.body.get("report")
        return ImportReport.model_validate(raw) if isinstance(raw, dict) else None


class TooLarge(ApiError):
    """413: the upload exceeds the server's limit."""


class ServerError(ApiError):
    """5xx: the server failed; the request may be retried."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: ValidationFailed,
}
_BY_CODE: dict[str, type[ApiError]] = {"import_failed": ImportFailed}
