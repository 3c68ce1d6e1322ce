"""`gitxp sweep`: a grid or random sample of params through `gitxp run`, in parallel, ranked."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import gitxp
from gitxp.ops.sweep import parse_grid, plan, render_command, sweep_commands
from tests.gitutil import fsck, run_refs

SCRIPT = """\
import sys
import gitxp

run = gitxp.active_run()
lr, bs = run.params["lr"], run.params["bs"]
if lr == 0.5:
    sys.exit(3)  # a diverging point: the sweep goes on without it
gitxp.log_metric("acc", 1 - abs(lr - 0.01) - bs / 1000)
print("flag", sys.argv[1:])
"""


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "train.py").write_text(SCRIPT)
    return repo


def test_grid_random_and_placeholders() -> None:
    grid = parse_grid(["lr=0.001,0.01", "bs=32,64", "opt=adam"])
    assert grid == {"lr": [0.001, 0.01], "bs": [32, 64], "opt": ["adam"]}
    points = plan(grid)
    assert len(points) == 4 and points[0] == {"lr": 0.001, "bs": 32, "opt": "adam"}
    sample = plan(grid, random=3, seed=5)
    assert len(sample) == 3 and sample == plan(grid, random=3, seed=5)
    assert len({json.dumps(p) for p in sample}) == 3  # distinct points
    assert len(plan(grid, random=99, seed=0)) == 4
    assert render_command(["python", "t.py", "--lr={lr}", "{other}"], {"lr": 0.01}) == [
        "python",
        "t.py",
        "--lr=0.01",
        "{other}",
    ]
    with pytest.raises(gitxp.UsageError):
        parse_grid(["lr"])
    with pytest.raises(gitxp.UsageError):
        parse_grid(["lr=1", "lr=2"])
    with pytest.raises(gitxp.InvalidValueError):
        plan(grid, random=0)


def test_sweep_runs_in_parallel_tags_and_ranks(project: Path, runner) -> None:
    from gitxp.cli.main import cli

    result = runner.invoke(
        cli,
        [
            "sweep",
            "-p",
            "lr=0.001,0.01",
            "-p",
            "bs=32,64",
            "--jobs",
            "2",
            "--metric",
            "acc",
            "-e",
            "grid",
            "--format",
            "json",
            "--",
            sys.executable,
            "train.py",
            "--lr",
            "{lr}",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ranked = data["runs"]
    assert [(r["params"]["lr"], r["params"]["bs"]) for r in ranked] == [
        (0.01, 32),
        (0.001, 32),
        (0.01, 64),
        (0.001, 64),
    ]
    assert [r["value"] for r in ranked] == sorted((r["value"] for r in ranked), reverse=True)
    handle = gitxp.open(project)
    rows = handle.rows(experiment="grid")
    assert len(rows) == 4
    assert {r["tags"]["gitxp.sweep"] for r in rows} == {data["sweep_id"]}
    assert sorted(r["tags"]["gitxp.sweep.index"] for r in rows) == ["1", "2", "3", "4"]
    best = handle.run(ranked[0]["run_id"])
    assert best.params == {"lr": 0.01, "bs": 32} and best.status == "FINISHED"
    assert "flag ['--lr', '0.01']" in best.output  # {lr} was filled in
    # the filter grammar finds a sweep's runs
    assert len(handle.rows(filter=f"tags.`gitxp.sweep` = '{data['sweep_id']}'")) == 4
    fsck(project)


def test_failed_points_do_not_stop_the_sweep(project: Path, runner) -> None:
    from gitxp.cli.main import cli

    result = runner.invoke(
        cli,
        [
            "sweep",
            "-p",
            "lr=0.01,0.5",
            "-p",
            "bs=32",
            "--metric",
            "acc",
            "-n",
            "try",
            "--",
            sys.executable,
            "train.py",
        ],
    )
    assert result.exit_code == 1
    assert "2 runs, 1 failed" in result.output
    assert "best: try-1" in result.output
    statuses = {r["name"]: r["status"] for r in gitxp.open(project).rows()}
    assert statuses == {"try-1": "FINISHED", "try-2": "FAILED"}


def test_print_commands_are_runnable_gitxp_run_lines(project: Path) -> None:
    lines = sweep_commands(
        [sys.executable, "train.py"],
        {"lr": [0.001, 0.01], "bs": [32]},
        experiment="cluster",
        sweep_id="s1",
    )
    assert len(lines) == 2 and all(line.startswith("gitxp run -q -e cluster") for line in lines)
    gitxp_bin = Path(sys.executable).parent / "gitxp"
    env = {**os.environ, "PATH": f"{gitxp_bin.parent}{os.pathsep}{os.environ['PATH']}"}
    for line in lines:  # what a Slurm array task or GNU parallel would run
        done = subprocess.run(
            shlex.split(line), cwd=project, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    rows = gitxp.open(project).rows(experiment="cluster")
    assert sorted(r["params"]["lr"] for r in rows) == [0.001, 0.01]
    assert {r["tags"]["gitxp.sweep"] for r in rows} == {"s1"}
    assert len(run_refs(project)) == 2


def test_cli_print_commands_and_bad_usage(project: Path, runner) -> None:
    from gitxp.cli.main import cli

    result = runner.invoke(
        cli,
        [
            "sweep",
            "-p",
            "C=0.1,1,10",
            "--random",
            "2",
            "--seed",
            "0",
            "--print-commands",
            "--",
            "python",
            "fit.py",
            "--C",
            "{C}",
        ],
    )
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and all("-- python fit.py --C" in line for line in lines)
    bad = runner.invoke(cli, ["sweep", "-p", "C", "--", "python", "fit.py"])
    assert bad.exit_code == 2 and bad.output.startswith("error: ")
