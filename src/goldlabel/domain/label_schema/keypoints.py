"""Label schema: the ``keypoints`` kind, named points of a skeleton per label on the image.

A question lists, per label, its skeleton: the names of the points in order, the edges drawn
between them and the OKS sigma of each point (consensus and gold scoring use it; the defaults
are COCO's per-keypoint sigmas for COCO's 17 person keypoints, else :data:`DEFAULT_SIGMA`).
An answer is a list of instances ``{"label", "points": {name: {"x", "y", "v"}}}`` with COCO's
visibility flag ``v``: 0 not labeled (the point is dropped), 1 labeled but occluded, 2 visible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError
from goldlabel.domain.label_schema.base import _check_object_keys, _preview
from goldlabel.domain.label_schema.boxes import BoxesQuestion
from goldlabel.domain.label_schema.polygons import check_point, image_bounds
from goldlabel.domain.label_schema.validation import Loc, _err, _wrong_type

#: COCO's keypoint sigmas (pycocotools COCOeval.Params.kpt_oks_sigmas), by COCO keypoint name
COCO_SIGMAS: dict[str, float] = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
}
#: the sigma of a keypoint whose name is not one of COCO's (about the median of COCO's)
DEFAULT_SIGMA = 0.072

_INSTANCE_KEYS = ("label", "points")
_INSTANCE_ALLOWED = frozenset(_INSTANCE_KEYS)
_POINT_ALLOWED = frozenset(("x", "y", "v"))


@dataclass(frozen=True, slots=True)
class Skeleton:
    """One label's skeleton: point names in order, edges as index pairs, one sigma per point."""

    label: str
    points: tuple[str, ...]
    edges: tuple[tuple[int, int], ...] = ()
    sigmas: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"points": list(self.points),
                "edges": [[self.points[a], self.points[b]] for a, b in self.edges],
                "sigmas": dict(zip(self.points, self.sigmas))}


@dataclass(frozen=True, slots=True, kw_only=True)
class KeypointsQuestion(BoxesQuestion):
    """Instances of labeled skeletons on the item's image. ``skeletons`` holds one
    :class:`Skeleton` per label, in label order. The image options are those of
    :class:`BoxesQuestion`."""

    kind: ClassVar[str] = "keypoints"
    skeletons: tuple[Skeleton, ...] = ()
    _by_label: dict[str, Skeleton] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        BoxesQuestion.__post_init__(self)
        object.__setattr__(self, "_by_label", {s.label: s for s in self.skeletons})

    def skeleton(self, label: str) -> Skeleton:
        return self._by_label[label]

    def _options_json(self) -> dict[str, Any]:
        out = BoxesQuestion._options_json(self)
        out["skeletons"] = {s.label: s.to_json() for s in self.skeletons}
        return out

    def check(self, value: Any, item_data: Mapping[str, Any] | None, loc: Loc,
              errors: list[FieldError]) -> Any:
        if not isinstance(value, list):
            _wrong_type(errors, loc, "a list of keypoint instances", value)
            return None
        ok, width, height = image_bounds(self, item_data, loc, errors)
        if not ok:
            return None
        n_errors = len(errors)
        out: list[dict[str, Any]] = []
        for i, instance in enumerate(value):
            i_loc = (*loc, i)
            if not isinstance(instance, Mapping):
                _wrong_type(errors, i_loc, "a keypoint instance {label, points}", instance)
                continue
            if not _check_object_keys(instance, i_loc, _INSTANCE_KEYS, _INSTANCE_ALLOWED, errors):
                continue
            label, points = instance["label"], instance["points"]
            if not isinstance(label, str):
                _wrong_type(errors, (*i_loc, "label"), "a label string", label)
                continue
            if label not in self._label_set:
                self._unknown_label(errors, (*i_loc, "label"), label)
                continue
            if not isinstance(points, Mapping):
                _wrong_type(errors, (*i_loc, "points"), "an object mapping keypoint names to {x, y, v}",
                            points)
                continue
            skeleton = self._by_label[label]
            known = set(skeleton.points)
            good = True
            normalized: dict[str, dict[str, Any]] = {}
            for name, point in points.items():
                p_loc = (*i_loc, "points", name)
                if name not in known:
                    _err(errors, p_loc, "unknown_keypoint",
                         f"{name!r} is not a keypoint of label {label!r}; its keypoints: "
                         f"{_preview(skeleton.points)}")
                    good = False
                    continue
                if not isinstance(point, Mapping):
                    _wrong_type(errors, p_loc, "a keypoint object {x, y, v}", point)
                    good = False
                    continue
                extra = [k for k in point if k not in _POINT_ALLOWED]
                if extra:
                    _err(errors, (*p_loc, extra[0]), "unknown_field",
                         f"unknown key {extra[0]!r}; allowed: v, x, y")
                    good = False
                    continue
                v = point.get("v", 2)
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                if isinstance(v, bool) or v not in (0, 1, 2):
                    _err(errors, (*p_loc, "v"), "bad_visibility",
                         f"visibility v must be 0 (not labeled), 1 (occluded) or 2 (visible), got {v!r}")
                    good = False
                    continue
                if v == 0:
                    continue  # not labeled: as if absent
                if "x" not in point or "y" not in point:
                    missing = "x" if "x" not in point else "y"
                    _err(errors, (*p_loc, missing), "missing_field_value",
                         f"{missing!r} is required for a labeled keypoint (v = {v})")
                    good = False
                    continue
                xy = check_point((point["x"], point["y"]), p_loc, errors, width, height,
                                 "keypoint_out_of_bounds", f"keypoint {name!r}")
                if xy is None:
                    good = False
                    continue
                normalized[name] = {"x": xy[0], "y": xy[1], "v": v}
            if not good:
                continue
            if not normalized:
                _err(errors, (*i_loc, "points"), "no_keypoints",
                     "an instance needs at least one labeled keypoint (v = 1 or 2)")
                continue
            out.append({"label": label,
                        "points": {n: normalized[n] for n in skeleton.points if n in normalized}})
        if len(errors) > n_errors:
            return None
        return out


def parse_skeletons(value: Any, labels: tuple[str, ...], loc: Loc,
                    errors: list[FieldError]) -> tuple[Skeleton, ...]:
    """Read the ``skeletons`` option: ``{label: {"points": [...], "edges": [[a, b], ...],
    "sigmas": {name: sigma}}}``, one per label. Problems are ``bad_option`` at ``loc``."""
    from goldlabel.domain.label_schema.validation import _MAX_LABEL_LENGTH, _is_number

    if not isinstance(value, Mapping):
        _wrong_type(errors, loc, "an object mapping each label to its skeleton", value)
        return ()
    out: list[Skeleton] = []
    for label in labels:
        if label not in value:
            _err(errors, (*loc, label), "bad_option", f"label {label!r} has no skeleton")
    for label in value:
        if label not in labels:
            _err(errors, (*loc, label), "bad_option", f"skeleton for {label!r}, which is not a label")
    for label in labels:
        spec = value.get(label)
        s_loc = (*loc, label)
        if spec is None:
            continue
        if not isinstance(spec, Mapping):
            _wrong_type(errors, s_loc, "a skeleton object {points, edges, sigmas}", spec)
            continue
        n_errors = len(errors)
        for key in spec:
            if key not in ("points", "edges", "sigmas"):
                _err(errors, (*s_loc, key), "unknown_option", f"unknown skeleton key {key!r}")
        names = spec.get("points")
        if not isinstance(names, list) or not names:
            _err(errors, (*s_loc, "points"), "bad_option", "points must be a non-empty list of names")
            continue
        seen: dict[str, int] = {}
        for j, name in enumerate(names):
            if not isinstance(name, str) or not name or len(name) > _MAX_LABEL_LENGTH:
                _err(errors, (*s_loc, "points", j), "bad_option",
                     f"a keypoint name is a string of 1 to {_MAX_LABEL_LENGTH} characters")
            elif name in seen:
                _err(errors, (*s_loc, "points", j), "bad_option", f"keypoint {name!r} appears twice")
            else:
                seen[name] = j
        edges: list[tuple[int, int]] = []
        raw_edges = spec.get("edges") or []
        if not isinstance(raw_edges, list):
            _wrong_type(errors, (*s_loc, "edges"), "a list of [name, name] pairs", raw_edges)
            raw_edges = []
        for j, edge in enumerate(raw_edges):
            if (not isinstance(edge, list) or len(edge) != 2 or not all(isinstance(e, str) for e in edge)
                    or edge[0] not in seen or edge[1] not in seen or edge[0] == edge[1]):
                _err(errors, (*s_loc, "edges", j), "bad_option",
                     f"an edge joins two different keypoints of the skeleton, got {edge!r}")
            else:
                edges.append((seen[edge[0]], seen[edge[1]]))
        raw_sigmas = spec.get("sigmas") or {}
        if not isinstance(raw_sigmas, Mapping):
            _wrong_type(errors, (*s_loc, "sigmas"), "an object mapping keypoint names to sigmas", raw_sigmas)
            raw_sigmas = {}
        for name, sigma in raw_sigmas.items():
            if name not in seen:
                _err(errors, (*s_loc, "sigmas", name), "bad_option", f"sigma for unknown keypoint {name!r}")
            elif not _is_number(sigma) or sigma <= 0:
                _err(errors, (*s_loc, "sigmas", name), "bad_option",
                     f"a sigma is a positive number, got {sigma!r}")
        if len(errors) > n_errors:
            continue
        sigmas = tuple(float(raw_sigmas.get(n, COCO_SIGMAS.get(n, DEFAULT_SIGMA))) for n in names)
        out.append(Skeleton(label, tuple(names), tuple(edges), sigmas))
    return tuple(out)
