"""`Repo.dataset()`: every run's metric parts as a pyarrow dataset DuckDB queries in place."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.dataset as ds
import pytest

import gitxp
from gitxp.errors import CorruptRunError
from tests.faults.hostile import make_project, replace_file
from tests.gitutil import GIT_ENV


def _record(path: Path, name: str, steps: int, experiment: str = "exp") -> str:
    with gitxp.start_run(experiment=experiment, name=name, repo=str(path)) as run:
        run.log_metric_array("loss", np.linspace(1, 0, steps))
        run.log_metric_array("acc", np.linspace(0, 1, steps))
    return run.id


def _files(path: Path) -> dict[str, set[str]]:
    """The cache's files, by run directory."""
    root = path / ".git" / "gitxp" / "metrics-v1"
    return {d.name: {f.name for f in d.iterdir()} for d in root.iterdir() if d.is_dir()}


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = make_project(tmp_path / "project")
    ids = {
        "a": _record(path, "a", 5, "iris"),
        "b": _record(path, "b", 3, "iris"),
        "c": _record(path, "c", 4, "mnist"),
    }
    return path, ids


def test_duckdb_queries_the_dataset_in_place(project: tuple[Path, dict[str, str]]) -> None:
    path, ids = project
    repo = gitxp.open(path)
    dataset = repo.dataset()
    assert isinstance(dataset, ds.Dataset)
    assert dataset.schema.names == ["key", "step", "timestamp", "value", "run_id"]
    # through the dataset object, and through the files themselves
    con = duckdb.connect()
    con.register("points", dataset)
    by_object = con.sql(
        "select run_id, count(*) as n, max(value) as top from points "
        "where key = 'loss' group by run_id order by run_id"
    ).fetchall()
    root = path / ".git" / "gitxp" / "metrics-v1"
    by_files = duckdb.sql(
        f"select run_id, count(*) as n, max(value) as top from "
        f"read_parquet('{root}/*/*.parquet', hive_partitioning = true) "
        "where key = 'loss' group by run_id order by run_id"
    ).fetchall()
    expected = sorted((ids[n], steps, 1.0) for n, steps in (("a", 5), ("b", 3), ("c", 4)))
    assert by_object == expected
    assert by_files == expected
    # the same points as Repo.metrics()
    table = dataset.to_table().to_pandas().sort_values(["run_id", "key", "step"])
    frame = repo.metrics().astype({"run_id": str, "key": str})
    frame = frame.sort_values(["run_id", "key", "step"])
    assert table["value"].tolist() == frame["value"].tolist()
    assert table["run_id"].tolist() == frame["run_id"].tolist()


def test_each_file_is_the_part_blob_named_by_its_id(project: tuple[Path, dict[str, str]]) -> None:
    path, ids = project
    gitxp.open(path).dataset()
    files = _files(path)
    assert set(files) == {f"run_id={i}" for i in ids.values()}
    for run_id in ids.values():
        (name,) = files[f"run_id={run_id}"]
        blob = subprocess.run(
            ["git", "rev-parse", f"refs/gitxp/runs/{run_id}:metrics/part-000001.parquet"],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **GIT_ENV},
        ).stdout.strip()
        assert name == f"{blob}.parquet"
        stored = (path / ".git" / "gitxp" / "metrics-v1" / f"run_id={run_id}" / name).read_bytes()
        shown = subprocess.run(
            ["git", "cat-file", "blob", blob], cwd=path, capture_output=True, check=True
        ).stdout
        assert stored == shown


def test_a_refresh_adds_new_parts_drops_replaced_ones_and_removed_runs(
    project: tuple[Path, dict[str, str]],
) -> None:
    path, ids = project
    repo = gitxp.open(path)
    repo.dataset()
    before = _files(path)
    d = _record(path, "d", 2)
    gitxp.rm(ids["b"], repo=str(path))
    replace_file(path, ids["c"], "metrics/part-000001.parquet", before_part(path, ids["a"]))
    dataset = gitxp.open(path).dataset()
    after = _files(path)
    assert set(after) == {f"run_id={i}" for i in (ids["a"], ids["c"], d)}
    assert after[f"run_id={ids['a']}"] == before[f"run_id={ids['a']}"]  # kept, not rewritten
    assert after[f"run_id={ids['c']}"] == before[f"run_id={ids['a']}"]  # c now holds a's part
    con = duckdb.connect()
    con.register("points", dataset)
    counts = dict(con.sql("select run_id, count(*) from points group by run_id").fetchall())
    assert counts == {ids["a"]: 10, ids["c"]: 10, d: 4}


def before_part(path: Path, run_id: str) -> bytes:
    return subprocess.run(
        ["git", "show", f"refs/gitxp/runs/{run_id}:metrics/part-000001.parquet"],
        cwd=path,
        capture_output=True,
        check=True,
    ).stdout


def test_a_selection_gives_only_those_runs_and_keeps_the_others_cached(
    project: tuple[Path, dict[str, str]],
) -> None:
    path, ids = project
    repo = gitxp.open(path)
    repo.dataset()
    iris = repo.dataset(experiment="iris")
    assert set(iris.to_table(columns=["run_id"]).column("run_id").to_pylist()) == {
        ids["a"],
        ids["b"],
    }
    one = repo.dataset(runs="c")
    assert set(one.to_table().column("run_id").to_pylist()) == {ids["c"]}
    assert len(_files(path)) == 3


def test_a_broken_part_never_enters_the_cache(project: tuple[Path, dict[str, str]]) -> None:
    path, ids = project
    replace_file(path, ids["b"], "metrics/part-000001.parquet", b"PAR1 not parquet")
    repo = gitxp.open(path)
    with pytest.raises(CorruptRunError, match=ids["b"]):
        repo.dataset()
    assert f"run_id={ids['b']}" not in _files(path)
    dataset = repo.dataset(filter=f"attributes.run_id != '{ids['b']}'")
    assert dataset.count_rows() == 2 * (5 + 4)
