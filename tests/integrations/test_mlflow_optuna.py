"""optuna-integration's MLflowCallback on the `gitxp:` plugin: one gitxp run per trial.

A real 3-trial study in a subprocess, MLflowCallback given only
`tracking_uri="gitxp:<repo>"` and `metric_name`; the runs are read back with gitxp.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gitxp
from tests.gitutil import git

STUDY = """
import sys
import optuna
from optuna_integration.mlflow import MLflowCallback

optuna.logging.set_verbosity(optuna.logging.WARNING)
callback = MLflowCallback(tracking_uri=f"gitxp:{sys.argv[1]}", metric_name="loss")
study = optuna.create_study(study_name="quad", sampler=optuna.samplers.RandomSampler(seed=1))
study.optimize(lambda t: (t.suggest_float("x", -10, 10) - 2) ** 2, n_trials=3, callbacks=[callback])
print(",".join(repr(t.value) for t in study.trials))
"""


def test_mlflow_callback_records_one_gitxp_run_per_trial(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
    (repo / "study.py").write_text(STUDY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "study.py", str(repo)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    values = sorted(float(v) for v in done.stdout.strip().splitlines()[-1].split(","))
    rows = gitxp.open(repo).rows()
    assert len(rows) == 3
    assert {r["experiment"] for r in rows} == {"quad"}
    assert {r["status"] for r in rows} == {"FINISHED"}
    assert sorted(r["metrics"]["loss"] for r in rows) == values
    assert all(set(r["params"]) == {"x"} for r in rows)
    assert sorted(r["tags"].get("number") for r in rows) == ["0", "1", "2"]
