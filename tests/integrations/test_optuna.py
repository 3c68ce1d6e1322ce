"""gitxp.optuna: each trial of a real Optuna study is one run (params, value, state, tags)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

import gitxp
from gitxp.optuna import GitxpCallback
from tests.gitutil import fsck, run_refs

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _rows(repo: Path, experiment: str) -> dict[int, dict]:
    rows = gitxp.open(repo).rows(experiment=experiment)
    return {int(r["tags"]["optuna.trial"]): r for r in rows}


def test_six_trials_are_six_runs_with_params_value_and_state(repo: Path) -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -2.0, 2.0)
        layers = trial.suggest_int("layers", 1, 4)
        opt = trial.suggest_categorical("opt", ["adam", "sgd"])
        trial.set_user_attr("note", f"try {trial.number}")
        if trial.number == 2:
            trial.report(0.25, 0)
            raise optuna.TrialPruned()
        if trial.number == 4:
            raise ValueError("diverged")
        return x * x + layers + (opt == "sgd")

    callback = GitxpCallback(metric_name="loss")
    study = optuna.create_study(study_name="quad", sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(objective, n_trials=6, callbacks=[callback], catch=(ValueError,))

    rows = _rows(repo, "quad")
    assert sorted(rows) == [0, 1, 2, 3, 4, 5] and len(run_refs(repo)) == 6
    for trial in study.trials:
        row = rows[trial.number]
        assert row["name"] == f"quad-{trial.number}"
        assert row["params"] == trial.params
        tags = row["tags"]
        assert tags["optuna.study"] == "quad" and tags["optuna.state"] == trial.state.name
        assert tags["optuna.direction"] == "MINIMIZE" and tags["note"] == f"try {trial.number}"
        dist = optuna.distributions.json_to_distribution(tags["optuna.distribution.x"])
        assert dist == optuna.distributions.FloatDistribution(-2.0, 2.0)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert row["status"] == "FINISHED"
            assert row["metrics"]["loss"] == pytest.approx(trial.value)
        else:
            assert "loss" not in row["metrics"]
    assert rows[2]["status"] == "FINISHED" and rows[2]["tags"]["optuna.state"] == "PRUNED"
    assert rows[2]["metrics"]["intermediate_value"] == 0.25
    failed = gitxp.open(repo).run(rows[4]["id"])
    assert failed.status == "FAILED" and "trial failed" in failed.meta["error"]
    fsck(repo)


def test_track_in_gitxp_logs_inside_the_objective_into_the_trial_run(repo: Path) -> None:
    callback = GitxpCallback(metric_name="acc", experiment="tracked")

    @callback.track_in_gitxp()
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        run = gitxp.active_run()
        assert run is not None and run.tags["optuna.trial"] == str(trial.number)
        for epoch in range(3):
            gitxp.log_metric("train_loss", lr * (3 - epoch), step=epoch)
            trial.report(epoch / 10, epoch)
        return 1 - lr

    study = optuna.create_study(study_name="lr", direction="maximize")
    study.optimize(objective, n_trials=4, callbacks=[callback], n_jobs=2)

    assert gitxp.active_run() is None
    handle = gitxp.open(repo)
    rows = _rows(repo, "tracked")
    assert sorted(rows) == [0, 1, 2, 3]
    for trial in study.trials:
        row = rows[trial.number]
        assert trial.system_attrs["gitxp:run_id"] == row["id"]
        assert row["metrics"]["acc"] == pytest.approx(trial.value)
        assert row["params"] == {"lr": trial.params["lr"]}
        assert row["tags"]["optuna.direction"] == "MAXIMIZE"
        series = handle.run(row["id"]).metric_history("train_loss")
        assert list(series["step"]) == [0, 1, 2]
        assert row["metrics"]["intermediate_value"] == pytest.approx(0.2)


def test_an_uncaught_error_ends_the_run_failed_and_propagates(repo: Path) -> None:
    callback = GitxpCallback()

    @callback.track_in_gitxp()
    def objective(trial: optuna.Trial) -> float:
        trial.suggest_int("n", 1, 3)
        gitxp.log_metric("partial", 1.0)
        raise RuntimeError("out of memory")

    study = optuna.create_study(study_name="oom")
    with pytest.raises(RuntimeError, match="out of memory"):
        study.optimize(objective, n_trials=3, callbacks=[callback])
    (row,) = gitxp.open(repo).rows()
    assert row["status"] == "FAILED" and row["tags"]["optuna.state"] == "FAIL"
    assert row["metrics"] == {"partial": 1.0} and "n" in row["params"]
    assert gitxp.open(repo).run(row["id"]).meta["error"] == "RuntimeError: out of memory"


def test_track_in_gitxp_without_the_callback_is_a_one_line_error(repo: Path) -> None:
    callback = GitxpCallback()
    objective = callback.track_in_gitxp()(lambda trial: trial.suggest_float("x", 0, 1))
    study = optuna.create_study()
    for callbacks in (None, [GitxpCallback()]):
        with pytest.raises(gitxp.InvalidValueError) as info:
            study.optimize(objective, n_trials=1, callbacks=callbacks)
        assert "callbacks=[callback]" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(gitxp.InvalidValueError):
        objective(study.ask())  # called by hand, outside study.optimize
    assert run_refs(repo) == []


def test_multi_objective_names(repo: Path) -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        return x, 1 - x

    study = optuna.create_study(study_name="mo", directions=["minimize", "maximize"])
    study.optimize(objective, n_trials=2, callbacks=[GitxpCallback(["err", "acc"])])
    study.optimize(objective, n_trials=1, callbacks=[GitxpCallback("value")])
    rows = _rows(repo, "mo")
    for trial in study.trials[:2]:
        assert rows[trial.number]["metrics"] == pytest.approx(
            {"err": trial.values[0], "acc": trial.values[1]}
        )
    assert set(rows[2]["metrics"]) == {"value_0", "value_1"}
    assert rows[0]["tags"]["optuna.direction"] == "MINIMIZE,MAXIMIZE"
    with pytest.raises(gitxp.InvalidValueError, match="3 names for 2 objective values"):
        study.optimize(objective, n_trials=1, callbacks=[GitxpCallback(["a", "b", "c"])])
    with pytest.raises(gitxp.InvalidValueError, match="metric_name"):
        GitxpCallback(metric_name=3)  # type: ignore[arg-type]
    from gitxp.tracking import context

    for run in list(context._open):  # the trial whose callback raised
        run.end("KILLED")


def test_trial_runs_are_their_own_even_inside_a_run(repo: Path) -> None:
    with gitxp.start_run(name="outer") as outer:
        study = optuna.create_study(study_name="inner")
        study.optimize(
            lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[GitxpCallback()]
        )
        assert gitxp.active_run() is outer
    rows = gitxp.open(repo).rows()
    assert sorted(r["name"] for r in rows) == ["inner-0", "inner-1", "outer"]
    assert outer.params == {}
    code = {r["code_commit"] for r in rows if r["name"].startswith("inner")}
    assert len(code) == 1  # the work tree was captured once, for the first trial
    assert json.loads(json.dumps(rows[0]["tags"]))  # tags are plain text
