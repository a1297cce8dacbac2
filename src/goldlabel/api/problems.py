"""RFC 9457 problem+json for every error the API returns."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.json_limits import printable

log = logging.getLogger("goldlabel.api")

PROBLEM_TYPE = "https://goldlabel.dev/problems/"
MEDIA_TYPE = "application/problem+json"

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                 422: "validation_failed", 429: "too_many_requests"}


# pydantic's name for a string it cannot take (a lone surrogate) -> the code our own checks use
# (domain.json_limits), so one defect has one code wherever it is found.
_CODE_ALIASES = {"string_unicode": "lone_surrogate"}


def _problem_response(description: str) -> dict:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


# Documented on every /api/v1 operation so the OpenAPI states the real error contract.
PROBLEM_RESPONSES: dict[int | str, dict] = {
    401: _problem_response("Missing or invalid credentials (problem+json)."),
    403: _problem_response("Your role does not allow this (problem+json)."),
    404: _problem_response("Not found, or not yours to see (problem+json)."),
    409: _problem_response("Conflict with the current state (problem+json)."),
    422: _problem_response("Invalid input: `errors` lists each field with a stable code (problem+json)."),
}


def problem_body(status: int, code: str, detail: str, errors: list | None = None, **extra) -> dict:
    return {
        "type": PROBLEM_TYPE + code,
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        "errors": errors or [],
        **extra,
    }


def domain_problem_body(exc: GoldlabelError) -> dict:
    return problem_body(exc.status, exc.code, exc.detail, [e.to_dict() for e in exc.errors], **exc.extra)


def problem(status: int, code: str, detail: str, errors: list | None = None, headers: dict | None = None,
            **extra) -> JSONResponse:
    body = problem_body(status, code, detail, errors, **extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install_problem_schema(app: FastAPI) -> None:
    """Add the Problem schema that PROBLEM_RESPONSES refers to into the OpenAPI components."""
    from goldlabel.schemas import Problem

    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_problem_handlers(app: FastAPI) -> None:
    install_problem_schema(app)
    @app.exception_handler(GoldlabelError)
    async def _domain(_request: Request, exc: GoldlabelError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(domain_problem_body(exc), status_code=exc.status, media_type=MEDIA_TYPE, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [printable(str(p)) for p in e.get("loc", ())],
             "code": _CODE_ALIASES.get(e.get("type", "invalid"), e.get("type", "invalid")),
             "message": printable(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return problem(422, "validation_failed", f"{len(errors)} invalid field(s) in the request", errors)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "internal_error", "an unexpected error occurred; it has been logged")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return problem(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))
