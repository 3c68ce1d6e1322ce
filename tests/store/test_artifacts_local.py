"""Artifacts in one repository: small files in the run tree, large ones in the local store."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from gitxp.git.repository import GitRepo
from gitxp.store import artifacts
from tests.gitutil import fsck, git


@pytest.fixture
def outputs(repo: Path) -> Path:
    out = repo / "cache" / "outputs"  # cache/ is ignored, like real training outputs
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "loss.svg").write_text("<svg/>")
    (out / "weights.bin").write_bytes(os.urandom(4096))
    (out / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (out / "run.sh").chmod(0o755)
    return out


def _only_run(repo: Path) -> gitxp.RunRecord:
    with gitxp.open(repo) as r:
        return r.run(r.runs()["id"][0])


def test_small_files_live_in_the_tree_and_large_ones_in_the_store(
    repo: Path, outputs: Path, tmp_path: Path
) -> None:
    git(repo, "config", "gitxp.artifactThreshold", "1k")
    with gitxp.start_run() as run:
        entry = run.log_artifact(outputs)
        run_id = run.id
    assert entry["name"] == "outputs" and entry["type"] == "directory"
    files = {f["path"]: f for f in entry["files"]}
    assert files["outputs/plots/loss.svg"]["location"] == "tree"
    big = files["outputs/weights.bin"]
    assert big["location"] == "store" and big["size"] == 4096 and big["store"] is None
    assert files["outputs/run.sh"]["mode"] == "100755"

    ref = f"refs/gitxp/runs/{run_id}"
    assert git(repo, "show", f"{ref}:artifacts/outputs/plots/loss.svg") == "<svg/>"
    tree = git(repo, "ls-tree", "-r", ref, "artifacts/")
    assert "weights.bin" not in tree and "100755 blob" in tree
    manifest = json.loads(git(repo, "show", f"{ref}:artifacts.json"))
    assert manifest["format"] == 1 and list(manifest["artifacts"]) == ["outputs"]
    stored = repo / ".git" / "gitxp" / "artifacts" / "sha256" / big["sha256"][:2]
    assert (stored / big["sha256"][2:]).read_bytes() == (outputs / "weights.bin").read_bytes()
    fsck(repo)

    record = _only_run(repo)
    assert {f["path"] for f in record.artifacts()} == set(files)
    written = record.download_artifacts(to=tmp_path / "restored")
    assert len(written) == 3
    for rel in ("plots/loss.svg", "weights.bin", "run.sh"):
        assert (tmp_path / "restored" / "outputs" / rel).read_bytes() == (
            outputs / rel
        ).read_bytes()
    assert os.access(tmp_path / "restored" / "outputs" / "run.sh", os.X_OK)
    only = record.download_artifacts("outputs/weights.bin", to=tmp_path / "one")
    assert [Path(p).name for p in only] == ["weights.bin"]


def test_module_level_twin_names_and_replacement(repo: Path, outputs: Path) -> None:
    with gitxp.start_run():
        gitxp.log_artifact(outputs / "weights.bin", name="model/weights.bin")
        gitxp.log_artifact(outputs, name="out")
        gitxp.log_artifact(outputs / "run.sh", name="out")  # replaces the directory
        with pytest.raises(gitxp.ArtifactError, match="overlaps"):
            gitxp.log_artifact(outputs / "run.sh", name="model")
        for bad in ("../up", "/abs", "a/.git/x", "", "a//b"):
            with pytest.raises(gitxp.InvalidValueError):
                gitxp.log_artifact(outputs / "run.sh", name=bad)
        with pytest.raises(gitxp.ArtifactError, match="no such file"):
            gitxp.log_artifact(outputs / "missing.txt")
    record = _only_run(repo)
    assert sorted(f["path"] for f in record.artifacts()) == ["model/weights.bin", "out"]
    tree = git(repo, "ls-tree", "-r", "--name-only", record.ref, "artifacts/")
    assert tree.split() == ["artifacts/model/weights.bin", "artifacts/out"]
    with pytest.raises(gitxp.NoActiveRunError):
        gitxp.log_artifact(outputs / "run.sh")
    fsck(repo)


def test_symlinks_in_a_logged_directory_are_not_followed(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not share")
    out = repo / "cache" / "linked"
    out.mkdir(parents=True)
    (out / "ok.txt").write_text("fine")
    (out / "leak.txt").symlink_to(secret)
    (out / "dir").symlink_to(tmp_path)
    with gitxp.start_run() as run:
        entry = run.log_artifact(out)
    assert [f["path"] for f in entry["files"]] == ["linked/ok.txt"]
    assert sorted(entry["skipped"]) == ["dir", "leak.txt"]


def test_threshold_and_store_settings_come_from_env_git_config_then_pyproject(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git_repo = GitRepo(str(repo))
    assert artifacts.settings(git_repo) == artifacts.Settings(5 * 1024 * 1024, None)
    (repo / "pyproject.toml").write_text(
        '[tool.gitxp]\nartifact_threshold = "2M"\nartifact_store = "shared/store"\n'
    )
    assert artifacts.settings(git_repo) == artifacts.Settings(
        2 * 1024 * 1024, str(repo / "shared" / "store")
    )
    git(repo, "config", "gitxp.artifactThreshold", "512k")
    git(repo, "config", "gitxp.artifactStore", "s3://user:pw@bucket/p?secret_key=x&region=eu")
    got = artifacts.settings(git_repo)
    assert got.threshold == 512 * 1024
    assert got.store_display == "s3://bucket/p?region=eu"  # never record credentials
    monkeypatch.setenv("GITXP_ARTIFACT_THRESHOLD", "100")
    assert artifacts.settings(git_repo).threshold == 100
    git(repo, "config", "gitxp.artifactThreshold", "lots")
    monkeypatch.delenv("GITXP_ARTIFACT_THRESHOLD")
    with pytest.raises(gitxp.InvalidValueError, match="lots"):
        artifacts.settings(git_repo)
    git_repo.close()


def _forge_run(repo: Path, manifest: dict[str, object], files: dict[str, bytes]) -> str:
    """Write a run whose artifacts.json says whatever we like (what a hostile remote could send)."""
    with gitxp.start_run() as run:
        run_id = run.id
    ref = f"refs/gitxp/runs/{run_id}"
    index = {**files, "artifacts.json": json.dumps(manifest).encode()}
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "forge-index")}
    subprocess.run(["git", "read-tree", ref], cwd=repo, env=env, check=True)
    for path, data in index.items():
        sha = (
            subprocess.run(
                ["git", "hash-object", "-w", "--stdin"],
                cwd=repo,
                input=data,
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        subprocess.run(
            ["git", "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}"],
            cwd=repo,
            env=env,
            check=True,
        )
    tree = subprocess.run(
        ["git", "write-tree"], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    message = git(repo, "log", "-1", "--format=%B", ref)
    commit = git(repo, "commit-tree", tree, "-p", ref, "-m", message).strip()
    git(repo, "update-ref", ref, commit)
    return run_id


@pytest.mark.parametrize(
    "path", ["../escaped.txt", "a/../../escaped.txt", "/tmp/escaped.txt", ".git/config"]
)
def test_get_never_writes_outside_the_target(repo: Path, tmp_path: Path, path: str) -> None:
    data = b"payload"
    import hashlib

    entry = {
        "path": path,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "mode": "100644",
        "location": "tree",
    }
    run_id = _forge_run(repo, {"format": 1, "artifacts": {"x": {"files": [entry]}}}, {})
    target = tmp_path / "deep" / "to"
    # the manifest fails its schema before any path is joined (issue 16)
    with gitxp.open(repo) as r, pytest.raises(gitxp.CorruptRunError, match="not a safe path"):
        r.run(run_id).download_artifacts(to=target)
    assert not (tmp_path / "deep" / "escaped.txt").exists()
    assert not Path("/tmp/escaped.txt").exists() or path != "/tmp/escaped.txt"
    assert list(target.rglob("*")) == []


def test_get_refuses_to_write_through_a_symlink_and_checks_sha256(
    repo: Path, outputs: Path, tmp_path: Path, runner: CliRunner
) -> None:
    git(repo, "config", "gitxp.artifactThreshold", "1k")
    with gitxp.start_run() as run:
        run.log_artifact(outputs)
        run_id = run.id
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "to"
    target.mkdir()
    (target / "outputs").symlink_to(elsewhere)
    result = runner.invoke(cli, ["artifacts", "get", run_id, "--to", str(target)])
    assert result.exit_code == 1 and "refusing" in result.output
    assert list(elsewhere.iterdir()) == []

    record = _only_run(repo)
    big = next(f for f in record.artifacts() if f["location"] == "store")
    stored = Path(artifacts.local_path(GitRepo(str(repo)), big["sha256"]))
    stored.chmod(0o644)
    stored.write_bytes(b"tampered")
    with pytest.raises(gitxp.ArtifactIntegrityError):
        record.download_artifacts("outputs/weights.bin", to=tmp_path / "fresh")
    assert not (tmp_path / "fresh" / "outputs" / "weights.bin").exists()


def test_cli_ls_and_get(repo: Path, outputs: Path, tmp_path: Path, runner: CliRunner) -> None:
    with gitxp.start_run() as run:
        run.log_artifact(outputs)
        run_id = run.id
    table = runner.invoke(cli, ["artifacts", "ls", run_id[:8]])
    assert table.exit_code == 0 and "outputs/weights.bin" in table.output and "git" in table.output
    listed = json.loads(runner.invoke(cli, ["artifacts", "ls", run_id, "--format", "json"]).output)
    assert {f["name"] for f in listed} == {"outputs"}
    assert set(listed[0]) >= {"name", "path", "size", "sha256", "mode", "location"}
    got = runner.invoke(
        cli,
        [
            "artifacts",
            "get",
            run_id,
            "outputs/plots",
            "--to",
            str(tmp_path / "o"),
            "--format",
            "json",
        ],
    )
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["written"] == [
        str(tmp_path / "o" / "outputs" / "plots" / "loss.svg")
    ]
    missing = runner.invoke(cli, ["artifacts", "get", run_id, "nope"])
    assert missing.exit_code == 1 and "its artifacts: outputs" in missing.output
    for args in (["artifacts"], ["artifacts", "ls"], ["artifacts", "get"]):
        assert "Examples:" in runner.invoke(cli, [*args, "--help"]).output
