"""gitxp-metric-gate: refuse a push whose code has no run meeting the project's metric bar.

`[tool.gitxp.gate]` in pyproject.toml sets the bar::

    [tool.gitxp.gate]
    require = ["metrics.acc >= 0.6", "metrics.loss < 0.4"]   # filter grammar
    experiment = "iris"                                       # optional
    missing = "fail"                                          # or "warn"
    baseline = "churn#prod"          # optional: conditions may read baseline.<field>

The newest FINISHED run recorded on the commit being pushed (HEAD when run
by hand) must meet every condition. A run is "on" a commit when it ran that
commit, or a snapshot of uncommitted changes on top of it. With a baseline
(any run reference, usually a model stage), ``metrics.acc > baseline.metrics.acc``
compares with that run's value (`gitxp.hooks.gate_baseline`).
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..store.filter import compile_filter, field_getters
from ._common import guarded, hook_parser, parse_in_repo, say
from .config import GateConfig, load_gate_config
from .gate_baseline import (
    Baseline,
    bind,
    check_condition,
    load_baseline,
    no_baseline_error,
    uses_baseline,
)

if TYPE_CHECKING:
    from ..git.repository import GitRepo

NAME = "metric-gate"


@dataclass(frozen=True)
class Check:
    """One condition of the gate against one run: the values it looked at and the verdict."""

    condition: str
    values: dict[str, Any]
    met: bool


@dataclass
class GateResult:
    """The gate's verdict on one commit."""

    commit: str
    run: dict[str, Any] | None
    checks: list[Check] = field(default_factory=list)
    others: list[dict[str, Any]] = field(default_factory=list)  # runs on it, not FINISHED
    baseline: Baseline | None = None

    @property
    def unmet(self) -> list[Check]:
        return [c for c in self.checks if not c.met]

    @property
    def passed(self) -> bool:
        return self.run is not None and not self.unmet


def fields_of(condition: str) -> list[str]:
    """The fields a condition reads, as written (`metrics.acc`, `status`)."""
    return list(field_getters(condition))


def evaluate(
    row: dict[str, Any], conditions: Iterable[str], baseline: Baseline | None = None
) -> list[Check]:
    """Check every condition against one run row (a pure function of its arguments); the
    ``baseline.<field>`` values of a condition come from *baseline*."""
    checks = []
    for condition in conditions:
        shape, _ = bind(condition, None)
        bound, used = bind(condition, baseline.row) if baseline else (shape, {})
        if used and baseline is None:
            raise no_baseline_error(condition)
        met = bool(bound) and bool(compile_filter(bound)(row))
        values = {name: get(row) for name, get in field_getters(shape).items()}
        checks.append(Check(condition, {**values, **used}, met))
    return checks


def runs_on_commit(
    git: GitRepo | None, rows: Iterable[dict[str, Any]], commit: str
) -> list[dict[str, Any]]:
    """The rows of runs recorded on *commit*: on it directly, or on a snapshot whose parent it is.

    Rows carry the HEAD at record time (`head`); for rows cached before
    that field existed, the snapshot's first parent is read from *git*.
    """
    from ..git.history import first_parent

    out = []
    for row in rows:
        code = row.get("code_commit")
        if not code:
            continue
        if code == commit:
            out.append(row)
        elif row.get("dirty"):
            head = row.get("head")
            if head is None and git is not None:
                head = first_parent(git, code)
            if head == commit:
                out.append(row)
    return out


def check_commit(
    git: GitRepo,
    rows: list[dict[str, Any]],
    commit: str,
    gate: GateConfig,
    baseline: Baseline | None = None,
) -> GateResult:
    """The gate's verdict on *commit*, given every run row (newest first) and the run the
    conditions' ``baseline.`` values come from."""
    on_commit = runs_on_commit(git, rows, commit)
    finished = [r for r in on_commit if r.get("status") == "FINISHED"]
    others = [r for r in on_commit if r.get("status") != "FINISHED"]
    if not finished:
        return GateResult(commit, None, others=others, baseline=baseline)
    run = finished[0]
    return GateResult(commit, run, evaluate(run, gate.require, baseline), others, baseline)


def _show(value: Any) -> str:
    from ..present.output import fmt_value

    return "missing" if value is None else fmt_value(value)


def render_unmet(result: GateResult, source: str = "[tool.gitxp.gate] in pyproject.toml") -> str:
    """The failure report: the run checked, then a table of the unmet conditions.

    *source* says where the conditions were set (pyproject.toml, --require or both).
    """
    from ..present.output import fmt_short_time, render_table

    run = result.run or {}
    n = len(result.unmet)
    rows = []
    for check in result.unmet:
        if len(check.values) == 1:
            value = _show(next(iter(check.values.values())))
        else:
            value = ", ".join(f"{k}={_show(v)}" for k, v in check.values.items()) or "-"
        rows.append([check.condition, value])
    return "\n".join(
        [
            f"commit {result.commit[:12]} fails {n} of {len(result.checks)} gate condition"
            f"{'s' if len(result.checks) != 1 else ''} ({source})",
            f"checked against run {run.get('id')} ({run.get('name')}, experiment "
            f"{run.get('experiment')}, FINISHED, started {fmt_short_time(run.get('start_time'))}),"
            " the newest finished run on that commit"
            + (f", compared with {result.baseline.label}:" if result.baseline else ":"),
            *(
                "  " + line
                for line in render_table(["unmet condition", "value"], rows).splitlines()
            ),
            "Record a run that meets them on this commit (or change the gate); "
            "to push anyway once: git push --no-verify",
        ]
    )


def render_missing(result: GateResult, gate: GateConfig) -> str:
    """The message when no finished run exists on the commit."""
    scope = f" of experiment {', '.join(gate.experiment)}" if gate.experiment else ""
    counts: dict[str, int] = {}
    for r in result.others:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    others = (
        " (runs on it that did not finish: "
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + ")"
        if counts
        else ""
    )
    exp = f" -e {shlex.quote(gate.experiment[0])}" if gate.experiment else ""
    return (
        f"no FINISHED run{scope} recorded on commit {result.commit[:12]}{others}; "
        f"record one on it first (e.g. `gitxp run{exp} -- python train.py`), "
        'or set missing = "warn" under [tool.gitxp.gate]'
    )


@guarded(NAME)
def main(argv: Sequence[str] | None = None) -> int:
    """Fail (1) when a pushed commit's newest finished run misses the gate; 0 otherwise."""
    parser = hook_parser(
        NAME,
        "Check the newest FINISHED run on the commit being pushed (HEAD when run "
        "by hand) against [tool.gitxp.gate] of pyproject.toml.",
        "Examples:\n  gitxp hook metric-gate                    # HEAD, as in CI\n"
        "  gitxp hook metric-gate --commit v1.2 --require 'metrics.acc >= 0.9'\n"
        "  gitxp hook metric-gate --baseline churn#prod "
        "--require 'metrics.acc > baseline.metrics.acc'",
    )
    parser.add_argument("remote", nargs="*", help="pre-push arguments: <remote> <url>.")
    parser.add_argument("--commit", metavar="REV", help="Check this commit instead.")
    parser.add_argument(
        "--require", action="append", default=[], metavar="EXPR", help="An extra condition."
    )
    parser.add_argument(
        "--experiment", action="append", metavar="NAME", help="Only this experiment."
    )
    parser.add_argument("--missing", choices=("fail", "warn"), help="When no run is found.")
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="The run baseline.<field> reads: a model stage or version (churn#prod), or a run.",
    )
    args, git = parse_in_repo(parser, argv)
    if git is None:
        return 0
    with git:
        gate, configured = _gate(git, args)
        if not (configured or args.require or args.experiment or args.missing):
            return 0  # no gate set up: nothing to check
        configured_require = len(gate.require) > len(args.require)
        source = " and ".join(
            ["[tool.gitxp.gate] in pyproject.toml"] * configured_require
            + ["--require"] * bool(args.require)
        )
        commits = _commits_to_check(git, args)
        if not commits:
            return 0
        from ..store.repo import Repo

        repo = Repo(git)
        baseline = _baseline(repo, gate)
        rows = repo.rows(experiment=gate.experiment)
        failed = False
        for commit in commits:
            result = check_commit(git, rows, commit, gate, baseline)
            if result.run is None:
                say(
                    NAME,
                    ("warning: " if gate.missing == "warn" else "") + render_missing(result, gate),
                )
                failed |= gate.missing == "fail"
            elif result.unmet:
                say(NAME, render_unmet(result, source))
                failed = True
    return 1 if failed else 0


def _gate(git: GitRepo, args: argparse.Namespace) -> tuple[GateConfig, bool]:
    """`[tool.gitxp.gate]` with the command line's options applied, and whether it exists."""
    gate, configured = load_gate_config(git.root, args.config)
    for condition in args.require:
        check_condition(condition)
    gate.require += args.require
    gate.baseline = args.baseline or gate.baseline
    if args.experiment:
        gate.experiment = args.experiment
    if args.missing:
        gate.missing = args.missing
    return gate, configured


def _baseline(repo: Any, gate: GateConfig) -> Baseline | None:
    """The gate's baseline run, read once (None: no condition reads one)."""
    if gate.baseline is not None:
        return load_baseline(repo, gate.baseline)
    for condition in gate.require:
        if uses_baseline([condition]):
            raise no_baseline_error(condition)
    return None


def _commits_to_check(git: GitRepo, args: argparse.Namespace) -> list[str]:
    from ..errors import GitxpError
    from ..git.history import resolve_commit
    from .pushinfo import push_context, pushed_tips

    if args.commit:
        commit = resolve_commit(git, args.commit)
        if commit is None:
            raise GitxpError(f"--commit {args.commit!r} names no commit in {git.root}")
        return [commit]
    pushing = (
        bool(args.remote)
        or "PRE_COMMIT_TO_REF" in os.environ
        or ("PRE_COMMIT_LOCAL_BRANCH" in os.environ)
    )
    if pushing:
        return pushed_tips(git, push_context(git, args.remote))
    head = git.head()
    return [head] if head else []
