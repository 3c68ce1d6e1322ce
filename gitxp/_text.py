"""Text people read: counts that agree with their noun, progress lines on a terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def count(n: int, noun: str) -> str:
    """*n* and *noun*, plural unless *n* is 1: '1 run', '2 runs', '0 files'."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def size(n: int) -> str:
    """A byte count for people: '512 B', '4.1 KiB', '1.3 GiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - the loop returns at GiB


def progress_to(stream: Any) -> Callable[[str], None]:
    """A progress callback writing to *stream* (a terminal): a line ending in '\\r'
    is redrawn in place by the next one, as git's progress lines are."""
    state = {"open": False}

    def report(text: str) -> None:
        if text.endswith("\r"):
            stream.write("\r\x1b[K" + text[:-1])
            state["open"] = True
        else:
            stream.write(("\r\x1b[K" if state["open"] else "") + text)
            state["open"] = False
        stream.flush()

    return report
