"""A branch's runs against the best runs of its base: what a pull-request report shows.

The base's runs are the FINISHED runs whose code commit is the base
commit or one of its ancestors; the branch's runs are those whose code
commit is reachable from the head but not from the base (`git log
BASE..HEAD`). A run recorded with uncommitted changes ran on a snapshot
commit whose first parent is the HEAD of the time: it counts by that
commit. For each metric, the base's best run is the one with the best last
value in the metric's direction (`max` or `min`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError, InvalidValueError
from ._repoarg import RepoArg, opened

if TYPE_CHECKING:
    from ..git.repository import GitRepo

_log = logging.getLogger("gitxp.ops.branch_compare")
GOALS = ("max", "min")
MAX_RUNS = 50
MAX_COMMITS = 20
DEFAULT_METRICS = 6
# a metric is minimised when one of the words of its name is one of these (or ends in loss/error)
_LOWER_WORDS = (
    "loss error err mse mae rmse mape nll perplexity ppl wer cer fpr fnr latency time "
    "duration seconds secs sec ms"
)
LOWER_IS_BETTER = frozenset(_LOWER_WORDS.split())
_WORD = re.compile(r"[a-z0-9]+")
_ABSENT = "\x00absent"


@dataclass(frozen=True)
class MetricGoal:
    """A metric and the direction in which it improves (`max` or `min`)."""

    key: str
    goal: str

    def better(self, a: float, b: float) -> bool:
        """True when value *a* is strictly better than *b*."""
        return a > b if self.goal == "max" else a < b


@dataclass(frozen=True)
class BaseBest:
    """The base run with the best last value of one metric."""

    metric: MetricGoal
    value: float
    run: dict[str, Any]


@dataclass
class Section:
    """One experiment: the branch's runs and the base's best run per metric."""

    experiment: str
    metrics: list[MetricGoal]
    metrics_left_out: int
    best: dict[str, BaseBest]
    base_runs: int
    runs: list[dict[str, Any]]
    runs_total: int
    unfinished: dict[str, int] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)

    @property
    def best_runs(self) -> list[dict[str, Any]]:
        """The distinct base runs that are best in at least one metric, in metric order."""
        seen: dict[str, dict[str, Any]] = {}
        for metric in self.metrics:
            best = self.best.get(metric.key)
            if best is not None:
                seen.setdefault(best.run["id"], best.run)
        return list(seen.values())


@dataclass
class BranchComparison:
    """Everything a pull-request report holds (`compare_branch` returns it)."""

    base: str
    head: str
    base_commit: str
    head_commit: str
    sections: list[Section]
    base_runs: int
    branch_runs: int
    commits: list[tuple[str, str]]
    commits_total: int


def default_goal(key: str) -> str:
    """`min` for names that read as costs (loss, error, rmse, latency, ...), else `max`."""
    words = _WORD.findall(key.lower().replace("_", " "))
    low = any(w in LOWER_IS_BETTER or w.endswith(("loss", "error")) for w in words)
    return "min" if low else "max"


def parse_metric(spec: str) -> MetricGoal:
    """`acc`, `acc:max` or `val/loss:min` as a `MetricGoal` (no suffix: `default_goal`)."""
    text = spec.strip()
    key, sep, goal = text.rpartition(":")
    if sep and goal in GOALS and key:
        return MetricGoal(key, goal)
    if not text:
        raise InvalidValueError("metric", "an empty metric name; write e.g. acc or loss:min")
    return MetricGoal(text, default_goal(text))


def resolve(git: GitRepo, rev: str, what: str) -> str:
    """The commit *rev* names, or a one-line error saying what to name instead."""
    from ..git.history import resolve_revision

    commit = resolve_revision(git, rev)
    if commit is None:
        raise GitxpError(
            f"{what} {rev!r} names no commit in {git.root}; name a branch, tag, "
            "remote-tracking branch (origin/main), commit id or main~N, fetched first "
            "(git fetch origin main)"
        )
    return commit


def ran_on(git: GitRepo, row: dict[str, Any]) -> str | None:
    """The commit a run ran on: its code commit, or for uncommitted changes the snapshot's
    parent (the HEAD of the time)."""
    from ..git.history import first_parent

    code = row.get("code_commit")
    if not code or not row.get("dirty"):
        return code or None
    head = row.get("head")
    return head if isinstance(head, str) and head else first_parent(git, code)


def _newest_first(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-(r.get("start_time") or 0), r["id"]))


def _value(row: dict[str, Any], key: str) -> float | None:
    value = (row.get("metrics") or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def best_run(rows: Sequence[dict[str, Any]], metric: MetricGoal) -> BaseBest | None:
    """The run of *rows* with the best finite last value of *metric*; ties go to the newest
    run, then the smallest id, so the choice never depends on listing order."""
    best: BaseBest | None = None
    for row in _newest_first(rows):
        value = _value(row, metric.key)
        if value is not None and (best is None or metric.better(value, best.value)):
            best = BaseBest(metric, value, row)
    return best


def differing_params(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The param keys whose values are not the same in all *rows* (absent counts as a value),
    sorted."""
    import json

    keys = sorted({k for r in rows for k in r.get("params") or {}})
    out = []
    for key in keys:
        seen = {
            json.dumps((r.get("params") or {}).get(key, _ABSENT), sort_keys=True, default=str)
            for r in rows
        }
        if len(seen) > 1:
            out.append(key)
    return out


def _metrics_for(
    runs: list[dict[str, Any]], chosen: Sequence[MetricGoal]
) -> tuple[list[MetricGoal], int]:
    if chosen:
        return list(chosen), 0
    keys = sorted({k for r in runs for k in r.get("metrics") or {}})
    shown = keys[:DEFAULT_METRICS]
    return [MetricGoal(k, default_goal(k)) for k in shown], len(keys) - len(shown)


def _section(
    experiment: str,
    branch: list[dict[str, Any]],
    base: list[dict[str, Any]],
    chosen: Sequence[MetricGoal],
    max_runs: int,
) -> Section:
    finished = _newest_first(r for r in branch if r.get("status") == "FINISHED")
    unfinished: dict[str, int] = {}
    for r in branch:
        if r.get("status") != "FINISHED":
            unfinished[str(r.get("status"))] = unfinished.get(str(r.get("status")), 0) + 1
    metrics, left_out = _metrics_for(finished, chosen)
    best = {m.key: b for m in metrics if (b := best_run(base, m)) is not None}
    section = Section(
        experiment,
        metrics,
        left_out,
        best,
        len(base),
        finished[:max_runs],
        len(finished),
        dict(sorted(unfinished.items())),
    )
    section.params = differing_params(section.best_runs + section.runs)
    return section


def compare_branch(
    repo: RepoArg = ".",
    base: str = "main",
    head: str = "HEAD",
    metrics: Sequence[str | MetricGoal] = (),
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    max_runs: int = MAX_RUNS,
    max_commits: int = MAX_COMMITS,
) -> BranchComparison:
    """Compare the runs of the commits in `base..head` with the best runs reachable from *base*.

    *metrics* are names with an optional `:max`/`:min` (default: every metric
    the branch's runs logged, up to six, each in its `default_goal`
    direction). One section per experiment of the branch's runs; *filter*
    (the filter grammar) and *experiment* narrow both sides. At most
    *max_runs* branch runs per experiment (newest first) and *max_commits*
    commits are kept; the totals are kept too.
    """
    from ..git.history import log_range, reachable_from

    chosen = [m if isinstance(m, MetricGoal) else parse_metric(m) for m in metrics]
    with opened(repo) as r:
        git = r.git
        base_commit = resolve(git, base, "base")
        head_commit = resolve(git, head, "head")
        wanted = [experiment] if isinstance(experiment, str) else list(experiment or []) or None
        rows = r.rows(filter, wanted)
        broken = [row["id"] for row in rows if row.get("corrupt")]
        if broken:
            _log.warning(
                "%d unreadable run(s) left out of the comparison (%s); "
                "`gitxp hook validate` lists why",
                len(broken),
                ", ".join(broken[:5]),
            )
            rows = [row for row in rows if not row.get("corrupt")]
        on = {row["id"]: ran_on(git, row) for row in rows}
        in_range, total = log_range(git, head_commit, base_commit)
        branch_commits = {sha for sha, _ in in_range}
        in_base = reachable_from(git, {c for c in on.values() if c}, [base_commit])
    branch = [row for row in rows if on[row["id"]] in branch_commits]
    based = [row for row in rows if on[row["id"]] in in_base and row.get("status") == "FINISHED"]
    names = sorted({row.get("experiment") or "default" for row in branch})
    sections = [
        _section(
            name,
            [row for row in branch if (row.get("experiment") or "default") == name],
            [row for row in based if (row.get("experiment") or "default") == name],
            chosen,
            max_runs,
        )
        for name in names
    ]
    return BranchComparison(
        base,
        head,
        base_commit,
        head_commit,
        sections,
        len(based),
        len(branch),
        in_range[:max_commits],
        total,
    )
