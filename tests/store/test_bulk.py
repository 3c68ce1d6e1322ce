"""`Repo.metrics()`: many runs' points in one long DataFrame, read in bulk."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gitxp
from gitxp.errors import CorruptRunError, InvalidValueError, RunNotFoundError
from gitxp.format.metrics import encode_points
from gitxp.store import bulk
from tests.faults.hostile import make_project, parquet_bomb, replace_file

COLUMNS = ["run_id", "key", "step", "timestamp", "value"]


def _points(key: str, steps: list[int], values: list[float]) -> bytes:
    """A metric part of one key, as gitxp writes parts."""
    from array import array

    return encode_points(
        [
            (
                key,
                array("q", steps),
                array("q", [1_700_000_000_000 + s for s in steps]),
                array("d", values),
            )
        ]
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Runs of two experiments: varied keys and lengths, NaN and infinities, one run with
    a second part whose steps come before the first's, and one run without metrics."""
    path = make_project(tmp_path_factory.mktemp("bulk") / "project")
    ids = {}
    with gitxp.start_run(experiment="iris", name="alpha", params={"lr": 0.1}, repo=str(path)) as r:
        for step in range(10):
            r.log_metrics({"loss": 1 / (step + 1), "acc": step / 10}, step=step)
    ids["alpha"] = r.id
    with gitxp.start_run(experiment="iris", name="beta", params={"lr": 0.01}, repo=str(path)) as r:
        for step, value in enumerate([0.5, math.nan, math.inf, -math.inf, 0.25]):
            r.log_metric("loss", value, step=step)
    ids["beta"] = r.id
    with gitxp.start_run(experiment="mnist", name="gamma", repo=str(path)) as r:
        r.log_metric_array("loss", np.linspace(2, 1, 6), steps=np.arange(10, 16))
        r.log_metric("val/loss", 3.0, step=10)
    ids["gamma"] = r.id
    # a second part holding earlier steps, as a checkpointed run can have
    replace_file(path, ids["gamma"], "metrics/part-000002.parquet", _points("loss", [0, 1], [9, 8]))
    with gitxp.start_run(experiment="mnist", name="empty", repo=str(path)) as r:
        r.set_tag("nothing", "logged")
    ids["empty"] = r.id
    return path, ids


def _expected(repo: gitxp.Repo, run_id: str) -> pd.DataFrame:
    """One run's points as `RunRecord.metrics()` gives them, ordered by key then step."""
    frame = repo.run(run_id).metrics()
    return frame.sort_values(["key", "step"], kind="stable").reset_index(drop=True)


def test_every_point_of_every_run_with_the_columns_and_dtypes_promised(
    project: tuple[Path, dict[str, str]],
) -> None:
    path, ids = project
    repo = gitxp.open(path)
    frame = repo.metrics()
    assert list(frame.columns) == COLUMNS
    assert isinstance(frame["run_id"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["key"].dtype, pd.CategoricalDtype)
    assert [str(frame[c].dtype) for c in COLUMNS[2:]] == ["int64", "int64", "float64"]
    # newest run first, as Repo.runs() lists them; a run without points has no rows
    assert list(frame["run_id"].unique()) == [ids["gamma"], ids["beta"], ids["alpha"]]
    for name in ("alpha", "beta", "gamma"):
        mine = frame[frame["run_id"] == ids[name]].drop(columns="run_id").reset_index(drop=True)
        mine["key"] = mine["key"].astype(str)
        expected = _expected(repo, ids[name])
        expected["key"] = expected["key"].astype(str)
        pd.testing.assert_frame_equal(mine, expected, check_dtype=False)
    gamma = frame[(frame["run_id"] == ids["gamma"]) & (frame["key"] == "loss")]
    assert gamma["step"].tolist() == [0, 1, 10, 11, 12, 13, 14, 15]  # parts merged in order
    beta = frame[frame["run_id"] == ids["beta"]]["value"].tolist()
    assert beta[0] == 0.5 and math.isnan(beta[1]) and beta[2:4] == [math.inf, -math.inf]


def test_keys_runs_filter_and_experiment_select_what_is_read(
    project: tuple[Path, dict[str, str]],
) -> None:
    path, ids = project
    repo = gitxp.open(path)
    loss = repo.metrics(keys="loss")
    assert set(loss["key"].astype(str)) == {"loss"}
    assert len(loss) == 10 + 5 + 8
    both = repo.metrics(keys=["acc", "val/loss"])
    assert sorted(set(both["key"].astype(str))) == ["acc", "val/loss"]
    # by name, id prefix and full id, in the order given, each run once
    named = repo.metrics(runs=["beta", ids["alpha"][:12], ids["beta"]], keys="loss")
    assert list(named["run_id"].unique()) == [ids["beta"], ids["alpha"]]
    assert list(repo.metrics(runs="gamma")["run_id"].unique()) == [ids["gamma"]]
    iris = repo.metrics(experiment="iris")
    assert set(iris["run_id"].astype(str)) == {ids["alpha"], ids["beta"]}
    fast = repo.metrics(filter="params.lr > 0.05")
    assert set(fast["run_id"].astype(str)) == {ids["alpha"]}
    # runs= narrowed by experiment
    narrowed = repo.metrics(runs=["alpha", "gamma"], experiment="mnist")
    assert set(narrowed["run_id"].astype(str)) == {ids["gamma"]}


@pytest.mark.parametrize(
    "kwargs",
    [{"keys": "nope"}, {"runs": "empty"}, {"experiment": "nowhere"}, {"filter": "params.lr > 9"}],
)
def test_no_matching_point_gives_an_empty_frame_of_the_same_shape(
    project: tuple[Path, dict[str, str]], kwargs: dict[str, str]
) -> None:
    path, _ = project
    empty = gitxp.open(path).metrics(**kwargs)  # type: ignore[arg-type]
    full = gitxp.open(path).metrics()
    assert len(empty) == 0
    assert list(empty.columns) == COLUMNS
    assert [type(d) for d in empty.dtypes] == [type(d) for d in full.dtypes]
    assert [str(d) for d in empty.dtypes[2:]] == ["int64", "int64", "float64"]


def test_bad_selections_raise_one_line_errors(project: tuple[Path, dict[str, str]]) -> None:
    path, _ = project
    repo = gitxp.open(path)
    with pytest.raises(RunNotFoundError, match="no run matches 'nobody'"):
        repo.metrics(runs=["alpha", "nobody"])
    with pytest.raises(InvalidValueError, match="metric key"):
        repo.metrics(keys=["loss", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidValueError, match="metric key"):
        repo.metrics(keys=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="run"):
        repo.metrics(runs=[""])
    with pytest.raises(gitxp.FilterSyntaxError):
        repo.metrics(filter="params.lr >")


def test_the_parts_cache_maps_each_tip_to_its_parts_and_a_damaged_one_is_rebuilt(
    project: tuple[Path, dict[str, str]],
) -> None:
    path, ids = project
    repo = gitxp.open(path)
    first = repo.metrics()
    cache = path / ".git" / "gitxp" / bulk.PARTS_FILE
    data = json.loads(cache.read_text())
    tips = {r["id"]: r["commit"] for r in repo.rows()}
    assert set(data["commits"]) == set(tips.values())
    assert [n for n, _ in data["commits"][tips[ids["gamma"]]]] == [
        "metrics/part-000001.parquet",
        "metrics/part-000002.parquet",
    ]
    assert data["commits"][tips[ids["empty"]]] == []
    cache.write_text('{"version": 1, "commits": {"')  # damaged: ignored, then rewritten
    pd.testing.assert_frame_equal(gitxp.open(path).metrics(), first)
    assert set(json.loads(cache.read_text())["commits"]) == set(tips.values())


def test_many_runs_decoded_on_worker_threads_give_the_same_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_project(tmp_path / "many")
    for i in range(12):
        with gitxp.start_run(name=f"r{i}", repo=str(path)) as run:
            run.log_metric_array("loss", np.arange(i + 1, dtype=float))
    repo = gitxp.open(path)
    monkeypatch.setattr(bulk, "_THREADED_FROM", 10_000)
    serial = repo.metrics()
    monkeypatch.setattr(bulk, "_THREADED_FROM", 2)
    threaded = repo.metrics()
    pd.testing.assert_frame_equal(serial, threaded)
    assert len(threaded) == sum(range(1, 13))


def test_a_run_with_a_broken_part_is_named_and_can_be_left_out(tmp_path: Path) -> None:
    path = make_project(tmp_path / "broken")
    good = gitxp.start_run(name="good", repo=str(path))
    with good:
        good.log_metric("acc", 0.5)
    with gitxp.start_run(name="bad", repo=str(path)) as bad:
        bad.log_metric("acc", 0.1)
    replace_file(path, bad.id, "metrics/part-000001.parquet", b"PAR1 not parquet at all")
    repo = gitxp.open(path)
    with pytest.raises(CorruptRunError, match=bad.id) as caught:
        repo.metrics()
    assert "part-000001.parquet" in str(caught.value)
    assert f"attributes.run_id != '{bad.id}'" in str(caught.value)
    frame = repo.metrics(filter=f"attributes.run_id != '{bad.id}'")
    assert frame["run_id"].astype(str).tolist() == [good.id]


def test_a_parquet_bomb_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    path = make_project(tmp_path / "bomb")
    with gitxp.start_run(name="bomb", repo=str(path)) as run:
        run.log_metric("acc", 0.1)
    replace_file(path, run.id, "metrics/part-000001.parquet", parquet_bomb())
    with pytest.raises(CorruptRunError, match="GITXP_MAX_DECODE_BYTES"):
        gitxp.open(path).metrics()
