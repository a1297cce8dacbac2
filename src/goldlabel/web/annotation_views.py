"""How the console shows answer values and item data: spans highlighted in their text, boxes drawn
on their image (polygons and keypoint skeletons too), rankings in order, ratings as values,
images as pictures (never as base64 text).

The functions here turn a value into a small view model (plain dicts and lists); the macros in
``templates/console/macros.html`` render it with Jinja's autoescaping, so user data is only ever
text or an attribute value. Boxes are drawn as an SVG layer over the ``<img>`` with percentage
coordinates: no inline style (the CSP forbids it) and no script.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.label_schema import LabelSchema
from goldlabel.domain.label_schema.boxes import BoxesQuestion
from goldlabel.domain.label_schema.choice import ChoiceQuestion, MultiChoiceQuestion
from goldlabel.domain.label_schema.keypoints import KeypointsQuestion
from goldlabel.domain.label_schema.polygons import PolygonsQuestion
from goldlabel.domain.label_schema.ranking import RankingQuestion
from goldlabel.domain.label_schema.rating import RatingQuestion
from goldlabel.domain.label_schema.spans import SpansQuestion
from goldlabel.domain.label_schema.text import TextQuestion
from goldlabel.domain.media_sources import check_image_source

# Field names the annotate workspace also shows as images (workspace.js GENERIC_IMAGE_FIELDS).
IMAGE_FIELDS = frozenset({"image", "image_url", "img", "picture", "url"})
# Fields media.js createMediaView shows with a player or a page view (and `messages`, a chat).
MEDIA_FIELDS = frozenset({"audio", "video", "pdf"})
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);", re.IGNORECASE)
COLORS = 8  # label color classes c0..c7 in goldlabel.css


def safe_image_url(value: Any) -> str | None:
    """An image URL that may go in ``<img src>``: the import's and the workspace's rule
    (``goldlabel.domain.media_sources``); anything else (javascript:, http:) is not shown."""
    if check_image_source(value) is not None:
        return None
    return value.strip()


def _is_media(name: str, value: Any) -> bool:
    """A field the workspace shows with a viewer (static/js/media.js ``createMediaView``): audio
    and video players, a PDF's pages, a chat transcript."""
    if name == "messages":
        return isinstance(value, list)
    return name in MEDIA_FIELDS and isinstance(value, str)


def _excerpt(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.3f}%"


class AnnotationViews:
    """View models for one project's label schema; build one per page."""

    def __init__(self, label_schema: Mapping[str, Any]) -> None:
        try:
            self.schema: LabelSchema | None = LabelSchema.parse(label_schema)
        except GoldlabelError:
            self.schema = None  # an unparseable stored schema: show values as JSON, never fail the page
        questions = self.schema.questions if self.schema else ()
        self._questions = {q.name: q for q in questions}
        self.image_fields = IMAGE_FIELDS | {q.source for q in questions if isinstance(q, BoxesQuestion)}

    # -- one answer value --------------------------------------------------------------------

    def view(self, question: str, value: Any, item_data: Mapping[str, Any] | None) -> dict[str, Any]:
        """The view of ``value`` given for ``question`` on an item with ``item_data``."""
        if value is None:
            return {"kind": "none"}
        q = self._questions.get(question)
        data = item_data if isinstance(item_data, Mapping) else {}
        try:
            if isinstance(q, (ChoiceQuestion, MultiChoiceQuestion)):
                return self._labels(q, value)
            if isinstance(q, RatingQuestion):
                return self._rating(q, value)
            if isinstance(q, TextQuestion) and isinstance(value, str):
                return {"kind": "text", "text": value}
            if isinstance(q, SpansQuestion):
                return self._spans(q, value, data)
            if isinstance(q, PolygonsQuestion):
                return self._polygons(q, value, data)
            if isinstance(q, KeypointsQuestion):
                return self._keypoints(q, value, data)
            if isinstance(q, BoxesQuestion):
                return self._boxes(q, value, data)
            if isinstance(q, RankingQuestion):
                return self._ranking(q, value, data)
        except (TypeError, KeyError, ValueError, ZeroDivisionError):
            pass  # a value the schema no longer fits: show it as it is stored
        if isinstance(value, str):
            return {"kind": "text", "text": value}
        return {"kind": "json", "text": json.dumps(value, ensure_ascii=False, sort_keys=True)}

    def _color(self, q: Any, label: Any) -> str:
        """The label's color class, as the workspace picks it (its index in the labels)."""
        labels = getattr(q, "labels", None) or ()
        return f"c{labels.index(label) % COLORS}" if label in labels else "c-none"

    def _labels(self, q: Any, value: Any) -> dict[str, Any]:
        labels = [value] if isinstance(value, str) else list(value)
        if not all(isinstance(label, str) for label in labels):
            raise TypeError("labels must be strings")
        return {"kind": "labels", "labels": [{"text": label, "color": self._color(q, label)} for label in labels]}

    def _rating(self, q: RatingQuestion, value: Any) -> dict[str, Any]:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("a rating is a number")
        caption = None
        points = q.points
        if q.scale_labels and points and value in points:
            caption = q.scale_labels[points.index(value)]
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        return {"kind": "rating", "value": shown, "min": f"{q.min:g}", "max": f"{q.max:g}", "caption": caption,
                "fraction": max(0.0, min(1.0, (value - q.min) / (q.max - q.min))) if q.max > q.min else 1.0}

    def _spans(self, q: SpansQuestion, value: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        spans = [(int(s["start"]), int(s["end"]), str(s["label"])) for s in value]
        text = data.get(q.source)
        chips = []
        for start, end, label in sorted(spans):
            piece = text[start:end] if isinstance(text, str) else f"{start}–{end}"
            chips.append({"label": label, "text": _excerpt(piece, 60), "color": self._color(q, label)})
        if not isinstance(text, str):
            return {"kind": "spans", "segments": None, "chips": chips}
        # Cut the text at every span boundary; each piece carries the labels covering it.
        cuts = sorted({0, len(text), *(p for s in spans for p in s[:2] if 0 <= p <= len(text))})
        segments = []
        for a, b in pairwise(cuts):
            labels = [label for start, end, label in spans if start <= a and b <= end]
            color = self._color(q, labels[0]) if labels else None
            segments.append({"text": text[a:b], "labels": labels, "color": color})
        return {"kind": "spans", "segments": segments, "chips": chips}

    def _boxes(self, q: BoxesQuestion, value: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        if q.coordinates == "pixel":
            width, height = float(data[q.width_field]), float(data[q.height_field])
        else:
            width = height = 1.0
        boxes = []
        for b in value:
            x, y, w, h = (float(b[k]) for k in ("x", "y", "w", "h"))
            boxes.append({"x": _pct(x, width), "y": _pct(y, height), "w": _pct(w, width), "h": _pct(h, height),
                          "label": str(b["label"]), "color": self._color(q, b["label"])})
        return {"kind": "boxes", "image": safe_image_url(data.get(q.source)), "boxes": boxes}

    def _ranking(self, q: RankingQuestion, value: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        texts: dict[str, str] = {}
        entries = data.get(q.source) if q.candidates is None and q.source else None
        if isinstance(entries, list):
            keyed = all(isinstance(e, Mapping) and "id" in e for e in entries)
            for i, entry in enumerate(entries):
                key = str(entry["id"]) if keyed else str(i)
                body = entry.get("text", entry.get("content")) if isinstance(entry, Mapping) else entry
                if isinstance(body, str):
                    texts[key] = _excerpt(body, 90)
        groups = [g if isinstance(g, list) else [g] for g in value]
        rows, place = [], 1
        for group in groups:
            tied = len(group) > 1
            for cid in group:
                rows.append({"place": f"{place}=" if tied else str(place), "id": str(cid),
                             "text": texts.get(str(cid))})
            place += len(group)
        return {"kind": "ranking", "rows": rows}

    # -- item data ---------------------------------------------------------------------------

    def is_image(self, name: str, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return bool(_DATA_IMAGE.match(value.strip())) or (name in self.image_fields
                                                           and safe_image_url(value) is not None)

    def data_fields(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every data field as ``{"name", "kind": image|media|text|json, "value"}``."""
        fields = []
        for name, value in data.items():
            if _is_media(name, value):
                # Played, paged or shown turn by turn by the workspace's own viewer
                # (static/js/media.js, mounted by console/item_media.js); this text stands in
                # until it is.
                stand_in = f"{len(value)} turns" if isinstance(value, list) else _excerpt(value, 120)
                fields.append({"name": name, "kind": "media", "value": stand_in})
            elif self.is_image(name, value):
                url = safe_image_url(value)
                fields.append({"name": name, "kind": "image" if url else "text", "value": url or _excerpt(value, 120)})
            elif isinstance(value, str):
                fields.append({"name": name, "kind": "text", "value": value})
            else:
                fields.append({"name": name, "kind": "json", "value": json.dumps(value, indent=2, ensure_ascii=False)})
        return fields

    def preview(self, data: Any, limit: int = 110) -> dict[str, Any]:
        """A list row's picture of an item: a thumbnail (its first image) and a short text."""
        if not isinstance(data, Mapping):
            return {"thumb": None, "text": _excerpt(json.dumps(data, ensure_ascii=False), limit)}
        thumb = next((safe_image_url(v) for k, v in data.items() if self.is_image(k, v) and safe_image_url(v)), None)
        text = data.get("text")
        if not isinstance(text, str):
            text = next((v for k, v in data.items() if isinstance(v, str) and not self.is_image(k, v)), None)
        if text is None:
            rest = {k: v for k, v in data.items() if not self.is_image(k, v)}
            text = json.dumps(rest, ensure_ascii=False) if rest else ""
        return {"thumb": thumb, "text": _excerpt(text, limit)}

    def _extent(self, q: BoxesQuestion, data: Mapping[str, Any]) -> tuple[float, float]:
        if q.coordinates == "pixel":
            return float(data[q.width_field]), float(data[q.height_field])
        return 1.0, 1.0

    def _polygons(self, q: PolygonsQuestion, value: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        """Polygons in an SVG whose viewBox is the image extent (pixel or 0..1): the points are
        the answer's own coordinates, the CSS keeps the strokes unscaled."""
        width, height = self._extent(q, data)
        shapes = []
        for p in value:
            points = [(float(x), float(y)) for x, y in p["points"]]
            shapes.append({"points": " ".join(f"{x:.6g},{y:.6g}" for x, y in points),
                           "x": f"{points[0][0]:.6g}", "y": f"{points[0][1]:.6g}",
                           "label": str(p["label"]), "color": self._color(q, p["label"])})
        return {"kind": "polygons", "image": safe_image_url(data.get(q.source)),
                "view_box": f"0 0 {width:g} {height:g}",
                "shapes": shapes}

    def _keypoints(self, q: KeypointsQuestion, value: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        """Skeleton edges as lines, points as round zero-length lines (a circle would stretch with
        the image's aspect ratio), occluded points hollow."""
        width, height = self._extent(q, data)
        instances = []
        for inst in value:
            skeleton = q.skeleton(inst["label"])
            pts = {name: (float(p["x"]), float(p["y"]), int(p.get("v", 2))) for name, p in inst["points"].items()}
            edges = []
            for a, b in skeleton.edges:
                pa, pb = pts.get(skeleton.points[a]), pts.get(skeleton.points[b])
                if pa and pb:
                    edges.append({"x1": f"{pa[0]:.6g}", "y1": f"{pa[1]:.6g}", "x2": f"{pb[0]:.6g}",
                                  "y2": f"{pb[1]:.6g}"})
            points = [{"name": name, "x": f"{x:.6g}", "y": f"{y:.6g}", "occluded": v == 1}
                      for name, (x, y, v) in pts.items()]
            instances.append({"label": str(inst["label"]), "color": self._color(q, inst["label"]),
                              "edges": edges, "points": points})
        return {"kind": "keypoints", "image": safe_image_url(data.get(q.source)),
                "view_box": f"0 0 {width:g} {height:g}", "instances": instances}
