"""External models: the protocol by which any model (an LLM judge, a service of your own, a
Python function) gives goldlabel predictions with scores for a batch of items.

One request, one answer, JSON, the same over HTTP (``POST`` to the model's URL) and for a Python
entry point (a callable ``f(request: dict) -> dict``)::

    request  {"version": 1, "project_id": 7, "question": {"name": "sentiment",
              "labels": ["positive", "negative"]},
              "items": [{"id": 41, "data": {"text": "..."}}, ...]}
    answer   {"version": 1, "predictions": [{"id": 41, "label": "positive", "score": 0.93}, ...]}

``label`` is one of the question's labels, ``score`` the model's probability of it in [0, 1].
An item may be left out (the model abstains: it stays with the humans); an id that was not
asked, a label outside the question's, a score outside [0, 1] or a second answer for one item
makes that prediction malformed (dropped and reported); an answer that is not such an object,
or another ``version``, is malformed as a whole. Nothing here does I/O: the platform calls the
model (services/external_models.py) and uses :func:`build_request` and :func:`parse_answer`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

PROTOCOL_VERSION = 1


class MalformedAnswer(ValueError):
    """The answer as a whole does not follow the protocol."""


@dataclass
class ParsedAnswer:
    """:func:`parse_answer`'s result: the valid predictions (item id -> (label, score)) and one
    line per malformed prediction."""

    predictions: dict[int, tuple[str, float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def build_request(project_id: int, question: str, labels: Sequence[str],
                  items: Sequence[tuple[int, Any]]) -> dict[str, Any]:
    """The request for a batch of ``(item id, item data)``."""
    return {"version": PROTOCOL_VERSION, "project_id": int(project_id),
            "question": {"name": question, "labels": list(labels)},
            "items": [{"id": int(i), "data": data} for i, data in items]}


def parse_answer(answer: Any, asked: Sequence[int], labels: Sequence[str]) -> ParsedAnswer:
    """Check an answer against the request it answers (``asked``: the item ids sent); raises
    :class:`MalformedAnswer` when the answer as a whole is wrong."""
    if not isinstance(answer, dict):
        raise MalformedAnswer(f"the answer must be a JSON object, got {type(answer).__name__}")
    if answer.get("version") != PROTOCOL_VERSION:
        raise MalformedAnswer(f"the answer's version must be {PROTOCOL_VERSION}, got {answer.get('version')!r}")
    predictions = answer.get("predictions")
    if not isinstance(predictions, list):
        raise MalformedAnswer("the answer must have a list 'predictions'")
    wanted, allowed = {int(i) for i in asked}, set(labels)
    out = ParsedAnswer()
    for k, p in enumerate(predictions):
        if not isinstance(p, dict):
            out.problems.append(f"predictions[{k}] is not an object")
            continue
        item_id, label, score = p.get("id"), p.get("label"), p.get("score")
        if isinstance(item_id, bool) or not isinstance(item_id, int) or item_id not in wanted:
            out.problems.append(f"predictions[{k}]: id {item_id!r} was not asked")
        elif item_id in out.predictions:
            out.problems.append(f"predictions[{k}]: a second prediction for item {item_id}")
            del out.predictions[item_id]
            wanted.discard(item_id)
        elif label not in allowed:
            out.problems.append(f"predictions[{k}]: label {label!r} is not one of the question's")
        elif (isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score)
              or not 0 <= score <= 1):
            out.problems.append(f"predictions[{k}]: score {score!r} is not a probability in [0, 1]")
        else:
            out.predictions[item_id] = (str(label), float(score))
    return out


def load_entry_point(spec: str) -> Callable[[dict[str, Any]], Any]:
    """The callable named ``module:attribute`` (``attribute`` may be dotted), imported."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"an entry point is 'module:callable', got {spec!r}")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{spec!r} is not callable")
    return cast("Callable[[dict[str, Any]], Any]", target)
