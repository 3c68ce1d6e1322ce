"""Text for people: times, durations, values, statuses, JSON and tables, as the CLI and hooks show them."""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Sequence
from typing import Any

import click

from .jsonable import json_safe

STATUS_COLORS = {
    "FINISHED": "green",
    "RUNNING": "cyan",
    "FAILED": "red",
    "KILLED": "yellow",
    "CRASHED": "magenta",
    "CORRUPT": "red",
}


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    moment = _dt.datetime.fromtimestamp(ms / 1000).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %z")


def fmt_short_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# Longest value human output prints whole; `--format json` and `show --full` print all of it.
VALUE_LIMIT = 200


def shorten(text: str, limit: int | None = VALUE_LIMIT) -> str:
    """*text* cut to *limit* characters, saying how long it was (None: never cut)."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def fmt_value(value: Any, limit: int | None = VALUE_LIMIT) -> str:
    """A param, metric or tag value as the CLI and hooks show it; cut beyond *limit* characters.

    The one formatter of values for people on the command line: numbers to 6
    significant digits, nan/inf/-inf, true/false, lists and objects as
    compact JSON (characters as they are, not \\u escapes), "-" for none.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return shorten(json.dumps(value, ensure_ascii=False, separators=(",", ":")), limit)
    return shorten(str(value), limit)


def fmt_status(status: str, color: bool) -> str:
    return click.style(status, fg=STATUS_COLORS.get(status)) if color else status


def dump_json(value: Any) -> str:
    """*value* as the CLI prints `--format json`: strict JSON (see `jsonable`), indented."""
    return json.dumps(json_safe(value), indent=2, ensure_ascii=False, allow_nan=False)


def fit_widths(widths: Sequence[int], budget: int, floor: int = 12) -> list[int]:
    """Column widths summing to at most *budget*: the widest are cut to one common cap.

    The cap is the largest that fits (never below *floor*; a table that
    cannot fit at *floor* is left wider than *budget*), and the room left
    under the budget goes one character each to the first capped columns.
    A binary search over the cap: O(columns × log(widest)), whatever the
    widths, so a 10 MB cell costs no more than a 100-character one.
    """
    widths = list(widths)
    if sum(widths) <= budget or not widths or max(widths) <= floor:
        return widths

    def total(cap: int) -> int:
        return sum(min(w, cap) for w in widths)

    low, high = floor, max(widths)  # total(high) > budget
    if total(low) > budget:
        return [min(w, low) for w in widths]
    while high - low > 1:  # invariant: total(low) <= budget < total(high)
        middle = (low + high) // 2
        if total(middle) <= budget:
            low = middle
        else:
            high = middle
    room = budget - total(low)
    fitted = []
    for w in widths:
        if w > low and room > 0:
            fitted.append(low + 1)
            room -= 1
        else:
            fitted.append(min(w, low))
    return fitted


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], max_width: int | None = None
) -> str:
    """A plain aligned text table; the widest columns are cut to fit the terminal."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    if not max_width:
        import shutil  # only tables need it; `gitxp log` and --format json do not

        max_width = shutil.get_terminal_size((160, 24)).columns
    limit = max_width
    widths = fit_widths(widths, limit - 2 * (len(widths) - 1))

    def cut(text: str, width: int) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = ["  ".join(cut(h, w).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(cut(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )
    return "\n".join(lines)
