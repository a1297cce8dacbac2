"""What user-supplied JSON and text may hold: limits every store and every response can carry.

Found by an attack on a live server (issue 17, items 7 and 8): item data nested ~253 levels
imported, then every lease of it failed (orjson serialises at most 255 levels, and a lease wraps
the data in two more), so the item stayed reserved for ever; lone UTF-16 surrogates (``"\\ud800"``
in JSON) cannot be encoded as UTF-8 for the database; PostgreSQL refuses NUL characters in text
and ``jsonb``; integers past 64 bits fit no column and no orjson output. Each is refused up front
with a stable code instead of failing later with a 500:

- ``too_deep``: nesting past ``MAX_DEPTH`` levels (objects and arrays);
- ``nul_character``, ``lone_surrogate``: in any string or object key;
- ``integer_out_of_range``: an integer outside the signed 64-bit range.

``check_json`` serialises once with orjson (C; what is stored anyway) and walks the value in
Python only when the bytes say something may be wrong, so the common value costs one
``orjson.dumps`` and three byte scans.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

import orjson

from goldlabel.domain.errors import FieldError

# Far below orjson's 255 (a lease or an export wraps item data in a few levels more) and far
# above any real item: a page of nested annotations is a handful of levels.
MAX_DEPTH = 64
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")

MESSAGES = {
    "nul_character": "text may not contain NUL (\\u0000) characters",
    "lone_surrogate": "text may not contain lone UTF-16 surrogates (\\ud800-\\udfff)",
    "integer_out_of_range": f"integers must lie in [{INT64_MIN}, {INT64_MAX}]",
    "too_deep": f"JSON may nest at most {MAX_DEPTH} levels of objects and arrays",
}


def text_problem(text: str) -> str | None:
    """The code of what makes ``text`` unstorable, or None."""
    found = _BAD_CHAR.search(text)
    if found is None:
        return None
    return "nul_character" if found.group() == "\x00" else "lone_surrogate"


def printable(text: str) -> str:
    """``text`` with lone surrogates spelled as escapes: safe to put in an error response."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def check_json(value: Any, loc: tuple[str | int, ...] = (), *, line: int | None = None,
               encoded: bytes | None = None, max_depth: int = MAX_DEPTH) -> list[FieldError]:
    """What makes a JSON value unstorable (at most one error: the first found), or []. Pass
    ``encoded`` when the caller has ``orjson.dumps(value)`` already."""
    if encoded is None:
        try:
            encoded = orjson.dumps(value)
        except orjson.JSONEncodeError:
            encoded = None  # a surrogate, a huge integer or too deep: the walk says which, where
    if encoded is not None and b"\\u0000" not in encoded and _shallow(encoded, value, max_depth):
        # orjson refuses lone surrogates and integers past 64 bits; NUL is escaped as \u0000
        # (the bytes may also match a literal backslash text, which the walk then clears).
        return []
    return _walk(value, loc, line, max_depth)


_chains = threading.local()


@functools.cache
def _orjson_depth_limit() -> int:
    """How many nested containers orjson serialises (254 in orjson 3.x), found once."""
    value: Any = None
    for depth in range(1, 4096):
        value = [value]
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            return depth - 1
    return 4095


def _shallow(encoded: bytes, value: Any, max_depth: int) -> bool:
    """True when ``value`` nests at most ``max_depth`` levels, at C speed. Depth is at most the
    number of opening brackets; past that, orjson itself (which refuses values deeper than its
    limit) serialises the value inside ``limit - max_depth`` lists: it succeeds exactly when the
    value is shallow enough."""
    if encoded.count(b"{") + encoded.count(b"[") <= max_depth:
        return True
    room = _orjson_depth_limit() - max_depth
    if room < 1:
        return False  # the walk decides
    chains = _chains.__dict__.setdefault("by_room", {})
    if room not in chains:  # built once per thread: 190 list allocations cost more than the dump
        inner: list[Any] = [None]
        outer = inner
        for _ in range(room - 1):
            outer = [outer]
        chains[room] = (outer, inner)
    outer, inner = chains[room]
    inner[0] = value
    try:
        orjson.dumps(outer)
    except orjson.JSONEncodeError:
        return False
    finally:
        inner[0] = None
    return True


def _walk(value: Any, loc: tuple[str | int, ...], line: int | None, max_depth: int) -> list[FieldError]:
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, loc, 0)]
    while stack:
        node, where, depth = stack.pop()
        code = None
        if isinstance(node, str):
            code = text_problem(node)
        elif isinstance(node, bool):
            pass
        elif isinstance(node, int):
            if not INT64_MIN <= node <= INT64_MAX:
                code = "integer_out_of_range"
        elif isinstance(node, (dict, list)):
            if depth >= max_depth:
                code = "too_deep"
            elif isinstance(node, dict):
                for key, child in node.items():
                    key_code = text_problem(key) if isinstance(key, str) else None
                    if key_code is not None:
                        return [FieldError((*where, printable(key)), key_code, MESSAGES[key_code] + " (in a key)",
                                           line)]
                    stack.append((child, (*where, key), depth + 1))
            else:
                stack.extend((child, (*where, i), depth + 1) for i, child in enumerate(node))
        if code is not None:
            return [FieldError(where, code, MESSAGES[code], line)]
    return []
