"""The `gitxp:` MLflow model-registry store: MLflow's registry calls write GTO's git tags.

An MLflow script written here runs unchanged in a subprocess with only
`MLFLOW_TRACKING_URI=gitxp:<repo>` set; what it registered is then read
back through gitxp's `Repo` and the real `gto show --json`. Calls that do not
map raise MLflow's own `MlflowException`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

import gitxp
from tests.gitutil import git

pytestmark = pytest.mark.slow  # one MLflow script with two sklearn models: ~30-45 s

GTO = str(Path(sys.executable).with_name("gto"))

SCRIPT = """
import json, sys
import numpy as np
import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

X = np.array([-2, -1, 0, 1, 2, 1]).reshape(-1, 1)
y = np.array([0, 0, 1, 1, 1, 0])
out = {}
with mlflow.start_run() as run:
    lr = LogisticRegression().fit(X, y)
    mlflow.log_metric("score", lr.score(X, y))
    info = mlflow.sklearn.log_model(lr, name="model", registered_model_name="churn", pip_requirements=[])
    out["logged_version"] = info.registered_model_version
out["run"] = run.info.run_id
with mlflow.start_run() as second:
    mlflow.sklearn.log_model(LogisticRegression(C=0.1).fit(X, y), name="model", pip_requirements=[])
mv = mlflow.register_model(f"runs:/{second.info.run_id}/model", "churn")
out["second"] = second.info.run_id
out["registered_version"] = mv.version
client = MlflowClient()
client.set_registered_model_alias("churn", "prod", 1)
out["by_alias"] = mlflow.pyfunc.load_model("models:/churn@prod").predict(X).tolist()
out["by_version"] = mlflow.pyfunc.load_model("models:/churn/2").predict(X).tolist()
out["expected"] = lr.predict(X).tolist()
out["alias_version"] = client.get_model_version_by_alias("churn", "prod").version
out["models"] = [m.name for m in client.search_registered_models()]
out["latest"] = [v.version for v in client.get_latest_versions("churn")]
v1 = client.get_model_version("churn", 1)
out["v1"] = {"run_id": v1.run_id, "aliases": v1.aliases, "source": v1.source}
rm = client.get_registered_model("churn")
out["aliases"] = rm.aliases
client.delete_model_version("churn", 2)
out["after_delete"] = [v.version for v in client.search_model_versions("name='churn'")]
json.dump(out, open(sys.argv[1], "w"))
"""


def _project(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# project\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def _env(repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"gitxp:{repo}"
    return env


def gto_show(repo: Path) -> dict[str, Any]:
    done = subprocess.run(
        [GTO, "show", "--json"], cwd=repo, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The script's repository and what it printed."""
    repo = _project(tmp_path_factory.mktemp("mlflow-registry") / "project")
    (repo / "register.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "register.py", str(repo / "out.json")],
        cwd=repo,
        env=_env(repo),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return repo, json.loads((repo / "out.json").read_text())


def test_mlflow_registry_calls_work_with_only_the_tracking_uri(
    registered: tuple[Path, dict[str, Any]],
) -> None:
    _repo, out = registered
    assert out["logged_version"] == "1"
    assert out["registered_version"] == "2"
    assert out["by_alias"] == out["expected"]
    assert len(out["by_version"]) == len(out["expected"])
    assert out["alias_version"] == "1"
    assert out["models"] == ["churn"]
    assert out["latest"] == ["2"]
    assert out["v1"]["run_id"] == out["run"]
    assert out["v1"]["aliases"] == ["prod"]
    assert out["v1"]["source"].startswith("models:/m-")
    assert out["aliases"] == {"prod": "1"}
    assert out["after_delete"] == ["1"]


def test_what_mlflow_registered_is_what_gitxp_and_gto_show(
    registered: tuple[Path, dict[str, Any]],
) -> None:
    repo, out = registered
    model = gitxp.open(repo).model("churn")
    v1 = model.version("v0.0.1")
    assert (v1.run_id, v1.path, v1.stages) == (out["run"], "model", ["prod"])
    deregistered = next(v for v in model.versions if v.version == "v0.0.2")
    assert deregistered.run_id == out["second"] and not deregistered.active
    assert gitxp.open(repo).run("churn#prod").id == out["run"]
    shown = gto_show(repo)
    assert shown["churn"]["version"] == "v0.0.1"
    assert shown["churn"]["stage"] == {"prod": "v0.0.1"}
    cli = subprocess.run(
        [sys.executable, "-m", "gitxp", "model", "show", "churn"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0 and "v0.0.1" in cli.stdout and "prod" in cli.stdout


def test_gto_actions_show_in_mlflow(registered: tuple[Path, dict[str, Any]]) -> None:
    repo, out = registered
    subprocess.run(
        [GTO, "assign", "churn", "--version", "v0.0.1", "--stage", "staging"],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    client = MlflowClient(tracking_uri=f"gitxp:{repo}", registry_uri=f"gitxp:{repo}")
    assert client.get_model_version_by_alias("churn", "staging").run_id == out["run"]
    assert client.get_registered_model("churn").aliases == {"prod": "1", "staging": "1"}
    client.delete_registered_model_alias("churn", "staging")
    assert "staging" not in gto_show(repo)["churn"]["stage"]
    assert client.get_registered_model("churn").aliases == {"prod": "1"}


def test_unmappable_calls_raise_mlflow_errors(registered: tuple[Path, dict[str, Any]]) -> None:
    repo, _out = registered
    client = MlflowClient(tracking_uri=f"gitxp:{repo}", registry_uri=f"gitxp:{repo}")
    cases = [
        lambda: client.transition_model_version_stage("churn", 1, "Production"),
        lambda: client.set_model_version_tag("churn", 1, "k", "v"),
        lambda: client.set_registered_model_tag("churn", "k", "v"),
        lambda: client.update_model_version("churn", 1, description="new"),
        lambda: client.rename_registered_model("churn", "churn2"),
        lambda: client.create_registered_model("other", tags={"k": "v"}),
    ]
    before = git(repo, "tag")
    for call in cases:
        with pytest.raises(MlflowException) as caught:
            call()
        assert "\n" not in str(caught.value.message).strip()
        assert "gitxp" in caught.value.message
    assert git(repo, "tag") == before
    with pytest.raises(MlflowException) as missing:
        client.get_model_version("churn", 9)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as unknown:
        client.get_registered_model("nope")
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException):
        client.create_model_version("churn", "s3://bucket/model", tags=None)
    with pytest.raises(MlflowException):
        client.create_model_version("churn", f"runs:/{_out['run']}/model", tags={"a": "b"})


def test_delete_registered_model_deprecates_and_a_new_version_revives(
    tmp_path: Path, registered: tuple[Path, dict[str, Any]]
) -> None:
    repo, out = registered
    client = MlflowClient(tracking_uri=f"gitxp:{repo}", registry_uri=f"gitxp:{repo}")
    client.create_registered_model("empty")
    assert [m.name for m in client.search_registered_models()] == ["churn", "empty"]
    client.delete_registered_model("empty")
    assert "empty" not in gto_show(repo)
    with pytest.raises(MlflowException):
        client.get_registered_model("empty")
    with pytest.raises(MlflowException) as bad:
        client.set_registered_model_alias("churn", "not a stage!", "1")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"
    client.create_registered_model("fresh")
    assert client.get_registered_model("fresh").latest_versions == []
    mv = client.create_model_version("fresh", f"runs:/{out['run']}/model", description="first")
    assert (mv.version, mv.description) == ("1", "first")
    assert gitxp.open(repo).model("fresh").version("v0.0.1").message.startswith("first")
    client.delete_registered_model("fresh")
    assert "fresh" not in [m.name for m in client.search_registered_models()]
    assert "fresh" not in gto_show(repo)
    with pytest.raises(MlflowException):
        client.get_registered_model("fresh")
    client.create_registered_model("fresh")
    again = client.create_model_version("fresh", f"runs:/{out['second']}/model")
    assert again.version == "2"
    assert gto_show(repo)["fresh"]["version"] == "v0.0.2"
