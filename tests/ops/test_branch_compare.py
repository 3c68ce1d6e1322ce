"""Which runs are a branch's and which its base's, and the base's best per metric."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitxp.errors import GitxpError, HistoryIncompleteError, InvalidValueError
from gitxp.git.history import log_range, reachable_from, resolve_revision
from gitxp.git.repository import GitRepo
from gitxp.ops.branch_compare import (
    MetricGoal,
    best_run,
    compare_branch,
    default_goal,
    differing_params,
    parse_metric,
)
from tests.branch_helpers import make_pull_request
from tests.gitutil import git


@pytest.fixture(scope="module")
def pr(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One pull-request-shaped repository shared by the tests of this module (read only)."""
    path = tmp_path_factory.mktemp("pr") / "project"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('training')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path, make_pull_request(path)


def test_branch_runs_are_those_of_base_head_and_the_base_best_is_per_metric(
    pr: tuple[Path, dict[str, str]],
) -> None:
    path, ids = pr
    cmp = compare_branch(path, "main", metrics=["acc", "loss"])
    assert (cmp.base_commit, cmp.head_commit) == (ids["m1"], ids["f2"])
    assert cmp.branch_runs == 2 and cmp.base_runs == 3  # FAILED on main and other-x left out
    [section] = cmp.sections
    assert section.experiment == "mnist"
    # newest first; the run with uncommitted changes counts by its HEAD of the time (F1)
    assert [r["name"] for r in section.runs] == ["feat-dirty", "feat-1"]
    assert [m.goal for m in section.metrics] == ["max", "min"]
    # base-c ran with uncommitted changes on M1, reachable from main: it counts, and is best
    assert section.best["acc"].run["id"] == ids["base-c"] and section.best["acc"].value == 0.95
    assert section.best["loss"].run["id"] == ids["base-b"]
    assert [r["name"] for r in section.best_runs] == ["base-c", "base-b"]
    assert section.params == ["lr"]  # epochs is 5 everywhere
    assert [sha for sha, _ in cmp.commits] == [ids["f2"], ids["f1"]] and cmp.commits_total == 2


def test_the_other_way_round_and_with_head(pr: tuple[Path, dict[str, str]]) -> None:
    path, ids = pr
    # main's runs against feature: base-c (on M1) is main's; c0's and feature's runs are base
    cmp = compare_branch(path, "feature", head="main")
    assert cmp.branch_runs == 1 and cmp.base_runs == 4
    assert [r["name"] for r in cmp.sections[0].runs] == ["base-c"]
    # --head other: only other-x; the FAILED run of c0 is not the branch's (c0 is in main)
    cmp = compare_branch(path, ids["c0"], head="other")
    assert [r["name"] for r in cmp.sections[0].runs] == ["other-x"]
    assert cmp.base_runs == 2 and [c for c, _ in cmp.commits] == [ids["o1"]]
    # base == head: nothing on the branch, no sections, no commits
    same = compare_branch(path, "feature", head="feature")
    assert (same.branch_runs, same.sections, same.commits_total) == (0, [], 0)


def test_unfinished_branch_runs_are_counted_not_compared(tmp_path: Path, repo: Path) -> None:
    from tests.branch_helpers import commit, record

    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "x = 1", "change")
    record(repo, "ok", 0.5, 0.5, 0.1)
    record(repo, "bad", 0.9, 0.1, 0.2, status="FAILED")
    cmp = compare_branch(repo, "main")
    [section] = cmp.sections
    assert [r["name"] for r in section.runs] == ["ok"] and section.unfinished == {"FAILED": 1}
    assert cmp.base_runs == 0 and section.best == {}


def test_default_directions_and_metric_specs() -> None:
    for key in ("loss", "val/loss", "train_loss", "val_nll", "error_rate", "wer", "latency_ms"):
        assert default_goal(key) == "min", key
    for key in ("acc", "val/accuracy", "f1", "auc", "bleu", "lossless_ratio_x"):
        assert default_goal(key) == "max", key
    assert parse_metric("acc") == MetricGoal("acc", "max")
    assert parse_metric("loss:max") == MetricGoal("loss", "max")
    assert parse_metric("val/acc:min") == MetricGoal("val/acc", "min")
    assert parse_metric("score:step:1") == MetricGoal("score:step:1", "max")  # ':' inside a key
    with pytest.raises(InvalidValueError):
        parse_metric("  ")


def test_best_run_ignores_nan_and_breaks_ties_by_newest_then_id() -> None:
    rows = [
        {"id": "b", "start_time": 1, "metrics": {"acc": 0.9}},
        {"id": "a", "start_time": 1, "metrics": {"acc": 0.9}},
        {"id": "c", "start_time": 2, "metrics": {"acc": float("nan")}},
        {"id": "d", "start_time": 0, "metrics": {"acc": 0.9}},
    ]
    best = best_run(rows, MetricGoal("acc", "max"))
    assert best is not None and best.run["id"] == "a"
    assert best_run(list(reversed(rows)), MetricGoal("acc", "max")).run["id"] == "a"  # type: ignore[union-attr]
    assert best_run(rows, MetricGoal("loss", "min")) is None
    assert differing_params(
        [{"params": {"a": 1, "b": [1]}}, {"params": {"a": 1, "b": [2], "c": None}}]
    ) == ["b", "c"]


def test_an_unknown_ref_is_one_line(pr: tuple[Path, dict[str, str]]) -> None:
    path, _ = pr
    with pytest.raises(GitxpError) as info:
        compare_branch(path, "no-such-branch")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("base 'no-such-branch' names no commit in ")
    with pytest.raises(GitxpError, match=r"^head 'nope' names no commit"):
        compare_branch(path, "main", head="nope")


def test_ancestry_walks_agree_with_git(pr: tuple[Path, dict[str, str]]) -> None:
    path, ids = pr
    commits = [ids[k] for k in ("c0", "m1", "o1", "f1", "f2")]
    with GitRepo.discover(path) as repo:
        for tip in ("main", "feature", "other"):
            tip_id = git(path, "rev-parse", tip).strip()
            expected = {
                c
                for c in commits
                if subprocess.run(
                    ["git", "merge-base", "--is-ancestor", c, tip], cwd=path
                ).returncode
                == 0
            }
            assert reachable_from(repo, commits, [tip_id]) == expected, tip
        assert resolve_revision(repo, "feature~1") == ids["f1"]
        assert resolve_revision(repo, "feature^^") == resolve_revision(repo, "HEAD~2") == ids["c0"]
        assert resolve_revision(repo, ids["o1"][:7]) == ids["o1"]
        assert resolve_revision(repo, f"{ids['m1'][:10]}~1") == ids["c0"]
        for bad in ("feature^2", "feature~9", "zzzz", "main~x", "abc"):
            assert resolve_revision(repo, bad) is None, bad
        listed, total = log_range(repo, ids["f2"], ids["m1"], 1)
        assert total == 2 and listed == [(ids["f2"], "Clean up | <b>@ada</b> *bold*")]
        oneline = git(path, "log", "--format=%H", "main..feature").split()
        assert [c for c, _ in log_range(repo, ids["f2"], ids["m1"], 10)[0]] == oneline


def test_a_shallow_clone_says_to_fetch_the_history(
    pr: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, _ = pr
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", "--no-single-branch", f"file://{path}", "shallow")
    with pytest.raises(HistoryIncompleteError, match="git fetch --unshallow"):
        compare_branch(clone, "origin/main", head="origin/feature")
    with GitRepo.discover(clone) as repo:
        other = resolve_revision(repo, "origin/other")
        main = resolve_revision(repo, "origin/main")
        assert other and main
        with pytest.raises(HistoryIncompleteError):
            reachable_from(repo, [other], [main])
        assert reachable_from(repo, [main], [main]) == {main}  # found before the edge


def test_ancestry_survives_a_clock_an_hour_behind(repo: Path) -> None:
    def commit_at(date: str, message: str) -> str:
        env = {**os.environ, "GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date}
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=repo, env=env)
        return git(repo, "rev-parse", "HEAD").strip()

    old = commit_at("2026-01-01T10:00:00Z", "old")
    parent = commit_at("2026-01-02T12:00:00Z", "parent")
    child = commit_at("2026-01-02T11:00:00Z", "child, made on a clock an hour behind")
    tip = commit_at("2026-01-03T12:00:00Z", "tip")
    with GitRepo.discover(repo) as r:
        # the walk passes the child, an hour "older" than the parent it looks for
        assert reachable_from(r, [parent], [tip]) == {parent}
        assert reachable_from(r, [parent, old], [tip]) == {parent, old}
        assert reachable_from(r, [tip], [child]) == set()
        assert child in reachable_from(r, [child, tip], [tip])
