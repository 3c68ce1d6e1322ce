"""`import gitxp.mlflow as mlflow`: MLflow itself bound to gitxp when it is installed, the
built-in subset otherwise (or with GITXP_MLFLOW=builtin), each name it lacks a one-line error.

The scripts run in subprocesses with no MLflow variables set, as a user's would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import git

pytestmark = pytest.mark.slow  # MLflow itself in subprocesses: ~20-40 s

FULL = """
import json, sys
import gitxp.mlflow as mlflow
import gitxp.mlflow.sklearn as swapped_sklearn
import mlflow.sklearn  # a leftover import of MLflow itself
import mlflow as real
import numpy as np
from sklearn.linear_model import LogisticRegression

X = np.array([-2, -1, 0, 1, 2, 1]).reshape(-1, 1)
y = np.array([0, 0, 1, 1, 1, 0])
out = {"uri": mlflow.get_tracking_uri(), "same_sklearn": swapped_sklearn is real.sklearn,
       "same_start": mlflow.start_run is real.start_run, "has_all": len(mlflow.__all__)}
real.autolog(log_models=False)  # leftover autolog of MLflow itself
LogisticRegression().fit(X, y)
out["autolog_run"] = real.last_active_run().info.run_id
real.autolog(disable=True)
mlflow.set_experiment("swap")
with mlflow.start_run(run_name="swapped") as run:
    mlflow.log_metric("acc", 0.5)
    mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model",
                             registered_model_name="swapmodel", pip_requirements=[])
out["run"] = run.info.run_id
out["version"] = mlflow.MlflowClient().get_model_version("swapmodel", 1).run_id
json.dump(out, open(sys.argv[1], "w"))
"""


def _project(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# project\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GITXP_MLFLOW"))}
    return {**env, **extra}


def test_with_mlflow_installed_the_swap_is_mlflow_recording_into_gitxp(tmp_path: Path) -> None:
    repo = _project(tmp_path / "project")
    (repo / "full.py").write_text(FULL)
    done = subprocess.run(
        [sys.executable, "full.py", str(repo / "out.json")],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads((repo / "out.json").read_text())
    assert out["uri"] == "gitxp:"
    assert out["same_sklearn"] and out["same_start"] and out["has_all"] > 50
    runs = {r["id"]: r for r in gitxp.open(repo).rows()}
    assert set(runs) == {out["autolog_run"], out["run"]}  # the leftover autolog run too
    assert runs[out["run"]]["experiment"] == "swap"
    assert runs[out["autolog_run"]]["params"]  # autolog's parameters, recorded in gitxp
    assert out["version"] == out["run"]
    assert gitxp.open(repo).model("swapmodel").version("v0.0.1").run_id == out["run"]
    assert not (repo / "mlruns").exists() and not (repo / "mlflow.db").exists()


def test_a_tracking_uri_the_user_set_is_kept(tmp_path: Path) -> None:
    code = "import gitxp.mlflow as mlflow; print(mlflow.get_tracking_uri())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(MLFLOW_TRACKING_URI="http://127.0.0.1:9"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "http://127.0.0.1:9"


def _builtin_error(tmp_path: Path, prelude: str, **env: str) -> str:
    code = (
        f"{prelude}\nimport gitxp.mlflow as mlflow\n"
        "assert mlflow.start_run.__module__.startswith('gitxp.'), mlflow.start_run.__module__\n"
        "mlflow.log_table\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_env(**env), capture_output=True, text=True
    )
    assert done.returncode == 1
    return done.stderr.strip().splitlines()[-1]


def test_builtin_subset_names_what_to_install_or_unset(tmp_path: Path) -> None:
    forced = _builtin_error(tmp_path, "", GITXP_MLFLOW="builtin")
    assert forced.startswith("AttributeError: gitxp.mlflow.log_table is not in gitxp's built-in")
    assert "unset GITXP_MLFLOW=builtin" in forced
    # MLflow not importable: the subset, and the error says to install the extra
    absent = _builtin_error(tmp_path, "import sys; sys.modules['mlflow'] = None")
    assert "pip install 'gitxp[mlflow]'" in absent
