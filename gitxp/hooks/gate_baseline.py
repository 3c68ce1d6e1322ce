"""The metric gate's baseline: compare the pushed commit's run with a registered model's run.

`[tool.gitxp.gate]` names the baseline with any run reference, usually a
model stage, and conditions read its values with the ``baseline.`` prefix::

    [tool.gitxp.gate]
    baseline = "churn#prod"
    require = ["metrics.acc > baseline.metrics.acc", "metrics.loss <= baseline.metrics.loss"]

Before a condition is checked, each ``baseline.<field>`` in it is replaced by
the baseline run's value of ``<field>`` written as a literal of the filter
grammar, so the conditions stay plain filters (`gitxp.store.filter`). A
value the baseline run lacks makes its condition unmet, as a missing value
matches nothing in a filter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import FilterSyntaxError, GitxpError
from ..store.filter import compile_filter, field_getters

if TYPE_CHECKING:
    from ..store.repo import Repo

PREFIX = "baseline."
# quoted strings are matched (and skipped) so a "baseline.x" inside one stays text
_SCAN = re.compile(
    r"""'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*"
      |(?<![\w.`])(?P<whole>baseline\.(?P<field>[A-Za-z_]\w*
          (?:\.(?:`[^`]*`|"[^"]*"|[^\s=!<>(),'"]+))?))""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class Baseline:
    """The run a gate compares with: the *reference* it was named by, and its listing row."""

    reference: str
    row: dict[str, Any]

    @property
    def label(self) -> str:
        """How failure reports name it: ``churn#prod (run <id> <name>)``."""
        return f"{self.reference} (run {self.row.get('id')}, {self.row.get('name')})"


def baseline_fields(condition: str) -> list[tuple[int, str, str]]:
    """The ``baseline.<field>`` of *condition* (outside quoted strings): (position, as
    written, the field)."""
    out = []
    for m in _SCAN.finditer(condition):
        if m["whole"]:
            out.append((m.start("whole"), m["whole"], m["field"]))
    return out


def uses_baseline(conditions: list[str]) -> bool:
    """Whether any of *conditions* reads the baseline."""
    return any(baseline_fields(c) for c in conditions)


def _literal(value: Any) -> str | None:
    """*value* as a literal of the filter grammar; None when it cannot be one."""
    if isinstance(value, bool) or value is None:
        return None if value is None else f"'{value}'"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else None
    text = str(value)
    return "'" + text.replace("'", "''") + "'"


def bind(condition: str, row: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """*condition* with every ``baseline.<field>`` replaced by *row*'s value (a placeholder
    number when *row* is None, to check the syntax), and the values used ({as written: value}).

    A value *row* lacks stays None in the values, and the returned condition is ''.
    """
    values: dict[str, Any] = {}
    text = condition
    missing = False
    for pos, written, field in reversed(baseline_fields(condition)):
        getters = field_getters(field)  # raises FilterSyntaxError for an unknown field
        value = None if row is None else next(iter(getters.values()))(row)
        values[written] = value
        literal = "0" if row is None else _literal(value)
        if literal is None:
            missing = True
            continue
        text = text[:pos] + literal + text[pos + len(written) :]
    return ("" if missing else text), dict(reversed(values.items()))


def check_condition(condition: str) -> None:
    """Raise FilterSyntaxError when *condition* does not parse, with or without ``baseline.``."""
    shape, used = bind(condition, None)
    try:
        compile_filter(shape)
    except FilterSyntaxError as exc:
        if not used:
            raise
        raise FilterSyntaxError(
            condition,
            0,
            f"{exc.message}; a baseline value goes right of the operator, after the run's "
            "field: metrics.acc > baseline.metrics.acc",
        ) from None


def load_baseline(repo: Repo, reference: str) -> Baseline:
    """The run *reference* names (``churn#prod``, ``churn@v1.2.0``, a run id or name), read
    even when its ref was removed; a reference matching nothing raises its one-line error."""
    from ..store.record import read_row

    _, commit = repo.resolve(reference)
    try:
        row = read_row(repo.git, commit)
    except Exception as exc:  # a corrupt run: say which, in one line
        raise GitxpError(f"the gate's baseline {reference} cannot be read: {exc}") from None
    return Baseline(reference, dict(row))


def no_baseline_error(condition: str) -> GitxpError:
    """The error for a condition that reads the baseline when none is set."""
    return GitxpError(
        f"gate condition {condition!r} compares with a baseline, but none is set: add "
        'baseline = "MODEL#STAGE" (e.g. "churn#prod") under [tool.gitxp.gate] or give --baseline'
    )


__all__ = [
    "PREFIX",
    "Baseline",
    "baseline_fields",
    "bind",
    "check_condition",
    "load_baseline",
    "no_baseline_error",
    "uses_baseline",
]
