"""`gitxp report --format markdown`: a branch's runs against its base's best, for a PR comment.

The text is GitHub- and GitLab-flavoured Markdown: one table per
experiment (the base's best runs, then the branch's runs with each metric's
signed delta to the base best and a sparkline of its series), then the
commits in `base..head`. It is deterministic (the same repository gives the
same bytes: no clock, stable ordering) and stays under `MAX_BYTES`, fewer
rows being shown, with a note, when the whole would not fit.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError
from ..ops.branch_compare import (
    MAX_COMMITS,
    MAX_RUNS,
    BranchComparison,
    MetricGoal,
    Section,
    compare_branch,
)
from .output import fmt_value
from .plot import sparkline

if TYPE_CHECKING:
    from .views import UIData

MARKER = "<!-- gitxp-report -->"
MAX_BYTES = 64 * 1024
CELL = 40  # characters of a param value or name shown in a cell
MAX_PARAMS = 8  # differing params shown as columns
SPARK_WIDTH = 12
SPARK_POINTS = 240
ARROW = {"max": "↑", "min": "↓"}
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")
# a zero-width space after @: GitHub and GitLab find mentions after Markdown is rendered,
# so a backslash would not stop one
NO_MENTION = "@&#8203;"
_SPACE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def escape(text: str, limit: int | None = CELL) -> str:
    """*text* as literal Markdown on one line: no emphasis, links, HTML, mentions or table
    breaks; cut to *limit* characters with an ellipsis."""
    flat = _SPACE.sub(" ", text).strip()
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return _SPECIAL.sub(r"\\\1", flat).replace("@", NO_MENTION)


def short(sha: str) -> str:
    return f"`{sha[:8]}`"


def delta(value: float, best: float) -> float:
    """`value - best`, 0 when the two differ only by float rounding (0.1 + 0.2 vs 0.3)."""
    diff = value - best
    return 0.0 if abs(diff) <= 1e-12 * max(abs(value), abs(best)) else diff


def fmt_delta(value: float, best: float) -> str:
    """The signed difference `value - best` to 4 significant digits (`+0.019`, `-3`, `±0`)."""
    diff = delta(value, best)
    return "±0" if diff == 0 else f"{diff:+.4g}"


class _Sparks:
    """Sparklines of run metrics, read once each."""

    def __init__(self, data: UIData | None) -> None:
        self._data = data
        self._cache: dict[tuple[str, str], str] = {}

    def get(self, run_id: str, key: str) -> str:
        if self._data is None:
            return ""
        hit = self._cache.get((run_id, key))
        if hit is None:
            try:
                values = self._data.series(run_id, key, points=SPARK_POINTS)["value"]
            except (GitxpError, OSError, ValueError):  # unreadable series: no sparkline
                values = []
            hit = sparkline(values, SPARK_WIDTH) if len(values) > 1 else ""
            self._cache[(run_id, key)] = hit
        return hit


def _run_cell(row: dict[str, Any]) -> str:
    name = row.get("name")
    ident = f"`{row['id'][:10]}`"
    return f"{escape(str(name))} {ident}" if name else ident


def _commit_cell(row: dict[str, Any], on: str | None) -> str:
    if not on:
        return "-"
    return short(on) + ("†" if row.get("dirty") else "")


def _metric_cell(
    row: dict[str, Any], metric: MetricGoal, section: Section, sparks: _Sparks, base: bool
) -> str:
    value = (row.get("metrics") or {}).get(metric.key)
    if value is None:
        return "-"
    best = section.best.get(metric.key)
    text = escape(fmt_value(value), CELL)
    finite = isinstance(value, (int, float)) and math.isfinite(value)
    if base:
        if best is not None and best.run["id"] == row["id"]:
            text = f"**{text}**"
    elif best is not None and finite:
        if metric.better(delta(float(value), best.value), 0.0):
            text = f"**{text}**"
        text += f" ({fmt_delta(float(value), best.value)})"
    spark = sparks.get(row["id"], metric.key)
    return f"{text} {spark}" if spark else text


def _table(section: Section, on: dict[str, str | None], sparks: _Sparks, limit: int) -> list[str]:
    params = section.params[:MAX_PARAMS]
    head = ["", "run", "commit", *(escape(p) for p in params)]
    head += [f"{escape(m.key)} {ARROW[m.goal]}" for m in section.metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join([" --- "] * len(head)) + "|"]
    rows = [(r, True) for r in section.best_runs] + [(r, False) for r in section.runs[:limit]]
    for row, base in rows:
        cells = [
            "base best" if base else "branch",
            _run_cell(row),
            _commit_cell(row, on[row["id"]]),
        ]
        cells += [escape(fmt_value((row.get("params") or {}).get(p), None)) for p in params]
        cells += [_metric_cell(row, m, section, sparks, base) for m in section.metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _section(section: Section, on: dict[str, str | None], sparks: _Sparks, limit: int) -> list[str]:
    out = [f"### Experiment {escape(section.experiment)}", ""]
    if not section.runs:
        counts = ", ".join(f"{n} {status}" for status, n in section.unfinished.items())
        return [*out, f"No finished run on this branch yet ({counts}).", ""]
    if section.base_runs == 0:
        out += ["No finished run of this experiment is reachable from the base: no deltas.", ""]
    out += _table(section, on, sparks, limit)
    notes = []
    hidden = section.runs_total - min(limit, len(section.runs))
    if hidden > 0:
        notes.append(f"{hidden} older branch run{'s' * (hidden != 1)} not shown.")
    if section.unfinished:
        counts = ", ".join(f"{n} {status}" for status, n in section.unfinished.items())
        notes.append(f"Not finished, left out: {counts}.")
    if len(section.params) > MAX_PARAMS:
        notes.append(f"{len(section.params) - MAX_PARAMS} more differing params not shown.")
    if section.metrics_left_out:
        notes.append(f"{section.metrics_left_out} more metrics not shown (choose with -m).")
    if any(r.get("dirty") for r in section.best_runs + section.runs[:limit]):
        notes.append("† ran with uncommitted changes on top of this commit.")
    return out + (["", " ".join(notes)] if notes else []) + [""]


def _commits(cmp: BranchComparison, limit: int) -> list[str]:
    if not cmp.commits_total:
        return []
    shown = cmp.commits[:limit]
    out = [
        "<details><summary>"
        f"{cmp.commits_total} commit{'s' * (cmp.commits_total != 1)} in "
        f"{escape(cmp.base)}..{escape(cmp.head)}</summary>",
        "",
    ]
    out += [f"- {short(sha)} {escape(subject, 100)}" for sha, subject in shown]
    if cmp.commits_total > len(shown):
        out.append(f"- … and {cmp.commits_total - len(shown)} more")
    return [*out, "", "</details>", ""]


def render(
    cmp: BranchComparison,
    on: dict[str, str | None],
    sparks: _Sparks,
    limit: int = MAX_RUNS,
    commits: int = MAX_COMMITS,
    head_name: str | None = None,
) -> str:
    """The Markdown text of *cmp*, at most *limit* branch runs per experiment and *commits*
    commits; *on* maps run ids to the commit each ran on; *head_name* names the head in the
    title (the branch HEAD is on)."""
    title = (
        f"## gitxp: runs on {escape(head_name or cmp.head)} ({short(cmp.head_commit)}) vs "
        f"{escape(cmp.base)} ({short(cmp.base_commit)})"
    )
    out = [MARKER, title, ""]
    if not cmp.branch_runs:
        out += [
            f"No runs on this branch yet: none ran a commit in {escape(cmp.base)}.."
            f"{escape(cmp.head)}. Record one (`gitxp run -- python train.py`) and push it "
            "(`gitxp push`).",
            "",
        ]
    else:
        out += [
            f"{cmp.branch_runs} run{'s' * (cmp.branch_runs != 1)} on this branch, against the "
            f"best of {cmp.base_runs} finished run{'s' * (cmp.base_runs != 1)} reachable from "
            f"{escape(cmp.base)}. Values are last values; ↑ higher is better, ↓ lower is "
            "better; (±delta) is to the base best; **bold**: the base best, or better than it.",
            "",
        ]
        for section in cmp.sections:
            out += _section(section, on, sparks, limit)
    out += _commits(cmp, commits)
    return "\n".join(out).rstrip("\n") + "\n"


def fit(
    cmp: BranchComparison,
    on: dict[str, str | None],
    sparks: _Sparks,
    limit: int,
    head_name: str | None = None,
) -> str:
    """`render` with as many rows as fit in `MAX_BYTES` (fewer commits first, then fewer
    runs per experiment); the text says what was left out."""
    commits = min(MAX_COMMITS, len(cmp.commits))
    text = render(cmp, on, sparks, limit, commits, head_name)
    while (size := len(text.encode("utf-8"))) > MAX_BYTES:
        if commits > 5:
            commits = 5
        elif limit > 1:  # rows in proportion to the excess, and at least a quarter fewer
            limit = max(1, min(limit * 3 // 4, int(limit * MAX_BYTES / size)))
        else:
            cut = text.encode("utf-8")[: MAX_BYTES - 200].decode("utf-8", "ignore")
            cut = cut.rsplit("\n", 1)[0]
            return cut + "\n\n… (cut: the report would exceed 64 KB; narrow it with -e or -m)\n"
        text = render(cmp, on, sparks, limit, commits, head_name)
    return text


def markdown_report(
    path: str | os.PathLike[str] = ".",
    base: str = "main",
    head: str = "HEAD",
    metrics: Sequence[str] = (),
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    max_runs: int = MAX_RUNS,
    sparklines: bool = True,
) -> str:
    """The pull-request report of the runs in `base..head` against *base*'s best, as Markdown.

    See `gitxp.ops.branch_compare.compare_branch` for which runs count and
    how the best is chosen. The text is at most `MAX_BYTES` long.
    """
    from ..ops.branch_compare import ran_on
    from ..store.repo import open as open_repo
    from .views import UIData

    with open_repo(path) as repo:
        cmp = compare_branch(repo, base, head, metrics, experiment, filter, max_runs)
        rows = [r for s in cmp.sections for r in s.best_runs + s.runs]
        on = {r["id"]: ran_on(repo.git, r) for r in rows}
        sparks = _Sparks(UIData(repo) if sparklines else None)
        name = repo.git.head_branch() if head == "HEAD" else None
        return fit(cmp, on, sparks, max_runs, name)
