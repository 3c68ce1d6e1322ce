"""What listings (the runs table, the compare view) show of a run's values: cut to size.

One run with a 100 MB param must not make every poll of the runs table
100 MB. Listings show at most `MAX_CELL_CHARS` characters of any value (a
string, or the JSON text of a list or object) and of any name; the run page
(`/api/run`) has every value whole. A listed row names what was cut in its
``truncated`` list, so the page can say so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

MAX_CELL_CHARS = 200
MAX_KEY_CHARS = 200
MAX_ROW_KEYS = 200  # params (and tags, metrics) listed per run
MAX_COLUMNS = 1000  # distinct params (and tags, metrics) offered as columns
MAX_BROKEN_LISTED = 100
_WHOLE = frozenset({"id", "ref", "commit", "code_commit"})  # links: never cut


def _json_chunks(value: Any) -> Iterator[str]:
    """*value* as JSON text, a piece at a time (so a preview can stop early)."""
    if isinstance(value, dict):
        yield "{"
        for i, (k, v) in enumerate(value.items()):
            yield (", " if i else "") + json.dumps(str(k)[: MAX_CELL_CHARS + 1]) + ": "
            yield from _json_chunks(v)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "["
        for i, v in enumerate(value):
            if i:
                yield ", "
            yield from _json_chunks(v)
        yield "]"
    elif isinstance(value, str):
        yield json.dumps(value[: MAX_CELL_CHARS + 1], ensure_ascii=False)
    else:
        yield json.dumps(value)


def preview(value: Any, limit: int = MAX_CELL_CHARS) -> tuple[Any, bool]:
    """*value* as a listing shows it, and whether it was cut.

    A string longer than *limit* characters, or a list or object whose JSON
    is, becomes a string of its first *limit* - 1 characters and "…"; other
    values (and short lists and objects) are kept as they are.
    """
    if isinstance(value, str):
        return (value, False) if len(value) <= limit else (value[: limit - 1] + "…", True)
    if isinstance(value, (dict, list)):
        parts, size = [], 0
        for chunk in _json_chunks(value):
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                return "".join(parts)[: limit - 1] + "…", True
    return value, False


def short_key(key: str) -> str:
    """A param, metric or tag name as listings show it (cut like values)."""
    return key if len(key) <= MAX_KEY_CHARS else key[: MAX_KEY_CHARS - 1] + "…"


def cut_mapping(values: dict[str, Any], kind: str, cut: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (key, value) in enumerate(values.items()):
        if i >= MAX_ROW_KEYS:
            cut.append(kind)  # the whole group was cut short
            break
        shown, was_cut = preview(value)
        name = short_key(key)
        if was_cut or name != key:
            cut.append(f"{kind}.{name}")
        out[name] = shown
    return out


def listing_row(row: dict[str, Any]) -> dict[str, Any]:
    """*row* with long values cut (see `preview`); ``truncated`` names what was cut."""
    cut: list[str] = []
    for key, value in list(row.items()):
        if key in ("params", "metrics", "tags"):
            row[key] = cut_mapping(value or {}, key, cut)
        elif key not in _WHOLE and isinstance(value, str):
            row[key], was_cut = preview(value)
            if was_cut:
                cut.append(key)
    if cut:
        row["truncated"] = cut
    return row
