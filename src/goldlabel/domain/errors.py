"""Domain errors. Each carries an HTTP status and a stable machine-readable code.

The API turns them into RFC 9457 problem+json; the CLI prints them. Codes never change once
published: scripts match on them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: ``loc`` is the path to it, e.g. ``("value", "boxes", 0, "x")``."""

    loc: tuple[str | int, ...]
    code: str
    message: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["loc"] = list(self.loc)
        if self.line is None:
            del data["line"]
        return data


@dataclass
class GoldlabelError(Exception):
    detail: str
    code: str = "bad_request"
    status: int = 400
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def __str__(self) -> str:
        lines = [f"{self.detail} [{self.code}]"]
        for err in self.errors:
            where = f"line {err.line}: " if err.line is not None else ""
            path = ".".join(str(p) for p in err.loc)
            lines.append(f"  {where}{path}: {err.message} [{err.code}]")
        return "\n".join(lines)


def not_found(what: str) -> GoldlabelError:
    return GoldlabelError(f"{what} not found", code="not_found", status=404)


def forbidden(detail: str = "your role does not allow this") -> GoldlabelError:
    return GoldlabelError(detail, code="forbidden", status=403)


def unauthorized(detail: str = "missing or invalid credentials") -> GoldlabelError:
    return GoldlabelError(detail, code="unauthorized", status=401)


def conflict(detail: str, code: str) -> GoldlabelError:
    return GoldlabelError(detail, code=code, status=409)


def invalid(errors: list[FieldError], detail: str | None = None) -> GoldlabelError:
    return GoldlabelError(
        detail or f"{len(errors)} invalid field(s)", code="validation_failed", status=422, errors=errors
    )
