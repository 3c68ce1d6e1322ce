"""`gitxp report --format markdown --base REF`: the pull-request report, end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gitxp.cli.main import cli
from gitxp.ops.branch_compare import BranchComparison, MetricGoal, Section, best_run
from gitxp.present.markdown_report import MARKER, MAX_BYTES, _Sparks, escape, fit, fmt_delta
from gitxp.present.plot import SPARK
from tests.branch_helpers import commit, make_pull_request, record
from tests.gitutil import git
from tests.ui_helpers import HOSTILE, _give_name


@pytest.fixture
def pr(repo: Path) -> dict[str, str]:
    return make_pull_request(repo)


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every table line, split on the pipes Markdown sees (not escaped ones)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| "):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_branch_runs_against_main_best_with_signed_deltas(pr: dict[str, str], runner) -> None:
    result = runner.invoke(cli, ["report", "--format", "markdown", "--base", "main"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith(MARKER + "\n## gitxp: runs on feature (`")
    assert "2 runs on this branch, against the best of 3 finished runs reachable from main" in text
    header, _, *rows = _table_rows(text)
    assert header == ["", "run", "commit", "lr", "acc ↑", "loss ↓"]
    by_name = {r[1].split(" ")[0]: r for r in rows}
    assert [r[0] for r in rows] == ["base best", "base best", "branch", "branch"]
    # base best per metric in bold: acc from base-c (0.95), loss from base-b (min, 0.25)
    assert by_name["base-c"][4].startswith("**0.95**") and by_name["base-b"][5].startswith(
        "**0.25**"
    )
    # feat-dirty beats 0.95 by +0.01 (bold); feat-1 is 0.02 under it; both lose on loss
    assert by_name["feat-dirty"][4].startswith("**0.96** (+0.01) ")
    assert by_name["feat-1"][4].startswith("0.93 (-0.02) ")
    assert by_name["feat-1"][5].startswith("0.28 (+0.03) ")
    assert by_name["feat-dirty"][2] == f"`{pr['f1'][:8]}`†" and by_name["base-c"][2].endswith("†")
    assert by_name["feat-1"][3] == "0.05"
    # a sparkline of the five-step series: rising acc, falling loss
    spark = by_name["feat-1"][4].rsplit(" ", 1)[1]
    assert set(spark) <= set(SPARK) and len(spark) == 5 and spark[0] < spark[-1]
    assert "crashed-one" not in text and "other-x" not in text
    assert "† ran with uncommitted changes on top of this commit." in text
    # the commits in between, newest first, escaped
    assert "2 commits in main..HEAD</summary>" in text
    commits = re.findall(r"^- `([0-9a-f]{8})` (.*)$", text, re.M)
    assert commits == [
        (pr["f2"][:8], r"Clean up \| \<b\>@&#8203;ada\</b\> \*bold\*"),
        (pr["f1"][:8], "Add dropout"),
    ]


def test_the_same_repository_gives_the_same_bytes_even_in_a_fresh_clone(
    pr: dict[str, str], repo: Path, tmp_path: Path, runner
) -> None:
    args = ["report", "--base", "main", "-m", "acc", "-m", "loss:min"]
    first = runner.invoke(cli, args).output
    assert runner.invoke(cli, ["log"]).exit_code == 0  # a warm listing cache changes nothing
    assert runner.invoke(cli, args).output == first
    # a clone that fetched the runs (as CI does) prints exactly the same report
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "push", "-q", str(bare), "main", "feature")
    assert runner.invoke(cli, ["push", str(bare)]).exit_code == 0
    git(tmp_path, "clone", "-q", "-b", "feature", str(bare), "clone")
    clone = tmp_path / "clone"
    assert runner.invoke(cli, ["fetch", "-C", str(clone), "origin"]).exit_code == 0
    again = runner.invoke(cli, [*args[:2], "origin/main", *args[3:], "-C", str(clone)])
    assert again.exit_code == 0, again.output
    assert again.output == re.sub(r"\bmain(?=\.\.| \(|\. )", "origin/main", first)


def test_no_branch_runs_no_base_runs_and_errors(repo: Path, runner) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    result = runner.invoke(cli, ["report", "--base", "main"])
    assert result.exit_code == 0, result.output
    assert "No runs on this branch yet: none ran a commit in main..HEAD." in result.output
    commit(repo, "x = 1", "change")
    record(repo, "first", 0.5, 0.5, 0.1)
    # a run ref whose commit is no run at all: left out with a warning, no traceback
    git(repo, "update-ref", "refs/gitxp/runs/0" + "z" * 25, "HEAD")
    result = runner.invoke(cli, ["report", "--base", "main", "--no-sparklines"])
    assert result.exit_code == 0, result.output
    assert "No finished run of this experiment is reachable from the base: no deltas." in (
        result.output
    )
    assert "| branch | first `" in result.output and "(+" not in result.output
    assert "1 unreadable run(s) left out of the comparison (0zzz" in result.stderr
    assert "unreadable" not in result.stdout
    # mistakes: one line each, exit 1 (a bad ref) or 2 (usage)
    result = runner.invoke(cli, ["report", "--base", "mian"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("error: base 'mian' names no commit in ")
    for args in (["--format", "markdown"], ["--format", "html", "--base", "main"]):
        result = runner.invoke(cli, ["report", *args])
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    result = runner.invoke(cli, ["report", "mnist", "-e", "mnist", "--base", "main"])
    assert result.exit_code == 2


def test_writes_a_file_and_filters_experiments(repo: Path, runner) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "x = 1", "change")
    record(repo, "m", 0.5, 0.5, 0.1)
    record(repo, "c", 0.7, 0.2, 0.1, experiment="cifar")
    result = runner.invoke(cli, ["report", "--base", "main", "-o", "pr.md"])
    assert result.exit_code == 0 and result.output.startswith("wrote pr.md (")
    text = (repo / "pr.md").read_text()
    assert text.index("### Experiment cifar") < text.index("### Experiment mnist")
    only = runner.invoke(cli, ["report", "--base", "main", "-e", "cifar"]).output
    assert "### Experiment cifar" in only and "mnist" not in only


def test_names_and_values_cannot_break_the_table_or_mention_anyone(repo: Path, runner) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "x = 1", "change")
    run_id = record(repo, "plain", 0.5, 0.5, 0.1, note="a | b @team <b>x</b>\n# h")
    record(repo, "other", 0.6, 0.4, 0.2, note="same")
    _give_name(repo, run_id, HOSTILE + " | @ada")
    result = runner.invoke(cli, ["report", "--base", "main"])
    assert result.exit_code == 0, result.output
    header, _, *rows = _table_rows(result.output)
    assert all(len(r) == len(header) for r in rows)
    assert HOSTILE not in result.output and "@ada" not in result.output
    assert r"a \| b @&#8203;team \<b\>x\</b\> \# h" in result.output
    assert escape("x" * 50) == "x" * 39 + "…"


def test_the_report_stays_under_64_kb_saying_what_it_left_out() -> None:
    metrics = [MetricGoal(f"metric_{i}", "max") for i in range(6)]
    runs = [
        {
            "id": f"{i:026d}",
            "name": f"run-{i}",
            "start_time": 10_000 - i,
            "params": {f"p{k}": f"{i}-" + "v" * 60 for k in range(10)},
            "metrics": {m.key: i / 7 for m in metrics},
        }
        for i in range(3000)
    ]
    base = [{**runs[0], "id": "b" * 26, "name": "base", "metrics": {m.key: 1.0 for m in metrics}}]
    best = {m.key: b for m in metrics if (b := best_run(base, m))}
    section = Section("e", metrics, 0, best, 1, runs[:600], 3000, params=sorted(runs[0]["params"]))
    cmp = BranchComparison(
        "main", "HEAD", "a" * 40, "c" * 40, [section], 1, 3000,
        [(f"{i:040x}", "subject " * 10) for i in range(20)], 500,
    )  # fmt: skip
    on = {r["id"]: "d" * 40 for r in [*base, *runs]}
    text = fit(cmp, on, _Sparks(None), 600)
    assert 40_000 < len(text.encode("utf-8")) <= MAX_BYTES
    shown = len(_table_rows(text)) - 3  # header, rule, the base row
    assert f"{3000 - shown} older branch runs not shown." in text
    assert "- … and 495 more" in text and "2 more differing params not shown." in text
    assert fmt_delta(0.3, 0.1 + 0.2) == "±0" and fmt_delta(1.5, 1) == "+0.5"
