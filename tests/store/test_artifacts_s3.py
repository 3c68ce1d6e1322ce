"""Large artifacts through a real S3-compatible server (moto's server mode) on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from gitxp.ops import sharing
from gitxp.store import artifacts
from tests.gitutil import fsck, git, run_refs

moto_server = pytest.importorskip("moto.server")
pafs = pytest.importorskip("pyarrow.fs")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> str:
    """A fresh bucket, and dummy credentials in the environment (as on a real cluster)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = "b" + str(abs(hash(request.node.name)))[:12]
    _s3(s3_endpoint).create_dir(name)
    return name


def _s3(endpoint: str) -> object:
    return pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        scheme="http",
        endpoint_override=endpoint,
        allow_bucket_creation=True,
    )


def _store_uri(bucket: str, endpoint: str) -> str:
    return f"s3://{bucket}/gitxp?endpoint_override={endpoint}&scheme=http&region=us-east-1"


def _big(path: Path, size: int = 300_000) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_push_and_pull_move_large_artifacts_through_s3(
    repo: Path, tmp_path: Path, bucket: str, s3_endpoint: str, runner: CliRunner
) -> None:
    store = _store_uri(bucket, s3_endpoint)
    bare = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "config", "gitxp.artifactThreshold", "100k")
    git(repo, "config", "gitxp.artifactStore", store)
    (repo / "cache").mkdir()
    model = _big(repo / "cache" / "model.bin")
    with gitxp.start_run() as run:
        entry = run.log_artifact(repo / "cache" / "model.bin")
        run_id = run.id
    file = entry["files"][0]
    assert file["location"] == "store" and file["store"] == store
    assert file["uri"].startswith(f"s3://{bucket}/gitxp/sha256/{file['sha256'][:2]}/")
    key = f"{bucket}/gitxp/sha256/{file['sha256'][:2]}/{file['sha256'][2:]}"
    s3 = _s3(s3_endpoint)
    assert s3.get_file_info(key).type == pafs.FileType.NotFound  # nothing leaves before a push

    pushed = runner.invoke(cli, ["push", "--artifacts"])
    assert pushed.exit_code == 0, pushed.output
    assert s3.get_file_info(key).size == len(model)
    assert len(run_refs(bare)) == 1

    # another machine: same project settings, nothing local
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(bare), str(other))
    git(other, "config", "gitxp.artifactStore", store)
    got = sharing.pull(other, artifacts=True)
    assert [r.status for r in got] == ["new"]
    with gitxp.open(other) as r:
        local = Path(artifacts.local_path(r.git, file["sha256"]))
        assert local.read_bytes() == model
        written = r.run(run_id).download_artifacts(to=tmp_path / "out")
    assert Path(written[0]).read_bytes() == model

    # a third machine downloads on demand with `artifacts get`, no pull --artifacts needed
    third = tmp_path / "third"
    git(tmp_path, "clone", "-q", str(bare), str(third))
    git(third, "config", "gitxp.artifactStore", store)
    sharing.fetch(third)
    result = runner.invoke(
        cli, ["artifacts", "get", "-C", str(third), run_id, "--to", str(tmp_path / "t")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t" / "model.bin").read_bytes() == model

    # pushing again uploads nothing new and moves nothing
    tip = git(repo, "rev-parse", f"refs/gitxp/runs/{run_id}").strip()
    with gitxp.open(repo) as r:
        assert artifacts.upload_artifacts(r, [tip]) == 0
    for path in (repo, other, third, bare):
        fsck(path)


def test_a_tampered_object_in_the_store_is_refused(
    repo: Path, tmp_path: Path, bucket: str, s3_endpoint: str
) -> None:
    store = _store_uri(bucket, s3_endpoint)
    git(repo, "config", "gitxp.artifactThreshold", "1k")
    git(repo, "config", "gitxp.artifactStore", store)
    (repo / "cache").mkdir()
    _big(repo / "cache" / "w.bin", 5000)
    with gitxp.start_run() as run:
        sha = run.log_artifact(repo / "cache" / "w.bin")["files"][0]["sha256"]
        run_id = run.id
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    sharing.push(repo, str(bare), artifacts=True)
    with _s3(s3_endpoint).open_output_stream(f"{bucket}/gitxp/{artifacts.object_key(sha)}") as f:
        f.write(b"x" * 5000)  # same size, other bytes
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    git(other, "config", "gitxp.artifactStore", store)
    sharing.fetch(other, str(bare))
    with gitxp.open(other) as r, pytest.raises(gitxp.ArtifactIntegrityError):
        r.run(run_id).download_artifacts(to=tmp_path / "out")
        assert not os.path.exists(artifacts.local_path(r.git, sha))
    assert not (tmp_path / "out" / "w.bin").exists()


def test_push_artifacts_without_a_shared_store_pushes_nothing(repo: Path, tmp_path: Path) -> None:
    git(repo, "config", "gitxp.artifactThreshold", "1k")
    (repo / "cache").mkdir()
    _big(repo / "cache" / "w.bin", 5000)
    with gitxp.start_run() as run:
        run.log_artifact(repo / "cache" / "w.bin")
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    with pytest.raises(gitxp.ArtifactError, match=r"gitxp\.artifactStore"):
        sharing.push(repo, str(bare), artifacts=True)
    assert run_refs(bare) == []  # no run points at an artifact nobody can download
    assert [r.status for r in sharing.push(repo, str(bare))] == ["new"]  # runs alone are fine


def test_a_shared_directory_works_as_a_store(repo: Path, tmp_path: Path) -> None:
    shared = tmp_path / "nfs" / "artifacts"
    git(repo, "config", "gitxp.artifactThreshold", "1k")
    git(repo, "config", "gitxp.artifactStore", shared.as_uri())
    (repo / "cache").mkdir()
    data = _big(repo / "cache" / "w.bin", 5000)
    with gitxp.start_run() as run:
        sha = run.log_artifact(repo / "cache" / "w.bin")["files"][0]["sha256"]
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    sharing.push(repo, str(bare), artifacts=True)
    assert (shared / "sha256" / sha[:2] / sha[2:]).read_bytes() == data
    assert not list(shared.rglob("*.tmp-*"))
