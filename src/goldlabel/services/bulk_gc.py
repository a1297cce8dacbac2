"""What bulk jobs (file imports, exports) share: fewer passes of Python's cyclic garbage collector.

An import or an export of a million items allocates tens of millions of small containers (rows,
tuples, dicts, lists), nearly all freed by reference counting, none of them in a cycle. With
CPython's default thresholds (a young-generation pass every 700 allocations) the collector still
ran thousands of passes over them and, as batches outlived young passes, full passes over every
object of the process. The threshold below saves about as much client CPU as switching the
collector off (measured: docs/benchmarks.md, "Numbers behind the code").
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

# Allocations between young-generation passes while a bulk job runs (CPython's default: 700).
# The older generations keep their multipliers, so collection still happens, just less often.
BULK_GC_THRESHOLD = 100_000

_lock = threading.Lock()
_running = 0
_saved: tuple[int, ...] = ()


@contextlib.contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Raise the collector's threshold for the duration (process-wide: the collector is). Jobs
    may overlap in threads: the first one in raises it, the last one out puts it back."""
    global _running, _saved  # one setting of the process, guarded by _lock
    with _lock:
        if _running == 0:
            _saved = gc.get_threshold()
            if _saved[0]:  # 0: automatic collection is off, leave it so
                gc.set_threshold(max(BULK_GC_THRESHOLD, _saved[0]), *_saved[1:])
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                gc.set_threshold(*_saved)
