"""Text people read: counts that agree with their noun, progress lines on a terminal;
and text that cannot be stored as UTF-8 made storable."""

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


def escape_undecodable(text: str) -> str:
    """*text* with its lone surrogates written out as escapes, so that it encodes as UTF-8.

    Python decodes bytes that are not UTF-8 (a command-line argument, a file
    name, an environment variable) into lone surrogates (U+DC80-U+DCFF). Such
    a byte becomes the text ``\\xe9``, as `os.fsencode` gives the byte back;
    any other lone surrogate becomes ``\\udXXX``.
    """
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def escape_undecodable_in(value: Any) -> Any:
    """*value* (JSON-like: dicts, lists, strings...) with `escape_undecodable` applied to
    every string in it, keys included."""
    if isinstance(value, str):
        return escape_undecodable(value)
    if isinstance(value, dict):
        return {escape_undecodable_in(k): escape_undecodable_in(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escape_undecodable_in(v) for v in value]
    return value


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
