"""Progress of long commands (import, export, aggregate) on standard error.

On a terminal: a tqdm bar with the rate and the time left. Elsewhere (a log, a pipe, CI): a plain
line now and then (every ``PLAIN_EVERY_S`` seconds) and one at the end, never carriage returns.
``--quiet``: nothing. Standard output stays the command's own (an export may write to ``-``).
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO, Self, TextIO

PLAIN_EVERY_S = 5.0


def _size(n: float, unit: str) -> str:
    if unit != "B":
        return f"{n:,.0f} {unit}"
    for scale, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.1f} {name}"
    return f"{n:.0f} B"


class Progress:
    """``update(n)`` as work is done; ``close()`` (or the ``with`` block's end) when it is over."""

    def __init__(self, desc: str, total: int | None, unit: str, *, quiet: bool = False,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.clock = clock
        self.done = 0
        self.start = self.last = clock()
        self.bar: Any = None
        if not quiet and _isatty(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True,
                            unit_divisor=1024 if unit == "B" else 1000, file=self.stream,
                            dynamic_ncols=True, leave=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(ok=exc[0] is None)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        if self.quiet:
            return
        now = self.clock()
        # The last update is left to close()'s "done" line.
        if now - self.last >= PLAIN_EVERY_S and not (self.total and self.done >= self.total):
            self.last = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        text = f"{self.desc}: {_size(self.done, self.unit)}"
        if self.total:
            text += f" of {_size(self.total, self.unit)} ({100 * self.done / self.total:.0f}%)"
        text += f", {_size(rate, self.unit)}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", {(self.total - self.done) / rate:.0f} s left"
        return text + f", {elapsed:.0f} s"

    def close(self, ok: bool = True) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif not self.quiet and ok and self.done:
            self.stream.write(self.line(self.clock()) + ", done\n")
            self.stream.flush()
        self.quiet = True  # closed: nothing more


class Steps:
    """Work whose size is unknown beforehand (an EM fit runs until it converges): each step on a
    line of its own with the time the one before took; on a terminal, the running step's elapsed
    time ticks on that line (a tqdm counter of seconds)."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet, self.clock = quiet, clock
        self.text: str | None = None
        self.started = clock()
        self.tty = not quiet and _isatty(self.stream)
        self.bar: Any = None

    def start(self, text: str) -> None:
        self.finish()
        if self.quiet:
            return
        self.text, self.started = text, self.clock()
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(desc=text, total=None, file=self.stream, leave=True, mininterval=0.5,
                            bar_format="{desc}: {elapsed}")
            # A step is one blocking call: a thread ticks the elapsed time while it runs.
            self.bar.refresh()
            _Ticker(self.bar).start()
        else:
            self.stream.write(f"{text}…\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.text is None:
            return
        took = self.clock() - self.started
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        else:
            self.stream.write(f"{self.text}: {took:.1f} s\n")
            self.stream.flush()
        self.text = None


class _Ticker:
    """Refreshes a tqdm line twice a second until the bar is closed."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def start(self) -> None:
        import threading

        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.bar.disable:
            time.sleep(0.5)
            if not self.bar.disable:
                self.bar.refresh()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _CountingReader(io.RawIOBase):
    """Reports the bytes read from ``raw`` (seekable when it is: Parquet seeks)."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None]) -> None:
        self.raw = raw
        self.on_read = on_read

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        if n:
            self.on_read(n)
        return n


def reading(raw: BinaryIO, progress: Progress) -> io.BufferedReader:
    """``raw`` as a buffered binary stream whose reads move ``progress`` (in bytes)."""
    return io.BufferedReader(_CountingReader(raw, progress.update), buffer_size=1024 * 1024)
