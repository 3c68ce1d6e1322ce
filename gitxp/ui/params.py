"""Numbers in the UI's query strings, checked: a bad one is a 400 that names the parameter.

Python's `float()` takes ``nan``, ``inf``, ``1e309`` (infinity), ``1_0`` and
thousands of digits; none of those is a page offset or a number of points.
These accept plain decimal numbers only, within a stated range.
"""

from __future__ import annotations

import math
import re

from ..errors import InvalidValueError

_INT = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
MAX_NUMBER_CHARS = 40


class BadParameter(InvalidValueError):
    """A query parameter that is not a number in its range; `what` is its name."""


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 20 else raw[:20] + "…")


def int_param(name: str, raw: str | None, default: int, lo: int, hi: int) -> int:
    """*raw* as a whole number in [lo, hi]; *default* when absent or empty."""
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not _INT.fullmatch(text) or not lo <= int(text) <= hi:
        raise BadParameter(name, f"must be a whole number from {lo} to {hi}, not {_shown(raw)}")
    return int(text)


def float_param(name: str, raw: str | None) -> float | None:
    """*raw* as a finite number; None when absent or empty."""
    if raw is None or raw == "":
        return None
    text = raw.strip()
    value = float(text) if len(text) <= MAX_NUMBER_CHARS and _FLOAT.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise BadParameter(name, f"must be a finite number, not {_shown(raw)}")
    return value
