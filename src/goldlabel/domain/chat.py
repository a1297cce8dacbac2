"""Chat transcripts: an item whose data holds ``messages``, a conversation turn by turn.

The shape is the one chat models are trained and evaluated on (OpenAI's chat format, Hugging
Face's ``messages`` column), so such data imports as it lies::

    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}],
     "responses": [{"id": "a", "content": "..."}, {"id": "b", "content": "..."}]}

Each message is an object with ``role`` (``system``, ``user``, ``assistant`` or ``tool``) and
``content`` (a string, shown as Markdown: never as HTML), and optionally ``name`` (a string).
Candidate replies to rank go in ``responses`` (read by a ``ranking`` question). A question with
``turn`` (an index into ``messages``, negative from the end) is shown under that turn: a rating
of the last assistant reply is ``{"kind": "rating", "turn": -1}``.

Import refuses a malformed transcript with one of the codes in :data:`MESSAGES`, and an item
that lacks a turn a question asks about with ``missing_turn``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from goldlabel.domain.errors import FieldError

FIELD = "messages"
ROLES = ("system", "user", "assistant", "tool")
MAX_TURNS = 1000
_KEYS = frozenset({"role", "content", "name"})

MESSAGES = {
    "bad_messages": f"'{FIELD}' must be a non-empty list of at most {MAX_TURNS} turns",
    "bad_turn": "a turn must be an object with 'role' and 'content' (and optionally 'name')",
    "bad_turn_role": f"a turn's role must be one of {', '.join(ROLES)}",
    "bad_turn_content": "a turn's content must be a string",
    "bad_turn_name": "a turn's name must be a string of 1 to 100 characters",
    "missing_turn": "the label schema asks about a turn this conversation does not have",
}


def check_messages(data: Mapping[str, Any], loc: tuple[str | int, ...] = ("data",),
                   turns_asked: Iterable[int] = ()) -> list[FieldError]:
    """The problems of ``data[FIELD]`` (none when the item is not a chat transcript), and
    ``missing_turn`` for each index of ``turns_asked`` that the transcript lacks."""
    asked = tuple(turns_asked)
    if FIELD not in data:
        if not asked:
            return []
        return [FieldError((*loc, FIELD), "missing_turn",
                           f"{MESSAGES['missing_turn']}: the item has no '{FIELD}'")]
    value = data[FIELD]
    where = (*loc, FIELD)
    if not isinstance(value, list) or not value or len(value) > MAX_TURNS:
        return [FieldError(where, "bad_messages", MESSAGES["bad_messages"])]
    errors: list[FieldError] = []
    for i, turn in enumerate(value):
        at = (*where, i)
        if not isinstance(turn, Mapping) or "role" not in turn or "content" not in turn \
                or not _KEYS.issuperset(turn):
            errors.append(FieldError(at, "bad_turn", f"turn {i}: {MESSAGES['bad_turn']}"))
            continue
        if turn["role"] not in ROLES:
            errors.append(FieldError((*at, "role"), "bad_turn_role",
                                     f"turn {i}: {MESSAGES['bad_turn_role']}, got {turn['role']!r}"))
        if not isinstance(turn["content"], str):
            errors.append(FieldError((*at, "content"), "bad_turn_content",
                                     f"turn {i}: {MESSAGES['bad_turn_content']}"))
        name = turn.get("name")
        if name is not None and not (isinstance(name, str) and 0 < len(name) <= 100):
            errors.append(FieldError((*at, "name"), "bad_turn_name", f"turn {i}: {MESSAGES['bad_turn_name']}"))
    for index in asked:
        if not -len(value) <= index < len(value):
            errors.append(FieldError(where, "missing_turn",
                                     f"{MESSAGES['missing_turn']}: turn {index} of {len(value)}"))
    return errors
