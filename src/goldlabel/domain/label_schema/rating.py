"""Label schema: the ``rating`` kind, a number on a scale, and its snapping to the scale's grid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError
from goldlabel.domain.label_schema.base import Question
from goldlabel.domain.label_schema.validation import Loc, _err, _is_int, _is_number, _wrong_type


@dataclass(frozen=True, slots=True, kw_only=True)
class RatingQuestion(Question):
    """A number on a scale [min, max] in steps of ``step`` (``None``: any number in range).

    When min, max and step are all integers the rating is an integer (``4.0`` normalizes to ``4``).
    ``scale_labels`` optionally names every point of the scale, lowest first.
    """

    kind: ClassVar[str] = "rating"
    min: int | float = 1
    max: int | float = 5
    step: int | float | None = 1
    scale_labels: tuple[str, ...] | None = None
    _is_integral: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        integral = _is_int(self.min) and _is_int(self.max) and _is_int(self.step)
        object.__setattr__(self, "_is_integral", integral)

    @property
    def points(self) -> tuple[int | float, ...] | None:
        """Every allowed rating, lowest first; ``None`` for a continuous scale."""
        if self.step is None:
            return None
        n = round((self.max - self.min) / self.step)
        if self._is_integral:
            return tuple(range(self.min, self.max + 1, self.step))  # type: ignore[arg-type]
        return tuple(_snap(self.min + k * self.step) for k in range(n + 1))

    def _options_json(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max, "step": self.step,
                "scale_labels": None if self.scale_labels is None else list(self.scale_labels)}

    def check(self, value: Any, item_data: Mapping[str, Any] | None, loc: Loc,
              errors: list[FieldError]) -> Any:
        if not _is_number(value):
            _wrong_type(errors, loc, "a finite number", value)
            return None
        if not (self.min <= value <= self.max):
            _err(errors, loc, "out_of_range", f"rating {value} is outside [{self.min}, {self.max}]")
            return None
        step = self.step
        if step is None:
            return value
        if self._is_integral:
            if value.__class__ is not int:
                if not float(value).is_integer():
                    _err(errors, loc, "off_step", f"rating {value} is not an integer")
                    return None
                value = int(value)
            if step != 1 and (value - self.min) % step:
                _err(errors, loc, "off_step",
                     f"rating {value} is not {self.min} + k * {step}")
                return None
            return value
        k = (value - self.min) / step
        if abs(k - round(k)) > 1e-9 * max(1.0, abs(k)):
            _err(errors, loc, "off_step", f"rating {value} is not {self.min} + k * {step}")
            return None
        return _snap(self.min + round(k) * step)


def _snap(value: float) -> float:
    # min + k * step in floating point gives 0.30000000000000004; 12 significant digits is
    # far finer than any rating scale and makes equal ratings compare equal.
    return float(f"{value:.12g}")
