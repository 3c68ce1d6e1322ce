"""`gitxp import mlflow`: stores written by MLflow itself come over with nothing lost."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gitxp
from gitxp.integrations.mlflow_import import import_mlflow, typed_param
from tests.gitutil import fsck, run_refs

pytest.importorskip("mlflow")

# Written by MLflow in a child process, so MLflow's global state never meets the tests'.
WRITER = textwrap.dedent(
    """
    import math, os, sys
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("iris")
    with mlflow.start_run(run_name="parent", description="a sweep") as parent:
        mlflow.log_params({"lr": 0.01, "layers": 3, "opt": "adam", "conf/path": "a/b", "sci": "1e-3"})
        for i in range(5):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i, timestamp=1_700_000_000_000 + i)
        mlflow.log_metric("weird", math.nan, step=0)
        mlflow.log_metric("weird", math.inf, step=1)
        mlflow.set_tags({"team": "vision", "mlflow.source.git.commit": "0" * 40})
        mlflow.log_text("hello artifacts", "notes/readme.txt")
        for j in range(2):
            with mlflow.start_run(run_name=f"child-{j}", nested=True):
                mlflow.log_param("j", j)
                mlflow.log_metric("acc", 0.5 + j / 10)
    try:
        with mlflow.start_run(run_name="broken"):
            mlflow.log_metric("loss", 9.0)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with mlflow.start_run(run_name="deleted") as gone:
        pass
    MlflowClient().delete_run(gone.info.run_id)
    mlflow.set_experiment("other")
    with mlflow.start_run(run_name="lonely"):
        mlflow.log_metric("m", 1.0)
    """
)


def _write_store(uri: str, cwd: Path) -> None:
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "GIT_PYTHON_REFRESH": "quiet"}
    result = subprocess.run(
        [sys.executable, "-c", WRITER, uri], cwd=cwd, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An MLflow file store (mlruns/) and an MLflow sqlite store, both written by MLflow."""
    base = tmp_path_factory.mktemp("mlflow-stores")
    files = base / "mlruns"
    _write_store(f"file://{files}", base)
    _write_store(f"sqlite:///{base / 'mlflow.db'}", base)
    return {"files": str(files), "sqlite": f"sqlite:///{base / 'mlflow.db'}"}


def _mlflow_view(uri: str) -> dict[str, dict]:
    """What MLflow's own client reads from the store, keyed by run name."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=uri)
    out = {}
    for exp in client.search_experiments(view_type=ViewType.ACTIVE_ONLY):
        for run in client.search_runs([exp.experiment_id]):
            histories = {
                key: [
                    (m.step, m.timestamp, m.value)
                    for m in client.get_metric_history(run.info.run_id, key)
                ]
                for key in run.data.metrics
            }
            out[run.info.run_name] = {
                "run": run,
                "experiment": exp.name,
                "histories": histories,
            }
    return out


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _check_nothing_lost(repo: Path, uri: str) -> None:
    view = _mlflow_view(uri)
    handle = gitxp.open(repo)
    rows = {r["name"]: r for r in handle.rows()}
    assert set(rows) == set(view) == {"parent", "child-0", "child-1", "broken", "lonely"}
    for name, src in view.items():
        run = src["run"]
        record = handle.run(rows[name]["id"])
        assert record.source == f"mlflow:{run.info.run_id}"
        assert record.experiment == src["experiment"]
        assert record.status == run.info.status
        assert record.start_time == run.info.start_time
        assert record.end_time == run.info.end_time
        assert {k: str(v) for k, v in record.params.items()} == run.data.params
        reserved = {"mlflow.runName", "mlflow.note.content", "mlflow.parentRunId", "mlflow.user"}
        assert record.tags == {k: v for k, v in run.data.tags.items() if k not in reserved}
        assert record.notes == run.data.tags.get("mlflow.note.content", "")
        for key, points in src["histories"].items():
            hist = record.metric_history(key)
            got = list(zip(hist["step"], hist["timestamp"], hist["value"], strict=True))
            assert len(got) == len(points)
            for (s1, t1, v1), (s2, t2, v2) in zip(sorted(got), sorted(points), strict=True):
                assert (s1, t1) == (s2, t2) and _same(v1, v2)
        parent_src = run.data.tags.get("mlflow.parentRunId")
        if parent_src:
            assert record.parent == rows["parent"]["id"]
            assert handle.run(record.parent).source == f"mlflow:{parent_src}"
    assert handle.run("parent").params["lr"] == 0.01  # numbers come back as numbers
    assert handle.run("parent").params["sci"] == "1e-3"  # unless that would change the text
    assert handle.run("broken").status == "FAILED"
    # artifacts come along, byte for byte
    parent = handle.run("parent")
    assert [a["path"] for a in parent.artifacts()] == ["notes/readme.txt"]
    out = repo.parent / f"artifacts-{parent.id}"
    parent.download_artifacts(None, out)
    assert (out / "notes" / "readme.txt").read_text() == "hello artifacts"
    assert handle.run("lonely").artifacts() == []
    fsck(repo)


def test_file_store_imported_directly_with_nothing_lost(repo: Path, stores: dict[str, str]) -> None:
    result = import_mlflow(stores["files"], repo=repo, reader="files")
    assert len(result.imported) == 5 and result.skipped == []
    _check_nothing_lost(repo, stores["files"])


def test_sqlite_store_imported_through_mlflow_client(repo: Path, stores: dict[str, str]) -> None:
    result = import_mlflow(stores["sqlite"], repo=repo)
    assert len(result.imported) == 5
    _check_nothing_lost(repo, stores["sqlite"])


def test_import_twice_adds_nothing_and_experiment_filter(
    repo: Path, stores: dict[str, str]
) -> None:
    first = import_mlflow(stores["files"], experiment="other", repo=repo)
    assert [gitxp.open(repo).run(i).name for _, i in first.imported] == ["lonely"]
    again = import_mlflow(stores["files"], repo=repo)
    assert len(again.imported) == 4 and len(again.skipped) == 1
    third = import_mlflow(stores["files"], repo=repo)
    assert third.imported == [] and len(third.skipped) == 5
    assert len(run_refs(repo)) == 5


def test_file_store_read_without_mlflow_or_yaml(repo: Path, stores: dict[str, str]) -> None:
    # a fresh interpreter in which neither mlflow nor yaml can be imported
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["mlflow"] = None
        sys.modules["yaml"] = None
        from gitxp.integrations.mlflow_import import import_mlflow
        r = import_mlflow({stores["files"]!r}, repo={str(repo)!r})
        print(len(r.imported))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "5"
    _check_nothing_lost(repo, stores["files"])


def test_cli_import_json_and_errors(repo: Path, stores: dict[str, str], runner) -> None:
    from gitxp.cli.main import cli

    result = runner.invoke(cli, ["import", "mlflow", "-u", stores["files"], "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["imported"]) == 5 and data["skipped"] == []
    result = runner.invoke(cli, ["import", "mlflow", "-u", stores["files"], "--into", "x"])
    assert "0 runs imported, 5 already present" in result.output

    missing = runner.invoke(cli, ["import", "mlflow", "-u", str(repo / "nope")])
    assert missing.exit_code == 1 and missing.output.startswith("error: ")
    not_store = runner.invoke(cli, ["import", "mlflow", "-u", str(repo)])
    assert not_store.exit_code == 1 and "not an MLflow file store" in not_store.output


def test_typed_param_keeps_the_text() -> None:
    assert typed_param("3") == 3
    assert typed_param("0.01") == 0.01
    assert typed_param("1e-3") == "1e-3"
    assert typed_param("007") == "007"
    assert typed_param("True") == "True"
    assert typed_param("1.50") == "1.50"


def test_run_hangs_off_the_commit_mlflow_recorded(repo: Path) -> None:
    from gitxp.integrations.mlflow_import import SourceRun, write_runs
    from tests.gitutil import git

    head = git(repo, "rev-parse", "HEAD").strip()
    (repo / "new.txt").write_text("later work\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "later")
    sources = [
        SourceRun(
            "a",
            "exp",
            "old-code",
            "FINISHED",
            1000,
            2000,
            "ada",
            tags={"mlflow.source.git.commit": head},
        ),
        SourceRun(
            "b",
            "exp",
            "unknown-code",
            "RUNNING",
            3000,
            None,
            "ada",
            tags={"mlflow.source.git.commit": "f" * 40},
        ),
    ]
    result = write_runs(sources, repo, "mlflow:", "mlflow", None, None)
    assert len(result.imported) == 2
    old = gitxp.open(repo).run("old-code")
    assert old.code_commit == head
    # the first-parent chain of the run ref ends at that commit
    chain = git(repo, "rev-list", "--first-parent", f"refs/gitxp/runs/{old.id}").split()
    # an imported run is one commit (it ends at once), then the code commit (the root here)
    assert chain[1:] == [head]
    unknown = gitxp.open(repo).run("unknown-code")
    assert unknown.code_commit == git(repo, "rev-parse", "HEAD").strip()
    assert unknown.status == "FAILED" and unknown.tags["gitxp.source_status"] == "RUNNING"
    assert (old.start_time, old.end_time) == (1000, 2000)
    fsck(repo)
