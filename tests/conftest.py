"""Fixtures every test uses: a real git repository in tmp_path, a CLI runner, `git` helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.gitutil import GIT_ENV, git

RANK_VARIABLES = (
    "GITXP_RANKS",
    "GITXP_GROUP",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "GROUP_RANK",
    "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_RANK",
    "PMI_SIZE",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
    "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_RESTART_COUNT",
    "MASTER_ADDR",
    "MASTER_PORT",
    "PMIX_NAMESPACE",
)

# `gitxp.mlflow` is MLflow itself when MLflow is installed; the suite tests gitxp's built-in
# subset through it, and MLflow itself in subprocesses (tests/integrations/test_mlflow_swap.py)
os.environ.setdefault("GITXP_MLFLOW", "builtin")


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the developer's git config, active run or checkpoint settings."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("GITXP_RUN_ID", "GITXP_RUN_REPO", "GITXP_EXPERIMENT", "GITXP_CHECKPOINT_SECONDS"):
        monkeypatch.delenv(key, raising=False)
    # a test suite started by a distributed launcher (CI under Slurm) is still one process
    for key in RANK_VARIABLES:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A git repository with one commit (README.md, train.py), as the current directory."""
    path = tmp_path / "project"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# project\n")
    (path / "train.py").write_text("print('training')\n")
    (path / ".gitignore").write_text("*.tmp\ncache/\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    monkeypatch.chdir(path)
    yield path


@pytest.fixture
def empty_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with no commit yet, as the current directory."""
    path = tmp_path / "empty"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
