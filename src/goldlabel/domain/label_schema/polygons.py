"""Label schema: the ``polygons`` kind, labeled simple polygons on the item's image."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError
from goldlabel.domain.label_schema.base import _check_object_keys
from goldlabel.domain.label_schema.boxes import BoxesQuestion
from goldlabel.domain.label_schema.validation import (
    _BOX_EPSILON,
    Loc,
    _err,
    _is_number,
    _wrong_type,
)

_POLYGON_KEYS = ("points", "label")
_POLYGON_ALLOWED = frozenset(_POLYGON_KEYS)
#: the most vertices one polygon may have (a traced outline rarely needs more than a few hundred)
MAX_POLYGON_POINTS = 10_000


def _collinear(points: list[tuple[float, float]]) -> bool:
    """Whether every point lies on the line through the first point and the one farthest from it."""
    x0, y0 = points[0]
    far = max(points, key=lambda p: (p[0] - x0) ** 2 + (p[1] - y0) ** 2)
    dx, dy = far[0] - x0, far[1] - y0
    scale = (dx * dx + dy * dy) * 1e-12
    return all(abs(dx * (y - y0) - dy * (x - x0)) <= scale for x, y in points)


def _is_simple_ring(points: list[tuple[float, float]]) -> bool:
    """No two edges cross or touch, except neighbours at their shared vertex (GEOS)."""
    import shapely

    return bool(shapely.is_simple(shapely.linearrings(points)))


def image_bounds(question: BoxesQuestion, item_data: Mapping[str, Any] | None, loc: Loc,
                 errors: list[FieldError]) -> tuple[bool, float | None, float | None]:
    """(ok, width, height): the image extent coordinates must lie in (None when unknown)."""
    if question.coordinates == "relative":
        return True, 1.0, 1.0
    if item_data is None:
        return True, None, None
    size = question._image_size(item_data, loc, errors, loc_per_field=False)
    if size is None:
        return False, None, None
    return True, size[0], size[1]


def check_point(point: Any, loc: Loc, errors: list[FieldError], width: float | None,
                height: float | None, code: str, what: str) -> tuple[float, float] | None:
    """A finite (x, y) inside [0, width] x [0, height] (when the size is known), else None."""
    x, y = point
    if not _is_number(x) or not _is_number(y):
        _wrong_type(errors, loc, "two finite numbers [x, y]", point)
        return None
    if width is not None and height is not None:
        eps = _BOX_EPSILON * max(width, height)
        if not (-eps <= x <= width + eps and -eps <= y <= height + eps):
            _err(errors, loc, code,
                 f"{what} ({x}, {y}) lies outside the image [0, {width}] x [0, {height}]")
            return None
    elif x < 0 or y < 0:
        _err(errors, loc, code, f"{what} ({x}, {y}) lies outside the image (negative coordinate)")
        return None
    return x, y


@dataclass(frozen=True, slots=True, kw_only=True)
class PolygonsQuestion(BoxesQuestion):
    """Labeled simple polygons on the item's image: ``[{"points": [[x, y], ...], "label"}, ...]``.

    The image options (``source``, ``coordinates``, ``width_field``, ``height_field``) are those
    of :class:`BoxesQuestion`. A polygon has at least 3 distinct vertices, in drawing order,
    closed implicitly (a last vertex equal to the first is dropped); its edges may not cross or
    touch (``self_intersection``) and it must enclose an area (``degenerate_polygon``).
    """

    kind: ClassVar[str] = "polygons"

    def check(self, value: Any, item_data: Mapping[str, Any] | None, loc: Loc,
              errors: list[FieldError]) -> Any:
        if not isinstance(value, list):
            _wrong_type(errors, loc, "a list of polygons", value)
            return None
        ok, width, height = image_bounds(self, item_data, loc, errors)
        if not ok:
            return None
        n_errors = len(errors)
        out: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for i, polygon in enumerate(value):
            p_loc = (*loc, i)
            if not isinstance(polygon, Mapping):
                _wrong_type(errors, p_loc, "a polygon object {points, label}", polygon)
                continue
            if not _check_object_keys(polygon, p_loc, _POLYGON_KEYS, _POLYGON_ALLOWED, errors):
                continue
            label, points = polygon["label"], polygon["points"]
            good = True
            if not isinstance(label, str):
                _wrong_type(errors, (*p_loc, "label"), "a label string", label)
                good = False
            elif label not in self._label_set:
                self._unknown_label(errors, (*p_loc, "label"), label)
                good = False
            if not isinstance(points, list):
                _wrong_type(errors, (*p_loc, "points"), "a list of [x, y] points", points)
                continue
            if len(points) > MAX_POLYGON_POINTS:
                _err(errors, (*p_loc, "points"), "too_many_points",
                     f"a polygon has at most {MAX_POLYGON_POINTS} points, got {len(points)}")
                continue
            vertices: list[tuple[float, float]] = []
            for j, point in enumerate(points):
                if not isinstance(point, (list, tuple)) or len(point) != 2:
                    _wrong_type(errors, (*p_loc, "points", j), "a point [x, y]", point)
                    good = False
                    continue
                xy = check_point(point, (*p_loc, "points", j), errors, width, height,
                                 "point_out_of_bounds", "polygon point")
                if xy is None:
                    good = False
                else:
                    vertices.append(xy)
            if not good:
                continue
            if len(vertices) > 1 and vertices[-1] == vertices[0]:
                vertices.pop()  # an explicitly closed ring
            distinct = len(set(vertices))
            if distinct < 3:
                _err(errors, (*p_loc, "points"), "too_few_points",
                     f"a polygon needs at least 3 distinct points, got {distinct}")
                continue
            if _collinear(vertices):
                _err(errors, (*p_loc, "points"), "degenerate_polygon",
                     "the polygon encloses no area (its points are collinear)")
                continue
            if not _is_simple_ring(vertices):
                _err(errors, (*p_loc, "points"), "self_intersection",
                     "the polygon's edges cross or touch each other (or a vertex repeats); "
                     "draw its outline without crossings")
                continue
            key = (tuple(vertices), label)
            if key in seen:
                _err(errors, p_loc, "duplicate_polygon", "the same polygon and label given twice")
                continue
            seen.add(key)
            out.append({"points": [[x, y] for x, y in vertices], "label": label})
        if len(errors) > n_errors:
            return None
        return out
