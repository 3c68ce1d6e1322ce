"""gitxp.ray: each trial of a real Ray Tune job (local 2-CPU cluster) is one run, from the driver."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gitxp
from tests.gitutil import fsck, run_refs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """One local Ray instance for the module, yielding `ray.tune`.

    Ray is imported here, not at collection, and what importing and
    starting it changes in this process (environment variables, sys.path,
    warning filters, the SIGTERM handler) is undone after `ray.shutdown()`,
    so the other tests of the session do not run under Ray's settings.
    """
    env, path, filters = dict(os.environ), list(sys.path), list(warnings.filters)
    sigterm = signal.getsignal(signal.SIGTERM)
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # no CSV/JSON/TBX files per trial
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray
    from ray import tune

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield tune
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = path
        warnings.filters[:] = filters
        signal.signal(signal.SIGTERM, sigterm)


def train_fn(config: dict) -> None:
    """A trainable (run by Ray's workers): three reports, or an error at the second for lr 0.5."""
    from ray import tune

    for i in range(3):
        if config["lr"] == 0.5 and i == 1:
            raise ValueError("loss diverged")
        tune.report({"loss": config["lr"] * (3 - i), "extra": {"seen": i}, "text": "x"})


def test_grid_of_three_trials_is_three_runs(ray_cluster: Any, repo: Path, tmp_path: Path) -> None:
    from gitxp.ray import GitxpLoggerCallback

    tune = ray_cluster
    callback = GitxpLoggerCallback(experiment="ray-grid", tags={"team": "search"})
    tuner = tune.Tuner(
        train_fn,
        param_space={"lr": tune.grid_search([0.01, 0.1, 0.5]), "opt": {"name": "adam"}},
        run_config=tune.RunConfig(
            name="grid", storage_path=str(tmp_path / "ray_results"), callbacks=[callback], verbose=0
        ),
    )
    results = tuner.fit()
    assert len(results) == 3 and len(run_refs(repo)) == 3

    handle = gitxp.open(repo)
    rows = {r["params"]["lr"]: r for r in handle.rows(experiment="ray-grid")}
    assert sorted(rows) == [0.01, 0.1, 0.5]
    for lr in (0.01, 0.1):
        row = rows[lr]
        assert row["status"] == "FINISHED" and row["params"] == {"lr": lr, "opt/name": "adam"}
        assert row["tags"]["ray.status"] == "TERMINATED" and row["tags"]["team"] == "search"
        assert row["tags"]["ray.experiment"] == "grid"
        assert row["name"] == row["tags"]["ray.trial_name"]
        loss = handle.run(row["id"]).metric_history("loss")
        assert list(loss["step"]) == [1, 2, 3]  # training_iteration
        assert list(loss["value"]) == pytest.approx([lr * 3, lr * 2, lr])
        assert row["metrics"]["extra/seen"] == 2
        assert not {"pid", "timestamp", "training_iteration", "text"} & set(row["metrics"])
    failed = handle.run(rows[0.5]["id"])
    assert failed.status == "FAILED" and failed.tags["ray.status"] == "ERROR"
    assert "loss diverged" in failed.meta["error"]
    assert failed.last_metrics["loss"] == 1.5  # what it reported before failing
    assert len({r["code_commit"] for r in rows.values()}) == 1  # captured once, on the driver
    fsck(repo)
