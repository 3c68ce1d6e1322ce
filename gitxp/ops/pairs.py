"""Reading `KEY=VALUE` pairs from the command line: `-p lr=0.25` is a float, `-p n=3` an int.

Values follow the YAML 1.2 core schema for scalars, which is what people
expect from config files: `3` is an int, `0.25` and `1e-3` are floats,
`true`/`false` are bools, `null`/`~` is None; a JSON array or object
(`[1, 2]`, `{"a": 1}`) is parsed as JSON; a quoted value (`"3"`) is the
string inside the quotes; anything else is the string as typed.
Implemented here rather than with PyYAML so gitxp needs no YAML library.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import UsageError

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_NULL = {"null", "Null", "NULL", "~"}


def parse_scalar(text: str) -> Any:
    """The typed value of one command-line value (see the module docstring)."""
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _NULL:
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        if text[0] == '"':
            try:
                value = json.loads(text)
            except ValueError:
                return text[1:-1]
            return value if isinstance(value, str) else text[1:-1]
        return text[1:-1].replace("''", "'")
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def parse_pairs(
    pairs: tuple[str, ...] | list[str], what: str, typed: bool = True
) -> dict[str, Any]:
    """Turn `("lr=0.1", "name=x")` into `{"lr": 0.1, "name": "x"}`; a bad pair is a UsageError."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{what} {pair!r} must look like KEY=VALUE, e.g. lr=0.01")
        if key in out:
            raise UsageError(f"{what} {key!r} is given twice")
        out[key] = parse_scalar(value) if typed else value
    return out
