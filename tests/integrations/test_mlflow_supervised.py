"""MLflow through the `gitxp:` plugin under `gitxp run`: the first top-level MLflow run of the
process is the run `gitxp run` records (docs/mlflow.md), nested runs are its children, a later
top-level run is a run of its own.

The scripts are unchanged MLflow scripts, run by `gitxp run` in subprocesses with only
`MLFLOW_TRACKING_URI=gitxp:` set (or `import gitxp.mlflow as mlflow` and nothing set).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import gitxp
from tests.gitutil import fsck, git

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # MLflow itself in subprocesses: ~15 s

TRAIN = """
import json, sys
import mlflow
mlflow.set_experiment("iris")
with mlflow.start_run() as run:
    mlflow.log_params({"lr": 0.1, "depth": 3})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.set_tag("team", "vision")
json.dump({"run": run.info.run_id}, open(sys.argv[1], "w"))
"""

SWAPPED = """
import json, sys
import gitxp.mlflow as mlflow
with mlflow.start_run(run_name="main run") as run:
    mlflow.log_param("lr", 0.1)
    mlflow.log_metric("acc", 0.5)
    with mlflow.start_run(nested=True) as child:
        mlflow.log_metric("fold_acc", 0.4)
with mlflow.start_run() as later:
    mlflow.log_param("lr", 0.2)
json.dump({"run": run.info.run_id, "child": child.info.run_id, "later": later.info.run_id},
          open(sys.argv[1], "w"))
if len(sys.argv) > 2:
    raise SystemExit(3)
"""


def _project(path: Path, script: str) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text(script)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def _gitxp_run(
    repo: Path, *args: str, options: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GITXP_"))}
    cmd = [sys.executable, "-m", "gitxp", "run", *options, "--", sys.executable, "train.py"]
    return subprocess.run(
        [*cmd, "out.json", *args],
        cwd=repo,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _rows(repo: Path) -> dict[str, dict[str, Any]]:
    with gitxp.open(repo) as r:
        return {row["id"]: row for row in r.rows()}


def test_an_unchanged_mlflow_script_records_into_the_run_of_gitxp_run(tmp_path: Path) -> None:
    repo = _project(tmp_path / "project", TRAIN)
    done = _gitxp_run(repo, options=("--param", "lr=0.1"), MLFLOW_TRACKING_URI="gitxp:")
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads((repo / "out.json").read_text())
    runs = _rows(repo)
    assert list(runs) == [out["run"]]  # one run: gitxp run's, holding what MLflow logged
    run = runs[out["run"]]
    assert run["status"] == "FINISHED"
    assert run["experiment"] == "iris"  # gitxp run left it in the default experiment
    # MLflow logs params as text; the same value gitxp run recorded typed keeps its type
    assert run["params"] == {"lr": 0.1, "depth": "3"}
    assert run["metrics"]["loss"] == pytest.approx(0.2)
    assert run["tags"]["team"] == "vision"
    with gitxp.open(repo) as r:
        record = r.run(out["run"])
        assert record.metric_history("loss")["step"].tolist() == [0, 1, 2, 3, 4]
        assert record.meta["command"]["argv"][-2:] == ["train.py", "out.json"]
    fsck(repo)


def test_with_the_import_swap_nested_runs_are_children_and_a_later_run_is_its_own(
    tmp_path: Path,
) -> None:
    repo = _project(tmp_path / "project", SWAPPED)
    done = _gitxp_run(repo, "fail")
    assert done.returncode == 3, done.stdout + done.stderr
    out = json.loads((repo / "out.json").read_text())
    runs = _rows(repo)
    assert set(runs) == {out["run"], out["child"], out["later"]}
    main = runs[out["run"]]
    assert main["name"] == "main-run" and main["experiment"] == "default"
    assert main["params"] == {"lr": "0.1"} and main["metrics"] == {"acc": 0.5}
    assert main["status"] == "FAILED"  # gitxp run ends it by the command's exit code
    assert runs[out["child"]]["parent"] == out["run"]
    assert runs[out["child"]]["status"] == "FINISHED"
    assert runs[out["later"]]["params"] == {"lr": "0.2"}
    assert runs[out["later"]].get("parent") is None
    assert runs[out["later"]]["status"] == "FINISHED"
    fsck(repo)
