"""Metric parts read back exactly, whichever route the reader takes and whoever wrote them."""

from __future__ import annotations

import io
from array import array
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gitxp.format import metrics
from gitxp.git.repository import read_file


def _parts() -> list[bytes]:
    """Two gitxp parts; the second holds an earlier step of "loss" than the first."""
    first = metrics.encode_points(
        [
            ("loss", array("q", [1, 2, 3]), array("q", [10, 20, 30]), array("d", [0.9, 0.5, 0.25])),
            ("acc", array("q", [1, 2]), array("q", [11, 21]), array("d", [0.1, 0.2])),
        ]
    )
    second = metrics.encode_points(
        [("loss", array("q", [0]), array("q", [5]), array("d", [float("nan")]))]
    )
    return [first, second]


def _expected() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": np.array([0, 1, 2, 3], np.int64),
            "timestamp": np.array([5, 10, 20, 30], np.int64),
            "value": np.array([float("nan"), 0.9, 0.5, 0.25]),
        }
    )


def test_history_is_ordered_by_step_across_parts() -> None:
    pd.testing.assert_frame_equal(metrics.read_history(_parts(), "loss"), _expected())


def test_history_through_the_public_pyarrow_route_is_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "_parquet_reader", lambda: None)
    pd.testing.assert_frame_equal(metrics.read_history(_parts(), "loss"), _expected())


@pytest.mark.parametrize("route", ["from_arrays", "public"])
def test_history_frame_is_the_same_whichever_pandas_route_builds_it(
    monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    if route == "public":
        monkeypatch.setattr(pd.DataFrame, "_from_arrays", None, raising=False)
    frame = metrics.read_history(_parts(), "loss")
    pd.testing.assert_frame_equal(frame, _expected())
    one = metrics.read_history(_parts()[:1], "loss")
    pd.testing.assert_frame_equal(one, _expected().iloc[1:].reset_index(drop=True))
    for each in (frame, one):  # the frame owns its memory: writing to it is fine
        each.loc[1, "value"] = 7.0
        each.loc[1, "step"] = 70
        assert each["value"].to_numpy()[1] == 7.0 and each["step"].to_numpy()[1] == 70
    pd.testing.assert_frame_equal(metrics.read_history(_parts(), "loss"), _expected())


def test_history_frames_do_not_share_their_column_index() -> None:
    one = metrics.read_history(_parts(), "loss")
    two = metrics.read_history(_parts(), "loss")
    one.columns.name = "renamed"
    assert two.columns.name is None
    assert list(two.columns) == ["step", "timestamp", "value"]
    assert list(two.dtypes) == [np.dtype("int64"), np.dtype("int64"), np.dtype("float64")]


def test_a_missing_key_gives_an_empty_frame_with_the_format_types() -> None:
    frame = metrics.read_history(_parts(), "nope")
    assert len(frame) == 0
    assert list(frame.columns) == ["step", "timestamp", "value"]
    assert list(frame.dtypes) == [np.dtype("int64"), np.dtype("int64"), np.dtype("float64")]


def test_a_part_another_writer_made_is_read_by_column_name() -> None:
    # columns in another order, plain strings for keys, default compression
    table = pa.table(
        {
            "value": pa.array([0.5, 7.0, 0.25], pa.float64()),
            "key": pa.array(["loss", "other", "loss"]),
            "timestamp": pa.array([20, 25, 30], pa.int64()),
            "step": pa.array([2, 9, 3], pa.int64()),
            "extra": pa.array(["a", "b", "c"]),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    frame = metrics.read_history([sink.getvalue()], "loss")
    assert frame["step"].tolist() == [2, 3]
    assert frame["timestamp"].tolist() == [20, 30]
    assert frame["value"].tolist() == [0.5, 0.25]


def test_read_file_reads_empty_small_large_and_limited_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert read_file(str(empty)) == b""
    big = tmp_path / "big"
    data = bytes(range(256)) * 4099  # more than the first 64 KiB read
    big.write_bytes(data)
    assert read_file(str(big)) == data
    assert read_file(str(big), 10) == data[:10]
    with pytest.raises(FileNotFoundError):
        read_file(str(tmp_path / "absent"))


def test_gitxp_parts_leave_compression_to_git() -> None:
    # git deflates every object; a compressed column would be compressed twice
    meta = pq.ParquetFile(io.BytesIO(_parts()[0])).metadata
    chunks = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
    assert [c.path_in_schema for c in chunks] == list(metrics.COLUMNS)
    assert {c.compression for c in chunks} == {"UNCOMPRESSED"}


def test_parts_with_zstd_values_from_earlier_builds_read_and_merge_the_same() -> None:
    old = []
    for part in _parts():
        sink = io.BytesIO()
        pq.write_table(
            pq.read_table(io.BytesIO(part)),
            sink,
            compression={"key": "none", "step": "none", "timestamp": "none", "value": "zstd"},
            use_dictionary=["key"],
            column_encoding={
                "step": "DELTA_BINARY_PACKED",
                "timestamp": "DELTA_BINARY_PACKED",
                "value": "BYTE_STREAM_SPLIT",
            },
        )
        old.append(sink.getvalue())
    assert pq.ParquetFile(io.BytesIO(old[0])).metadata.row_group(0).column(3).compression == "ZSTD"
    pd.testing.assert_frame_equal(metrics.read_history(old, "loss"), _expected())
    merged = metrics.merge_parts(old)
    pd.testing.assert_frame_equal(metrics.read_history([merged], "loss"), _expected())
    assert {
        merged_meta.compression
        for merged_meta in (
            pq.ParquetFile(io.BytesIO(merged)).metadata.row_group(0).column(i) for i in range(4)
        )
    } == {"UNCOMPRESSED"}
