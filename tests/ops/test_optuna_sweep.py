"""`gitxp sweep --optuna`: an Optuna study (in its own storage) whose trials are `gitxp run`s."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

import gitxp
from gitxp.ops.optuna_sweep import ParamSpec, parse_space
from tests.gitutil import fsck, run_refs
from tests.workflows_util import GITXP, child_env

optuna.logging.set_verbosity(optuna.logging.ERROR)

SCRIPT = """\
import os, sys, time
import gitxp

p = gitxp.active_run().params
if p["opt"] == "bad":
    sys.exit(3)                      # a failing trial
if "--sleep" in sys.argv:
    open("started", "w").close()
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        sys.exit(130)
if "--no-metric" not in sys.argv:
    gitxp.log_metric("acc", 1 - abs(p["lr"] - 0.01) - p["layers"] / 100)
print("args", sys.argv[1:])
"""

SPACE = ["-p", "lr=loguniform(1e-4,1e-1)", "-p", "layers=int(1,4)"]
OPT = ["-p", "opt=choice(adam,sgd)"]


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "train.py").write_text(SCRIPT)
    return repo


def _load(project: Path, study: str) -> optuna.Study:
    path = project / ".git" / "gitxp" / "optuna" / f"{study}.log"
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.load_study(study_name=study, storage=optuna.storages.JournalStorage(backend))


def test_search_space_specs() -> None:
    space = parse_space(
        [
            *("lr=loguniform(1e-4, 0.1)", "m=uniform(0,1)", "n=int(1,8,2)", "u=int(1,64,log)"),
            *("opt=choice(adam,sgd,1)", "bs=32,64", "seed=0"),
        ]
    )
    assert space["lr"] == ParamSpec("float", 1e-4, 0.1, log=True)
    assert space["m"] == ParamSpec("float", 0.0, 1.0)
    assert space["n"] == ParamSpec("int", 1, 8, step=2)
    assert space["u"] == ParamSpec("int", 1, 64, log=True)
    assert space["opt"].choices == ("adam", "sgd", 1) and space["bs"].choices == (32, 64)
    assert space["seed"] == ParamSpec("choice", choices=(0,))
    assert space["u"].distribution() == optuna.distributions.IntDistribution(1, 64, log=True)
    bad = [
        "lr",
        "lr=loguniform(0,1)",
        "lr=uniform(2,1)",
        "lr=uniform(a,b)",
        "n=int(1)",
        "n=int(0,4,log)",
        "x=normal(0,1)",
        "x=choice()",
    ]
    for spec in bad:
        with pytest.raises(gitxp.UsageError) as info:
            parse_space([spec])
        assert "\n" not in str(info.value)
    with pytest.raises(gitxp.UsageError, match="twice"):
        parse_space(["a=1", "a=2"])


def test_a_study_of_six_trials_is_six_runs(project: Path, runner) -> None:
    from gitxp.cli.main import cli

    args = ["sweep", "--optuna", "--study", "s", "--trials", "6", "--sampler", "random"]
    args += ["--seed", "7", *SPACE, *OPT, "--metric", "acc", "-e", "opt", "--format", "json"]
    result = runner.invoke(cli, [*args, "--", sys.executable, "train.py", "--lr={lr}"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["runs"]) == 6
    study = _load(project, "s")  # Optuna's own storage: a journal file in .git/gitxp/optuna
    handle = gitxp.open(project)
    rows = {int(r["tags"]["optuna.trial"]): r for r in handle.rows(experiment="opt")}
    assert sorted(rows) == [0, 1, 2, 3, 4, 5] == [t.number for t in study.trials]
    for trial in study.trials:
        row = rows[trial.number]
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert row["params"] == trial.params and row["name"] == f"s-{trial.number}"
        assert 1e-4 <= row["params"]["lr"] <= 0.1 and row["params"]["layers"] in (1, 2, 3, 4)
        assert row["metrics"]["acc"] == pytest.approx(trial.value)
        assert trial.user_attrs["gitxp_run_id"] == row["id"]
        assert row["tags"]["optuna.state"] == "COMPLETE" and row["tags"]["optuna.study"] == "s"
        assert "optuna.distribution.lr" in row["tags"]
    best = data["runs"][0]
    assert best["value"] == pytest.approx(study.best_value)
    assert data["study"] == {
        "name": "s",
        "trials": 6,
        "best": {
            "trial": study.best_trial.number,
            "value": best["value"],
            "run_id": best["run_id"],
        },
    }
    assert f"args ['--lr={best['params']['lr']}']" in handle.run(best["run_id"]).output
    fsck(project)


def test_failures_are_fail_trials_and_other_storages(project: Path, runner, tmp_path) -> None:
    from gitxp.cli.main import cli

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    common = ["sweep", "--optuna", "--study", "f", "--storage", url, "--trials", "1"]
    common += ["-p", "lr=0.01", "-p", "layers=2", "--metric", "acc"]
    bad = runner.invoke(cli, [*common, "-p", "opt=bad", "--", sys.executable, "train.py"])
    assert bad.exit_code == 1 and "1 failed" in bad.output
    args = [*common, "-p", "opt=bad,sgd", "--", sys.executable, "train.py", "--no-metric"]
    changed = runner.invoke(cli, args)  # the study samples opt from (bad) only
    assert changed.exit_code == 2 and "another --study" in changed.output
    # study g: the run ends well but logs no metric (opt fixed, so the trial never exits 3)
    no_metric = [*common[:3], "g", *common[4:], "-p", "opt=sgd", "--", sys.executable]
    missing = runner.invoke(cli, [*no_metric, "train.py", "--no-metric"])
    assert missing.exit_code == 1
    trials = [optuna.load_study(study_name=s, storage=url).trials for s in ("f", "g")]
    assert [[t.state.name for t in ts] for ts in trials] == [["FAIL"], ["FAIL"]]
    rows = sorted(gitxp.open(project).rows(), key=lambda r: r["tags"]["optuna.study"])
    assert [r["status"] for r in rows] == ["FAILED", "FINISHED"]
    assert [r["tags"]["optuna.state"] for r in rows] == ["FAIL", "FAIL"]
    assert not (project / ".git" / "gitxp" / "optuna").exists()
    # a study to minimise is not silently maximised
    other = runner.invoke(cli, [*common, "--goal", "min", "-p", "opt=bad", "--", "python", "x"])
    assert other.exit_code == 2 and "--goal max" in other.output


def test_usage_errors_are_one_line(project: Path, runner) -> None:
    from gitxp.cli.main import cli

    cases = [
        (["--optuna", "-p", "lr=uniform(0,1)", "--metric", "acc"], "--study"),
        (["--optuna", "--study", "s", "-p", "lr=uniform(0,1)"], "--metric"),
        (["--optuna", "--study", "s", "--metric", "a", "-p", "lr=beta(1,2)"], "beta"),
        (["--optuna", "--study", "a/b", "--metric", "a", "-p", "x=1"], "--storage"),
        (["--optuna", "--study", "s", "--metric", "a", "-p", "x=1", "--random", "2"], "--random"),
        (["--study", "s", "-p", "x=1"], "--optuna"),
    ]
    for args, needle in cases:
        result = runner.invoke(cli, ["sweep", *args, "--", "python", "train.py"])
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("error: ") and needle in result.output
        assert result.output.count("\n") == 1, result.output
    assert run_refs(project) == []


def _sweep(project: Path, *extra: str, flag: str = "--fast") -> subprocess.Popen[str]:
    argv = [*GITXP, "sweep", "--optuna", "--study", "shared", *SPACE, "--metric", "acc"]
    return subprocess.Popen(
        [*argv, *extra, "--", sys.executable, "train.py", flag],
        cwd=project,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_two_sweeps_share_one_study(project: Path) -> None:
    # two processes at once, one of them with two trials at a time
    procs = [_sweep(project, "--trials", "2", *OPT, *jobs) for jobs in ([], ["--jobs", "2"])]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        outs.append(out)
    study = _load(project, "shared")
    numbers = sorted(t.number for t in study.trials)
    assert numbers == [0, 1, 2, 3]  # the trials add up, none twice
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    rows = gitxp.open(project).rows()
    assert sorted(int(r["tags"]["optuna.trial"]) for r in rows) == numbers
    assert {r["id"] for r in rows} == {t.user_attrs["gitxp_run_id"] for t in study.trials}
    assert len({r["tags"]["gitxp.sweep"] for r in rows}) == 2  # one sweep id per process
    assert all("2 runs, 0 failed" in out and "study shared: " in out for out in outs)
    fsck(project)


def test_ctrl_c_stops_the_sweep_cleanly(project: Path) -> None:
    proc = _sweep(project, "--trials", "5", "-p", "opt=sgd", flag="--sleep")
    deadline = time.monotonic() + 120
    while not (project / "started").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first trial never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopped" in err and "Traceback" not in err
    study = _load(project, "shared")
    assert [t.state.name for t in study.trials] == ["FAIL"]  # no trial after the interrupted one
    (row,) = gitxp.open(project).rows()
    assert row["status"] == "KILLED" and row["tags"]["optuna.state"] == "FAIL"
    fsck(project)


def test_the_cmaes_sampler_drives_a_study_of_numeric_params(project: Path, runner) -> None:
    from gitxp.cli.main import cli

    args = ["sweep", "--optuna", "--study", "cma", "--trials", "3", "--sampler", "cmaes"]
    args += ["--seed", "1", *SPACE, "-p", "opt=adam", "--metric", "acc", "--goal", "max"]
    result = runner.invoke(cli, [*args, "-e", "cma", "--", sys.executable, "train.py"])
    assert result.exit_code == 0, result.output
    study = _load(project, "cma")
    trials = study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    rows = {int(r["tags"]["optuna.trial"]): r for r in gitxp.open(project).rows(experiment="cma")}
    assert sorted(rows) == [0, 1, 2]
    for trial in trials:
        assert rows[trial.number]["params"] == trial.params
        assert rows[trial.number]["metrics"]["acc"] == pytest.approx(trial.value)
    # past its first (independent) trial, CMA-ES itself proposed the numeric params: it
    # keeps its generation in each trial it sampled (another sampler would not)
    assert ["cma:generation" in t.system_attrs for t in trials] == [False, True, True]
    assert len({t.params["lr"] for t in trials}) == 3
