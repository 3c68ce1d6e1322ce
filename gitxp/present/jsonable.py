"""Values as strict JSON, the one way every surface prints them.

JSON has no NaN or infinities. Wherever gitxp hands out JSON (`--format
json` of the CLI, the web UI's API, the data inlined in a report) they are
the strings "NaN", "Infinity" and "-Infinity", the spelling the stored
summaries use (`gitxp.format.values.json_float`), so that a value reads the
same in a run's files and in everything that shows it.
"""

from __future__ import annotations

import json
from typing import Any

from ..format.values import json_float


def json_safe(value: Any) -> Any:
    """*value* with every non-finite float, at any depth, replaced by its JSON spelling.

    Dicts come back as dicts, lists and tuples as lists; anything else as it is.
    """
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def compact_json(value: Any) -> str:
    """*value* (already JSON-safe) as strict JSON on one line: what the web UI and report carry.

    A NaN or infinity left in *value* is a ValueError, never invalid JSON.
    """
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
