"""The snapshot's progress line (a TTY only, big files only)."""

from __future__ import annotations

import time
from typing import IO, Final

PROGRESS_MIN_BYTES: Final = 64 << 20  # show a progress line for files at least this big (TTY only)


class _Progress:
    """A one-line progress display on a TTY for big files; silent otherwise."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last = 0.0
        self.shown = False

    def __call__(self, source: str, done: int, size: int) -> None:
        if size < PROGRESS_MIN_BYTES:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < size:
            return
        self.last = now
        pct = min(100, done * 100 // max(size, 1))
        bar = "#" * (pct // 5) + "-" * (20 - pct // 5)
        name = source if len(source) <= 48 else "..." + source[-45:]
        self.stream.write(f"\r  evidence [{bar}] {pct:3d}% {done >> 20}/{size >> 20} MiB {name}\x1b[K")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
