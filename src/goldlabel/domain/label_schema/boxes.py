"""Label schema: the ``boxes`` kind, labeled rectangles on the item's image."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError
from goldlabel.domain.label_schema.base import _check_object_keys, _LabeledQuestion
from goldlabel.domain.label_schema.validation import (
    _BOX_EPSILON,
    Loc,
    _err,
    _is_number,
    _type_name,
    _wrong_type,
)
from goldlabel.domain.media_sources import MESSAGES as SOURCE_MESSAGES
from goldlabel.domain.media_sources import check_image_source

_BOX_KEYS = ("x", "y", "w", "h", "label")
_BOX_ALLOWED = frozenset(_BOX_KEYS)


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxesQuestion(_LabeledQuestion):
    """Labeled rectangles on the item's image: ``[{"x", "y", "w", "h", "label"}, ...]``.

    (x, y) is the top-left corner. ``coordinates`` is ``"relative"`` (fractions of the image
    width and height, 0..1) or ``"pixel"`` (the image size is read from the item data fields
    ``width_field`` and ``height_field``). ``source`` names the image URL field.
    """

    kind: ClassVar[str] = "boxes"
    source: str = "image"
    coordinates: str = "relative"
    width_field: str = "width"
    height_field: str = "height"

    def _options_json(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "source": self.source,
                "coordinates": self.coordinates, "width_field": self.width_field,
                "height_field": self.height_field}

    def _image_size(self, item_data: Mapping[str, Any], loc: Loc,
                    errors: list[FieldError], *, loc_per_field: bool) -> tuple[float, float] | None:
        size = []
        for key in (self.width_field, self.height_field):
            where = (*loc, key) if loc_per_field else loc
            value = item_data.get(key)
            if value is None:
                _err(errors, where, "missing_source",
                     f"question {self.name!r} uses pixel coordinates and reads the image size "
                     f"from item data field {key!r}, which is absent")
            elif not _is_number(value) or value <= 0:
                _err(errors, where, "bad_source",
                     f"item data field {key!r} must be a positive number, got {value!r}")
            else:
                size.append(value)
        return (size[0], size[1]) if len(size) == 2 else None

    def check_image_source(self, item_data: Mapping[str, Any], loc: Loc, errors: list[FieldError],
                           http_hosts: Collection[str] = (), fetch_schemes: Collection[str] = ()) -> None:
        """Refuse an image source the workspace cannot show (the rule of media_sources)."""
        image = item_data.get(self.source)
        if isinstance(image, str) and (code := check_image_source(image, http_hosts, fetch_schemes)):
            shown = image if len(image) <= 80 else image[:77] + "..."
            _err(errors, (*loc, self.source), code,
                 f"item data field {self.source!r}: {SOURCE_MESSAGES[code]}, got {shown!r}")

    def check_item_data(self, item_data: Mapping[str, Any], loc: Loc, errors: list[FieldError],
                        http_hosts: Collection[str] = ()) -> None:
        image = item_data.get(self.source)
        if image is None:
            _err(errors, (*loc, self.source), "missing_source",
                 f"question {self.name!r} reads the image from item data field "
                 f"{self.source!r}, which is absent")
        elif not isinstance(image, str):
            _err(errors, (*loc, self.source), "bad_source",
                 f"item data field {self.source!r} must be an image URL string, "
                 f"got {_type_name(image)}")
        else:
            self.check_image_source(item_data, loc, errors, http_hosts)
        if self.coordinates == "pixel":
            self._image_size(item_data, loc, errors, loc_per_field=True)

    def check(self, value: Any, item_data: Mapping[str, Any] | None, loc: Loc,
              errors: list[FieldError]) -> Any:
        if not isinstance(value, list):
            _wrong_type(errors, loc, "a list of boxes", value)
            return None
        if self.coordinates == "relative":
            width: float | None = 1.0
            height: float | None = 1.0
        elif item_data is not None:
            size = self._image_size(item_data, loc, errors, loc_per_field=False)
            if size is None:
                return None
            width, height = size
        else:
            width = height = None
        n_errors = len(errors)
        boxes: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for i, box in enumerate(value):
            box_loc = (*loc, i)
            if not isinstance(box, Mapping):
                _wrong_type(errors, box_loc, "a box object {x, y, w, h, label}", box)
                continue
            if not _check_object_keys(box, box_loc, _BOX_KEYS, _BOX_ALLOWED, errors):
                continue
            x, y, w, h, label = box["x"], box["y"], box["w"], box["h"], box["label"]
            ok = True
            for key, coord in (("x", x), ("y", y), ("w", w), ("h", h)):
                if not _is_number(coord):
                    _wrong_type(errors, (*box_loc, key), "a finite number", coord)
                    ok = False
            if not isinstance(label, str):
                _wrong_type(errors, (*box_loc, "label"), "a label string", label)
                ok = False
            elif label not in self._label_set:
                self._unknown_label(errors, (*box_loc, "label"), label)
                ok = False
            if not ok:
                continue
            if w <= 0 or h <= 0:
                _err(errors, (*box_loc, "w" if w <= 0 else "h"), "degenerate_box",
                     f"box has width {w} and height {h}; both must be positive")
                continue
            if x < 0 or y < 0:
                _err(errors, (*box_loc, "x" if x < 0 else "y"), "box_out_of_bounds",
                     f"box corner ({x}, {y}) lies outside the image")
                continue
            if width is not None and height is not None:
                eps = _BOX_EPSILON * max(width, height)
                if x + w > width + eps:
                    _err(errors, (*box_loc, "w"), "box_out_of_bounds",
                         f"box right edge x + w = {x + w} exceeds the image width {width}")
                    continue
                if y + h > height + eps:
                    _err(errors, (*box_loc, "h"), "box_out_of_bounds",
                         f"box bottom edge y + h = {y + h} exceeds the image height {height}")
                    continue
            box_key = (x, y, w, h, label)
            if box_key in seen:
                _err(errors, box_loc, "duplicate_box", f"box {box_key} given twice")
                continue
            seen.add(box_key)
            boxes.append({"x": x, "y": y, "w": w, "h": h, "label": str(label)})
        if len(errors) > n_errors:
            return None
        return boxes
