"""Label schema: the ``text`` kind, free text with a length range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from goldlabel.domain.label_schema.base import Question
from goldlabel.domain.label_schema.validation import _DEFAULT_TEXT_MAX_LENGTH, _err, _wrong_type


@dataclass(frozen=True, slots=True, kw_only=True)
class TextQuestion(Question):
    """Free text. Length counts Unicode code points."""

    kind: ClassVar[str] = "text"
    min_length: int = 0
    max_length: int = _DEFAULT_TEXT_MAX_LENGTH

    def _options_json(self):
        return {"min_length": self.min_length, "max_length": self.max_length}

    def check(self, value, item_data, loc, errors):
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
