"""`gitxp demo`, the README's first command, end to end from a directory that is not a repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gitutil import fsck, git
from tests.workflows_util import gitxp as run_gitxp

pytest.importorskip("sklearn")  # in the `test` extra, so this always runs in CI


@pytest.mark.slow
def test_demo_records_a_sweep_diffs_and_reproduces(tmp_path: Path) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    target = tmp_path / "demo"
    result = run_gitxp(outside, "demo", "--path", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("$ gitxp run -e iris") >= 6
    assert "3. $ gitxp log" in out
    assert "4. $ gitxp diff" in out and "Params" in out and "Metrics" in out
    assert "REPRODUCED: all 4 metrics match" in out
    assert f"The runs live in {target}" in out and f"cd {target}" in out

    runs = json.loads(run_gitxp(target, "log", "--format", "json").stdout)
    assert len(runs) == 7 and {r["status"] for r in runs} == {"FINISHED"}
    assert {r["experiment"] for r in runs} == {"iris"}
    sweep = [r for r in runs if "reproduces" not in r["tags"]]
    assert len({r["params"]["C"] for r in sweep}) >= 5
    repro = next(r for r in runs if "reproduces" in r["tags"])
    best = max(sweep, key=lambda r: (r["metrics"]["accuracy"], -r["metrics"]["val_loss"]))
    assert repro["tags"]["reproduces"] == best["id"]
    assert repro["metrics"] == best["metrics"]
    # the project is an ordinary, clean git repository with one commit
    assert git(target, "status", "--porcelain") == ""
    assert git(target, "log", "--format=%s").splitlines() == [
        "iris: logistic regression demo project"
    ]
    assert not list(outside.iterdir())  # nothing was written where it ran
    fsck(target)


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("mine")
    result = run_gitxp(tmp_path, "demo", "--path", str(tmp_path))
    assert result.returncode == 1
    assert "not an empty directory" in result.stderr
    assert (tmp_path / "file.txt").read_text() == "mine"
    assert not (tmp_path / ".git").exists()


@pytest.mark.slow
def test_run_demo_is_the_same_demo_in_python(tmp_path: Path) -> None:
    from gitxp.ops.demo import run_demo

    seen: list[str] = []
    result = run_demo(tmp_path / "py-demo", on_run=lambda spec, launched: seen.append("run"))
    assert result.path == str(tmp_path / "py-demo")
    assert len(result.runs) >= 6 and len(seen) == len(result.runs)
    assert all(r.status == "FINISHED" for r in result.runs)
    assert result.best is not None and result.worst is not None
    assert result.best["metrics"]["accuracy"] >= result.worst["metrics"]["accuracy"]
    assert result.reproduction.exit_status == 0 and result.reproduction.verdict == "match"
    fsck(tmp_path / "py-demo")
