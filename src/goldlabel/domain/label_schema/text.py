"""Label schema: the ``text`` kind, free text with a length range."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError
from goldlabel.domain.label_schema.base import Question
from goldlabel.domain.label_schema.validation import (
    _DEFAULT_TEXT_MAX_LENGTH,
    Loc,
    _err,
    _wrong_type,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TextQuestion(Question):
    """Free text. Length counts Unicode code points."""

    kind: ClassVar[str] = "text"
    min_length: int = 0
    max_length: int = _DEFAULT_TEXT_MAX_LENGTH

    def _options_json(self) -> dict[str, Any]:
        return {"min_length": self.min_length, "max_length": self.max_length}

    def check(self, value: Any, item_data: Mapping[str, Any] | None, loc: Loc,
              errors: list[FieldError]) -> Any:
        if not isinstance(value, str):
            _wrong_type(errors, loc, "a string", value)
            return None
        n = len(value)
        if n < self.min_length:
            _err(errors, loc, "too_short",
                 f"text has {n} character(s), at least {self.min_length} required")
            return None
        if n > self.max_length:
            _err(errors, loc, "too_long",
                 f"text has {n} characters, at most {self.max_length} allowed")
            return None
        return value
