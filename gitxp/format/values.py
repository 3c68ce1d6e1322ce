"""Checking and normalising what users log: keys, params, tags and metric values.

Params keep their JSON type (int, float, bool, str, null, lists, objects);
numpy scalars and small arrays become their Python equivalents. Anything
that cannot round-trip through JSON exactly is refused with an error that
names the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Protocol, TypeGuard

from ..errors import InvalidValueError

MAX_KEY_LENGTH = 250
MAX_ARRAY_PARAM = 1000
_KEY_RE = re.compile(r"^[\w\-. /:+=@,]+$")


def check_key(kind: str, key: object) -> str:
    """Return *key* if it is a usable param/metric/tag name, else raise."""
    if not isinstance(key, str):
        raise InvalidValueError(f"{kind} key {key!r}", "keys must be strings")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidValueError(
            f"{kind} key {key!r}", f"keys must be 1 to {MAX_KEY_LENGTH} characters long"
        )
    if not _KEY_RE.fullmatch(key) or key.startswith("/") or key.endswith("/") or "//" in key:
        raise InvalidValueError(
            f"{kind} key {key!r}",
            "use letters, digits, spaces and _ - . / : + = @ , (no leading, trailing or "
            "double slash)",
        )
    return key


def check_text(what: str, value: str) -> str:
    """Return *value* if it can be stored (as UTF-8), else raise naming *what*.

    A lone surrogate (what Python makes of bytes that are not UTF-8, e.g.
    from `os.fsdecode`) cannot be written into JSON or a commit message.
    """
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise InvalidValueError(
            what,
            f"contains U+{ord(bad):04X}, which is not text (undecodable bytes?); pass "
            "valid Unicode, e.g. bytes.decode('utf-8', 'backslashreplace')",
        ) from None
    return value


def check_name(what: str, value: object) -> str | None:
    """*value* (a run's name or experiment) stripped, if it is None or non-empty text."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidValueError(what, f"{value!r} must be a non-empty string")
    return check_text(what, value).strip()


def check_note(text: object) -> str:
    """*text* if it can be a run's note, else raise."""
    if not isinstance(text, str):
        raise InvalidValueError("note", f"notes are text, got {type(text).__name__}")
    return check_text("note", text)


def _is_numpy(value: object) -> bool:
    return type(value).__module__ == "numpy"


class _NumpyOne(Protocol):
    """A numpy value holding exactly one number: a numpy scalar or one-element array."""

    def item(self) -> object: ...


def _is_numpy_one(value: object) -> TypeGuard[_NumpyOne]:
    """Whether *value* is a numpy scalar or array of one element (`.item()` gives it)."""
    return _is_numpy(value) and getattr(value, "size", None) == 1 and hasattr(value, "item")


def normalize_param(key: str, value: Any, _depth: int = 0) -> Any:
    """Convert *value* to a JSON-exact Python value or raise InvalidValueError."""
    if isinstance(value, str):
        return check_text(f"param {key!r}", value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError(
                f"param {key!r}", f"{value} is not a finite number; log it as a metric or tag"
            )
        return float(value)
    if _is_numpy(value):
        if hasattr(value, "ndim") and getattr(value, "ndim", 0) > 0:
            if value.size > MAX_ARRAY_PARAM:
                raise InvalidValueError(
                    f"param {key!r}",
                    f"an array of {value.size} values is too large for a param "
                    f"(at most {MAX_ARRAY_PARAM}); log it as an artifact",
                )
            return normalize_param(key, value.tolist(), _depth)
        if hasattr(value, "item"):
            return normalize_param(key, value.item(), _depth)
    if _depth > 20:
        raise InvalidValueError(f"param {key!r}", "nested more than 20 levels deep")
    if isinstance(value, (list, tuple)):
        return [normalize_param(key, v, _depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidValueError(f"param {key!r}", f"object keys must be strings, got {k!r}")
            out[check_text(f"param {key!r}", k)] = normalize_param(key, v, _depth + 1)
        return out
    raise InvalidValueError(
        f"param {key!r}",
        f"cannot store a {type(value).__name__} ({value!r:.60}); use a number, string, bool, "
        "None, list or dict",
    )


def to_float(key: str, value: object) -> float:
    """Convert a metric value to float64 or raise InvalidValueError naming the key."""
    if isinstance(value, bool):
        return float(value)
    try:
        if isinstance(value, (int, float)) or _is_numpy(value):
            if _is_numpy(value) and getattr(value, "ndim", 0) > 0:
                raise TypeError
            return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        pass
    if isinstance(value, int):
        raise InvalidValueError(f"metric {key!r}", f"{value} is too large for a float64")
    raise InvalidValueError(
        f"metric {key!r}",
        f"value {value!r:.60} is not a number; metrics are float64 "
        "(use log_param or set_tag for text, log_metric_array for arrays)",
    )


def to_tag(key: str, value: object) -> str:
    """Tags are strings; numbers and bools are stored as their text."""
    if isinstance(value, str):
        return check_text(f"tag {key!r}", value)
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    if _is_numpy_one(value):
        return str(value.item())
    raise InvalidValueError(f"tag {key!r}", f"tag values are strings, got {type(value).__name__}")


def check_int(key: str, what: str, value: Any) -> int:
    """*value* (a step or timestamp of metric *key*) as an int64-sized int, or raise."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InvalidValueError(f"metric {key!r}", f"{what} must be an integer, got {value!r:.40}")
    result = int(value.__index__())
    if not -(2**63) <= result < 2**63:
        raise InvalidValueError(f"metric {key!r}", f"{what} {result} does not fit in int64")
    return result


def int_array(key: str, what: str, values: Iterable[int], n: int) -> Any:
    """*values* (steps or timestamps for *n* points of metric *key*) as an int64 array."""
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise InvalidValueError(f"metric {key!r}", f"{what} must be a 1-d array of integers")
    if len(arr) != n:
        raise InvalidValueError(f"metric {key!r}", f"{len(arr)} {what} given for {n} values")
    return arr.astype(np.int64)


def json_float(value: float) -> float | str:
    """JSON cannot hold NaN or infinities: store them as "NaN", "Infinity", "-Infinity"."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def from_json_float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(value, value))
    return float(value)  # type: ignore[arg-type]


def non_negative(what: str, value: object, *, zero_ok: bool = True, unit: str = "") -> float:
    """*value* as a float when it is a real number of 0 or more (above 0 unless *zero_ok*).

    For settings such as tolerances, grace periods and intervals; anything
    else (a string, None, NaN, a bool) is an InvalidValueError naming *what*.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or math.isnan(value)
        or value < 0
        or (value == 0 and not zero_ok)
    ):
        bound = "0 or more" if zero_ok else "above 0"
        of = f" of {unit}" if unit else ""
        raise InvalidValueError(what, f"{value!r}: give a number{of}, {bound}")
    return float(value)
