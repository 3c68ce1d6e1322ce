"""`gitxp export parquet`: a Hive-partitioned dataset that pyarrow.dataset and DuckDB read."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.dataset as ds
import pytest

import gitxp
from gitxp.integrations.export import export_parquet


def _record_runs(repo: Path) -> dict[str, str]:
    ids = {}
    with gitxp.start_run(experiment="iris", name="a", params={"C": 1, "kernel": "rbf"}) as run:
        run.log_metric_array("loss", [0.5, 0.25, math.nan], steps=[0, 1, 2])
        run.log_metric("acc", 0.9, step=2, timestamp=1_700_000_000_123)
        ids["a"] = run.id
    with gitxp.start_run(
        experiment="iris", name="b", params={"C": "auto", "layers": [1, 2]}
    ) as run:
        run.log_metric("acc", 0.8)
        ids["b"] = run.id
    with gitxp.start_run(experiment="odd/name=x", name="c", tags={"t": "1"}) as run:
        run.log_metric("loss", math.inf)
        ids["c"] = run.id
    return ids


def test_dataset_read_back_with_pyarrow_dataset(repo: Path, tmp_path: Path) -> None:
    ids = _record_runs(repo)
    out = tmp_path / "out"
    result = export_parquet(out, repo)
    assert sorted(result.written) == sorted(ids.values()) and result.points == 6

    table = ds.dataset(out / "metrics", format="parquet", partitioning="hive").to_table()
    frame = table.to_pandas()
    assert set(frame.columns) == {"key", "step", "timestamp", "value", "experiment", "run"}
    assert set(frame["experiment"]) == {"iris", "odd/name=x"}  # partition values URI-decoded
    a = frame[(frame["run"] == ids["a"]) & (frame["key"] == "loss")].sort_values("step")
    assert a["step"].tolist() == [0, 1, 2]
    assert a["value"].tolist()[:2] == [0.5, 0.25] and math.isnan(a["value"].tolist()[2])
    acc = frame[(frame["run"] == ids["a"]) & (frame["key"] == "acc")]
    assert acc["timestamp"].tolist() == [1_700_000_000_123]
    c = frame[frame["run"] == ids["c"]]
    assert c["value"].tolist() == [math.inf]

    runs = ds.dataset(out / "runs.parquet").to_table().to_pandas()
    assert sorted(runs["id"]) == sorted(ids.values())
    by_name = runs.set_index("name")
    assert by_name.loc["a", "metrics.acc"] == 0.9
    # a param with an int in one run and text in another is one text column
    assert sorted(by_name["params.C"].dropna()) == ["1", "auto"]
    assert by_name.loc["b", "params.layers"] == "[1, 2]"
    assert by_name.loc["c", "tags.t"] == "1"
    assert str(runs["start_time"].dtype).startswith("datetime64")


def test_duckdb_queries_the_dataset(repo: Path, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    ids = _record_runs(repo)
    out = tmp_path / "out"
    export_parquet(out, repo)
    rows = duckdb.sql(
        f"""
        select m.run, r.name, max(m.value) as best
        from read_parquet('{out}/metrics/**/*.parquet', hive_partitioning = true) m
        join '{out}/runs.parquet' r on r.id = m.run
        where m.key = 'acc' and m.experiment = 'iris'
        group by all order by best desc
        """
    ).fetchall()
    assert rows == [(ids["a"], "a", 0.9), (ids["b"], "b", 0.8)]


def test_export_again_rewrites_only_changed_runs_and_mirrors_the_selection(
    repo: Path, tmp_path: Path
) -> None:
    ids = _record_runs(repo)
    out = tmp_path / "out"
    export_parquet(out, repo)
    again = export_parquet(out, repo)
    assert again.written == [] and len(again.unchanged) == 3
    with gitxp.start_run(experiment="iris", name="d") as run:
        run.log_metric("acc", 0.95)
    third = export_parquet(out, repo)
    assert third.written == [run.id] and third.points == 1
    only_iris = export_parquet(out, repo, experiment="iris")
    assert only_iris.written == []
    partitions = {p.name for p in (out / "metrics").glob("experiment=*/run=*")}
    assert f"run={ids['c']}" not in partitions and len(partitions) == 3


def test_csv_layout_and_cli(repo: Path, tmp_path: Path, runner) -> None:
    from gitxp.cli.main import cli

    ids = _record_runs(repo)
    out = tmp_path / "csv"
    result = runner.invoke(cli, ["export", "parquet", str(out), "--format", "csv", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["written"]) == 3
    table = ds.dataset(out / "metrics", format="csv", partitioning="hive").to_table()
    assert table.num_rows == 6
    assert (out / "runs.csv").read_text().splitlines()[0].startswith("id,name,experiment,status")
    part = out / "metrics" / "experiment=iris" / f"run={ids['a']}" / "part-0.csv"
    assert part.read_text().splitlines()[0] == "key,step,timestamp,value"

    result = runner.invoke(
        cli, ["export", "parquet", str(tmp_path / "f"), "--filter", "metrics.acc >"]
    )
    assert result.exit_code == 1 and result.output.startswith("error: invalid filter")
