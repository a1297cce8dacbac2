"""Label Studio's JSON export ("Export -> JSON"): one JSON array of tasks, read as goldlabel items.

A task is ``{"id", "data", "meta", "annotations": [...], "predictions": [...]}``. Each annotation
and prediction holds a ``result`` list of regions, each ``{"from_name", "to_name", "type",
"value"}``; ``from_name`` names the control tag of the labeling config, which is the goldlabel
question of the same name. What each control type becomes:

=================  ============================  =================================================
Label Studio type  goldlabel kind                value
=================  ============================  =================================================
choices            choice / multi_choice         ``value.choices`` (one label, or the list)
labels             spans                         ``value.start`` / ``end`` / ``labels`` (one span
                                                 per label)
rectanglelabels    boxes                         ``value.x/y/width/height`` in percent: fractions
                                                 (relative) or pixels, with ``original_width`` /
                                                 ``original_height`` of the region
polygonlabels      polygons                      ``value.points`` ([x, y] in percent), converted
                                                 as rectangles are
keypointlabels     keypoints                     ``value.x/y`` in percent; the label names the
                                                 point, the skeleton holding that name its
                                                 instance (one instance per skeleton and result)
rating             rating                        ``value.rating``
textarea           text                          ``value.text`` (lines joined by a newline)
=================  ============================  =================================================

Annotations become answers of one pseudonymous annotator per ``completed_by`` (``ls-<id>``);
a cancelled (skipped) annotation is no answer; a ``ground_truth`` annotation becomes the item's
gold answer. Predictions keep their ``model_version`` and ``score``. Anything else (brushes,
relations, rotated boxes, open polylines, unlabeled polygons or points, ...) is refused with a
stable code and the task's line, so nothing is dropped silently. Label Studio's keypoints are
single labeled points with no instance: the points of one result (an annotation or prediction)
whose names belong to one skeleton become one instance of that skeleton's label; a name given
twice in one result is refused (``ls_ambiguous_keypoints``), since which instance each point
belongs to is not in the export. Pure conversion: no database, no HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from goldlabel.domain.errors import FieldError
from goldlabel.formats import json_array

NAME = "labelstudio"
EXTENSIONS: tuple[str, ...] = ()  # a .json file: told from a goldlabel JSON array by its content
MEDIA_TYPE = "application/json"
IMPORTS = True
EXPORTS = False

# Which goldlabel kinds each Label Studio control type can fill.
TYPE_KINDS = {
    "choices": ("choice", "multi_choice"),
    "labels": ("spans",),
    "rectanglelabels": ("boxes",),
    "polygonlabels": ("polygons",),
    "keypointlabels": ("keypoints",),
    "rating": ("rating",),
    "textarea": ("text",),
}
# Types goldlabel has no kind for, with what to do instead.
NOT_YET = {
    "polygon": "a polygon without a label: use PolygonLabels",
    "keypoint": "a keypoint without a label: use KeyPointLabels (the label names the point)",
    "rectangle": "a rectangle without a label: use RectangleLabels",
}
DEFAULT_ANNOTATOR_PREFIX = "ls-"


@dataclass(frozen=True, slots=True)
class Options:
    """How tasks become items: ``id_field`` names a data field to take the external_id from
    (default: the task id); ``annotator_prefix`` starts each pseudonymous annotator's name."""

    id_field: str | None = None
    annotator_prefix: str = DEFAULT_ANNOTATOR_PREFIX


def read_tasks(stream: BinaryIO) -> Iterator[tuple[int, Any]]:
    """``(line, task | FieldError)`` per task of the export (the JSON array reader's entries)."""
    return json_array.read_rows(stream)


def looks_like_tasks(first: Any) -> bool:
    """Whether the first element of a JSON array is a Label Studio task, not a goldlabel item:
    a task has ``data`` and an ``id`` or ``annotations`` / ``predictions``, and no ``external_id``."""
    return (isinstance(first, dict) and "external_id" not in first and isinstance(first.get("data"), dict)
            and any(k in first for k in ("id", "annotations", "predictions", "completions")))


def _err(line: int, loc: tuple, code: str, message: str) -> FieldError:
    return FieldError(loc, code, message, line)


def _millis(stamp: Any) -> int | None:
    """An ISO 8601 timestamp of the export ("2021-03-09T22:16:08.728353Z") in ms, else None."""
    if not isinstance(stamp, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def annotator_key(completed_by: Any) -> str | None:
    """The Label Studio user id of an annotation: an integer, or (older exports) an object with an
    ``id``. Never the e-mail: the annotators stay pseudonymous."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    if isinstance(completed_by, bool):
        return None
    if isinstance(completed_by, int) or (isinstance(completed_by, str) and completed_by.isdigit()):
        return str(int(completed_by))
    return None


class _Converter:
    def __init__(self, schema: Any, line: int, errors: list[FieldError]) -> None:
        self.questions = {q.name: q for q in schema.questions}
        self.line = line
        self.errors = errors

    def value(self, results: Any, data: dict, loc: tuple) -> dict[str, Any] | None:
        """A goldlabel answer from one ``result`` list, or None after recording the errors."""
        if not isinstance(results, list):
            self.errors.append(_err(self.line, loc, "ls_bad_result", "result must be a list of regions"))
            return None
        n_errors = len(self.errors)
        answer: dict[str, Any] = {}
        for j, region in enumerate(results):
            self._region(region, data, (*loc, j), answer)
        if len(self.errors) > n_errors:
            return None
        return answer

    def _region(self, region: Any, data: dict, loc: tuple, answer: dict[str, Any]) -> None:
        line, errors = self.line, self.errors
        if not isinstance(region, dict) or not isinstance(region.get("value"), dict):
            errors.append(_err(line, loc, "ls_bad_result", "a region is an object with a 'value' object"))
            return
        kind, name, value = region.get("type"), region.get("from_name"), region["value"]
        if not isinstance(kind, str) or not isinstance(name, str):
            errors.append(_err(line, loc, "ls_bad_result", "a region needs 'type' and 'from_name' strings"))
            return
        if kind in ("relation",) and "from_id" in region:
            errors.append(_err(line, (*loc, "type"), "ls_unsupported_type",
                               "relations between regions have no goldlabel kind; remove them or "
                               "import without them"))
            return
        if kind not in TYPE_KINDS:
            why = NOT_YET.get(kind, "goldlabel imports choices, labels, rectanglelabels, polygonlabels, "
                                    "keypointlabels, rating and textarea")
            errors.append(_err(line, (*loc, "type"), "ls_unsupported_type",
                               f"control type {kind!r} ({name!r}) cannot be imported: {why}"))
            return
        question = self.questions.get(name)
        if question is None:
            errors.append(_err(line, (*loc, "from_name"), "unknown_question",
                               f"no question named {name!r} in the label schema (questions: "
                               f"{', '.join(self.questions)}); name the question as the control"))
            return
        if question.kind not in TYPE_KINDS[kind]:
            errors.append(_err(line, (*loc, "type"), "ls_kind_mismatch",
                               f"{kind!r} results go to a {' or '.join(TYPE_KINDS[kind])} question; "
                               f"{name!r} is {question.kind}"))
            return
        getattr(self, f"_{kind}")(question, region, value, data, loc, answer)

    def _choices(self, question, region, value, data, loc, answer) -> None:
        choices = value.get("choices")
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            self.errors.append(_err(self.line, (*loc, "value", "choices"), "ls_bad_result",
                                    "choices must be a list of strings"))
            return
        if question.kind == "multi_choice":
            answer[question.name] = list(dict.fromkeys([*answer.get(question.name, ()), *choices]))
        elif len(choices) != 1 or question.name in answer:
            self.errors.append(_err(self.line, (*loc, "value", "choices"), "ls_multiple_choices",
                                    f"{question.name!r} is a choice question (one label); this region "
                                    f"chose {len(choices)}: make it multi_choice"))
        else:
            answer[question.name] = choices[0]

    def _labels(self, question, region, value, data, loc, answer) -> None:
        start, end, labels = value.get("start"), value.get("end"), value.get("labels")
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool):
            self.errors.append(_err(self.line, (*loc, "value"), "ls_unsupported_type",
                                    "only text spans with integer 'start' / 'end' offsets import "
                                    "(HyperText and paragraph offsets do not)"))
            return
        if not isinstance(labels, list) or not labels:
            self.errors.append(_err(self.line, (*loc, "value", "labels"), "ls_bad_result",
                                    "labels must be a non-empty list"))
            return
        spans = answer.setdefault(question.name, [])
        for label in labels:
            spans.append({"start": start, "end": end, "label": label})

    def _rectanglelabels(self, question, region, value, data, loc, answer) -> None:
        try:
            x, y, w, h = (float(value[k]) for k in ("x", "y", "width", "height"))
        except (KeyError, TypeError, ValueError):
            self.errors.append(_err(self.line, (*loc, "value"), "ls_bad_result",
                                    "a rectangle needs numeric x, y, width and height (percent)"))
            return
        if value.get("rotation") not in (None, 0, 0.0):
            self.errors.append(_err(self.line, (*loc, "value", "rotation"), "ls_rotated_box",
                                    "rotated rectangles have no goldlabel kind (boxes are axis-aligned)"))
            return
        labels = value.get("rectanglelabels")
        if not isinstance(labels, list) or len(labels) != 1:
            self.errors.append(_err(self.line, (*loc, "value", "rectanglelabels"), "ls_bad_result",
                                    "a box carries exactly one label"))
            return
        # Percent of the image; snapping a rounding overshoot (100.00000001) to the edge.
        fx, fy, fw, fh = (min(max(v / 100.0, 0.0), 1.0) for v in (x, y, w, h))
        fw, fh = min(fw, 1.0 - fx), min(fh, 1.0 - fy)
        scale = self._scale(question, region, data, loc)
        if scale is None:
            return
        sx, sy = scale
        answer.setdefault(question.name, []).append({"x": fx * sx, "y": fy * sy, "w": fw * sx, "h": fh * sy,
                                                     "label": labels[0]})

    def _scale(self, question, region, data, loc) -> tuple[float, float] | None:
        """What turns a fraction of the image into the question's coordinates: 1 for relative
        ones, the image size for pixels (the region's ``original_width`` / ``original_height``,
        else the task data's size fields; recorded in the data, which pixel answers are checked
        against). None after recording the error when the size is unknown."""
        if question.coordinates != "pixel":
            return 1.0, 1.0
        width, height = region.get("original_width"), region.get("original_height")
        if not (isinstance(width, int | float) and isinstance(height, int | float)):
            width, height = data.get(question.width_field), data.get(question.height_field)
        if not (isinstance(width, int | float) and isinstance(height, int | float)):
            self.errors.append(_err(self.line, (*loc, "original_width"), "image_size_unknown",
                                    f"{question.name!r} takes pixels: the region needs original_width / "
                                    f"original_height (or the task data {question.width_field!r} / "
                                    f"{question.height_field!r})"))
            return None
        data.setdefault(question.width_field, width)
        data.setdefault(question.height_field, height)
        return float(width), float(height)

    def _polygonlabels(self, question, region, value, data, loc, answer) -> None:
        points = value.get("points")
        if not (isinstance(points, list) and all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(c, int | float) and not isinstance(c, bool)
                                                            for c in p) for p in points)):
            self.errors.append(_err(self.line, (*loc, "value", "points"), "ls_bad_result",
                                    "a polygon needs points [[x, y], ...] in percent"))
            return
        if value.get("closed") is False:
            self.errors.append(_err(self.line, (*loc, "value", "closed"), "ls_open_polygon",
                                    "an open polygon (a polyline) encloses no region; close it in Label Studio"))
            return
        labels = value.get("polygonlabels")
        if not isinstance(labels, list) or len(labels) != 1:
            self.errors.append(_err(self.line, (*loc, "value", "polygonlabels"), "ls_bad_result",
                                    "a polygon carries exactly one label"))
            return
        scale = self._scale(question, region, data, loc)
        if scale is None:
            return
        sx, sy = scale
        # Points are not clamped: one off the image is the schema's point_out_of_bounds.
        answer.setdefault(question.name, []).append(
            {"points": [[x / 100.0 * sx, y / 100.0 * sy] for x, y in points], "label": labels[0]})

    def _keypointlabels(self, question, region, value, data, loc, answer) -> None:
        x, y, labels = value.get("x"), value.get("y"), value.get("keypointlabels")
        if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in (x, y)):
            self.errors.append(_err(self.line, (*loc, "value"), "ls_bad_result",
                                    "a keypoint needs numeric x and y (percent)"))
            return
        if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
            self.errors.append(_err(self.line, (*loc, "value", "keypointlabels"), "ls_bad_result",
                                    "a keypoint carries exactly one label: the name of the point"))
            return
        name = labels[0]
        owners = [s.label for s in question.skeletons if name in s.points]
        if len(owners) != 1:
            self.errors.append(_err(self.line, (*loc, "value", "keypointlabels"), "unknown_keypoint", (
                f"{name!r} is not a keypoint of any skeleton of {question.name!r}" if not owners else
                f"{name!r} is a keypoint of several skeletons ({', '.join(owners)}); the export cannot say which")))
            return
        scale = self._scale(question, region, data, loc)
        if scale is None:
            return
        instances = answer.setdefault(question.name, [])
        instance = next((i for i in instances if i["label"] == owners[0]), None)
        if instance is None:
            instance = {"label": owners[0], "points": {}}
            instances.append(instance)
        if name in instance["points"]:
            self.errors.append(_err(self.line, (*loc, "value", "keypointlabels"), "ls_ambiguous_keypoints",
                                    f"keypoint {name!r} appears twice in one result: Label Studio's points "
                                    "carry no instance, so goldlabel imports one instance per skeleton"))
            return
        instance["points"][name] = {"x": x / 100.0 * scale[0], "y": y / 100.0 * scale[1], "v": 2}

    def _rating(self, question, region, value, data, loc, answer) -> None:
        answer[question.name] = value.get("rating")

    def _textarea(self, question, region, value, data, loc, answer) -> None:
        text = value.get("text")
        if isinstance(text, list) and all(isinstance(t, str) for t in text):
            text = "\n".join(text)
        if not isinstance(text, str):
            self.errors.append(_err(self.line, (*loc, "value", "text"), "ls_bad_result",
                                    "text must be a string or a list of strings"))
            return
        answer[question.name] = text


def convert_task(task: Any, line: int, schema: Any, options: Options | None = None
                 ) -> tuple[dict[str, Any] | None, list[FieldError]]:
    """One task as a goldlabel item row (``external_id``, ``data``, ``meta``, ``predictions``,
    ``gold``, ``answers``), or the errors that keep it out. Values are converted, not validated:
    the import checks them against the schema like any other row."""
    options = options or Options()
    errors: list[FieldError] = []
    if not isinstance(task, dict):
        return None, [_err(line, (), "not_an_object", "each task must be a JSON object")]
    data = task.get("data")
    if not isinstance(data, dict):
        return None, [_err(line, ("data",), "bad_data", "a task needs a 'data' object")]
    data = dict(data)
    source = data.get(options.id_field) if options.id_field else task.get("id")
    if isinstance(source, int) and not isinstance(source, bool):
        source = str(source)
    if not isinstance(source, str) or not source:
        where = f"data field {options.id_field!r}" if options.id_field else "'id'"
        return None, [_err(line, ("data", options.id_field) if options.id_field else ("id",), "bad_external_id",
                           f"the task's {where} must be a non-empty string or an integer (the external_id)")]
    convert = _Converter(schema, line, errors)
    predictions = []
    for i, pred in enumerate(task.get("predictions") or ()):
        loc = ("predictions", i)
        if not isinstance(pred, dict):
            errors.append(_err(line, loc, "bad_prediction", "a prediction is an object with a 'result'"))
            continue
        value = convert.value(pred.get("result"), data, (*loc, "result"))
        if value is None:
            continue
        version = pred.get("model_version")
        predictions.append({"model_version": "" if version is None else str(version), "score": pred.get("score"),
                            "value": value})
    # One answer per annotator: a second annotation by the same user replaces the first
    # (goldlabel keeps one answer per item and annotator).
    answers: dict[str, dict[str, Any]] = {}
    gold = None
    annotations = task.get("annotations")
    if annotations is None:
        annotations = task.get("completions") or ()  # exports before Label Studio 1.0
    for i, ann in enumerate(annotations):
        loc = ("annotations", i)
        if not isinstance(ann, dict):
            errors.append(_err(line, loc, "ls_bad_annotation", "an annotation is an object with a 'result'"))
            continue
        if ann.get("was_cancelled"):
            continue  # skipped in Label Studio: no answer
        value = convert.value(ann.get("result"), data, (*loc, "result"))
        if value is None or not value:
            continue
        if ann.get("ground_truth"):
            gold = value
            continue
        who = annotator_key(ann.get("completed_by"))
        if who is None:
            errors.append(_err(line, (*loc, "completed_by"), "ls_bad_annotation",
                               "completed_by must be the Label Studio user id"))
            continue
        lead = ann.get("lead_time")
        duration = int(lead * 1000) if isinstance(lead, int | float) and 0 <= lead < 2**31 / 1000 else None
        answers[who] = {"annotator": options.annotator_prefix + who, "value": value,
                        "created_at": _millis(ann.get("updated_at")) or _millis(ann.get("created_at")),
                        "duration_ms": duration}
    if errors:
        return None, errors
    meta = task.get("meta")
    row: dict[str, Any] = {"external_id": source, "data": data,
                           "meta": meta if isinstance(meta, dict) and meta else None,
                           "predictions": predictions, "answers": list(answers.values())}
    if gold is not None:
        row["gold"] = gold
    return row, []


def item_rows(tasks: Iterator[tuple[int, Any]], schema: Any, options: Options | None = None
              ) -> Iterator[tuple[int, Any]]:
    """``(line, item row | FieldError | tuple of FieldErrors)``: the tasks converted; a task's
    problems travel together, so that a report counts tasks."""
    for line, task in tasks:
        if isinstance(task, FieldError):
            yield line, task
            continue
        row, errors = convert_task(task, line, schema, options)
        yield line, row if row is not None else tuple(errors)


# ---------------------------------------------------------------- labeling config -> label schema

# Control tags of the labeling config (lower-cased) -> the goldlabel kind they become.
_CONFIG_KINDS = {"choices": "choice", "labels": "spans", "rectanglelabels": "boxes", "polygonlabels": "polygons",
                 "keypointlabels": "keypoints", "rating": "rating", "textarea": "text"}
_OBJECT_TAGS = {"text", "hypertext", "image", "audio", "audioplus", "video", "paragraphs", "timeseries", "table",
                "pdf", "list", "ranker"}


def schema_from_config(xml: str) -> tuple[dict[str, Any], list[str]]:
    """A goldlabel label schema from a Label Studio labeling config (its XML), and notes on the
    controls left out (kinds goldlabel lacks). Question names are the control names, so an
    export of that project imports into the schema as it is. Raises ValueError on a config
    that is not XML, holds a DTD, or has no control goldlabel can ask."""
    import xml.etree.ElementTree as ET  # nosec B405  # a DTD (entities) is refused before parsing, below

    if "<!DOCTYPE" in xml.upper() or "<!ENTITY" in xml.upper():
        raise ValueError("the labeling config holds a DTD; a Label Studio config needs none")
    try:
        root = ET.fromstring(xml)  # nosec B314  # no DTD reaches here: no entity expansion
    except ET.ParseError as exc:
        raise ValueError(f"the labeling config is not XML: {exc}") from exc
    fields = {}  # object name -> the task data field it shows ("$image" -> "image")
    for element in root.iter():
        value = element.get("value", "")
        if element.tag.lower() in _OBJECT_TAGS and element.get("name") and value.startswith("$"):
            fields[element.get("name")] = value[1:]
    questions: list[dict[str, Any]] = []
    notes: list[str] = []
    for element in root.iter():
        tag, name = element.tag.lower(), element.get("name")
        if not name or tag in _OBJECT_TAGS:
            continue
        kind = _CONFIG_KINDS.get(tag)
        if kind is None:
            if tag.endswith("labels") or tag in ("taxonomy", "number", "datetime", "pairwise", "relations",
                                                 "brush", "polygon", "keypoint", "rectangle", "ellipse"):
                notes.append(f"{element.tag} {name!r} left out: "
                             + NOT_YET.get(tag, "goldlabel has no question kind for it"))
            continue
        question: dict[str, Any] = {"name": name, "kind": kind, "required": element.get("required") == "true"}
        labels = [child.get("alias") or child.get("value") for child in element
                  if child.tag.lower() in ("choice", "label") and (child.get("alias") or child.get("value"))]
        if kind == "choice":
            question["labels"] = labels
            if element.get("choice") == "multiple":
                question["kind"] = "multi_choice"
        elif kind == "keypoints":
            # Label Studio's labels name the points: one skeleton, labeled as the control.
            question["labels"] = [name]
            question["skeletons"] = {name: {"points": labels}}
            source = fields.get(element.get("toName", ""))
            if source:
                question["source"] = source
        elif kind in ("spans", "boxes", "polygons"):
            question["labels"] = labels
            source = fields.get(element.get("toName", ""))
            if source:
                question["source"] = source
        elif kind == "rating":
            top = element.get("maxRating", "5")
            question.update({"min": 1, "max": int(top) if top.isdigit() and int(top) > 1 else 5})
        questions.append(question)
    if not questions:
        raise ValueError("the labeling config has no control goldlabel can ask (Choices, Labels, "
                         "RectangleLabels, PolygonLabels, KeyPointLabels, Rating, TextArea)"
                         + (f"; {'; '.join(notes)}" if notes else ""))
    return {"questions": questions}, notes
