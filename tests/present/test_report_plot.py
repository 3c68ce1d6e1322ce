"""`gitxp report` (one self-contained HTML file), `gitxp plot` (PNG or sparkline), tree diffs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gitxp.cli.main import cli
from gitxp.git.repository import GitRepo
from gitxp.git.treediff import changed_files, unified_diff
from gitxp.present.plot import sparkline
from gitxp.present.report import script_code, script_json
from tests.gitutil import git
from tests.ui_helpers import HOSTILE, make_runs


@pytest.fixture
def runs(repo: Path) -> dict[str, str]:
    return make_runs(repo, long_points=50_000)


# -- report ----------------------------------------------------------------------
def test_script_json_cannot_close_its_script_element() -> None:
    payload = {"name": "</script><script>alert(1)</script>", "x": "<!-- \u2028", "n": float("nan")}
    text = script_json(payload)
    assert "</" not in text and "<!--" not in text and "\u2028" not in text
    assert json.loads(text) == {**payload, "n": "NaN"}
    assert script_code("var s = '</SCRIPT>';") == "var s = '<\\/SCRIPT>';"


def test_report_is_one_self_contained_file(repo: Path, runs: dict[str, str], runner) -> None:
    result = runner.invoke(cli, ["report", "mnist", "--out", "mnist.html"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote mnist.html")
    html = (repo / "mnist.html").read_text()
    # nothing is loaded from anywhere: no src/href to other files, CSP forbids the network
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=""", html)
    assert "default-src 'none'" in html.replace("&#x27;", "'")
    assert html.count("<script>") == 3  # plotly.js, common.js, report.js
    block = re.search(r'<script type="application/json" id="gitxp-data">(.*?)</script>', html, re.S)
    assert block is not None
    data = json.loads(block.group(1))
    assert {r["id"] for r in data["runs"]} == {runs["plain"], runs["hostile"]}
    assert HOSTILE not in html  # only ever present JSON-escaped
    assert any(r["name"] == HOSTILE for r in data["runs"])
    assert data["series"][runs["plain"]]["loss"]["total"] == 100


def test_report_downsamples_long_series_and_explains_an_empty_selection(
    repo: Path, runs: dict[str, str], runner
) -> None:
    from gitxp.present.report import report

    out = report(repo, "long", repo / "long.html")
    html = Path(out).read_text()
    data = json.loads(re.search(r'id="gitxp-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    series = data["series"][runs["long"]]["loss"]
    assert series["total"] == 50_000 and len(series["value"]) <= 1002
    result = runner.invoke(cli, ["report", "nope", "-o", "x.html"])
    assert result.exit_code == 1
    assert result.output.startswith("error: no runs to report in experiment 'nope'")
    assert not (repo / "x.html").exists()


# -- plot ------------------------------------------------------------------------
def test_plot_writes_a_png(repo: Path, runs: dict[str, str], runner) -> None:
    result = runner.invoke(
        cli, ["plot", "swift-otter", runs["hostile"][:10], "--metric", "loss", "-o", "loss.png"]
    )
    assert result.exit_code == 0, result.output
    data = (repo / "loss.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plot_without_out_prints_sparklines(repo: Path, runs: dict[str, str], runner) -> None:
    result = runner.invoke(cli, ["plot", "swift-otter", "long-series", "-m", "loss"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "loss"
    assert lines[1].startswith("swift-otter") and "█" in lines[1] and "100 points" in lines[1]
    assert "50,000 points" in lines[2]
    as_json = json.loads(
        runner.invoke(cli, ["plot", "swift-otter", "-m", "acc", "--format", "json"]).output
    )
    assert as_json[0]["steps"] == list(range(0, 100, 10))


def test_plot_errors_are_one_line(repo: Path, runs: dict[str, str], runner) -> None:
    result = runner.invoke(cli, ["plot", "swift-otter", "-m", "nope"])
    assert result.exit_code == 1 and result.output.startswith("error: run ")
    assert "has no metric 'nope'" in result.output
    result = runner.invoke(cli, ["plot", "no-such-run", "-m", "loss"])
    assert result.exit_code == 1 and "no run matches" in result.output


def test_plot_image_without_matplotlib_names_the_extra(
    repo: Path, runs: dict[str, str], runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = runner.invoke(cli, ["plot", "swift-otter", "-m", "loss", "-o", "x.png"])
    assert result.exit_code == 1
    assert "pip install 'gitxp[plot]'" in result.output


def test_sparkline_shape() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([3, 3, 3]) == "▅▅▅"
    assert len(sparkline(list(range(1000)), width=40)) == 40
    assert sparkline([]) == ""


# -- tree diff -------------------------------------------------------------------
def test_tree_diff_reports_every_kind_of_change(repo: Path) -> None:
    old = git(repo, "rev-parse", "HEAD").strip()
    (repo / "README.md").write_text("# project\nmore\n")
    (repo / "new.txt").write_text("hello\n")
    (repo / "blob.bin").write_bytes(b"\0\1\2binary")
    git(repo, "rm", "-q", ".gitignore")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "change")
    new = git(repo, "rev-parse", "HEAD").strip()
    with GitRepo(str(repo)) as g:
        changes = {c.path: c.status for c in changed_files(g, old, new)}
        assert changes == {
            ".gitignore": "deleted",
            "README.md": "modified",
            "blob.bin": "added",
            "new.txt": "added",
        }
        text = unified_diff(g, old, new)
        ours = unified_diff(g, old, new, ["README.md"])
        whole = unified_diff(g, None, old)
    assert "+more\n" in ours and "new.txt" not in ours
    assert "--- /dev/null\n+++ b/blob.bin\n(binary file)" in text
    assert "+++ /dev/null" in text  # the deletion
    # the same changes git itself reports
    assert sorted(git(repo, "diff", "--name-only", old, new).split()) == sorted(changes)
    assert "+print('training')" in whole
