"""Downsampling keeps the shape of a curve: extremes, ends, order, and few points."""

from __future__ import annotations

import numpy as np
import pytest

from gitxp.present.downsample import downsample, lttb_indices, minmax_indices, select_range


def _noisy(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.arange(n, dtype=np.float64)
    y = np.exp(-x / (n / 5)) + 0.05 * rng.standard_normal(n)
    return x, y


@pytest.mark.parametrize("method", ["minmax", "lttb"])
def test_a_million_points_become_a_few_thousand_in_order_with_both_ends(method: str) -> None:
    x, y = _noisy(1_000_000)
    idx = downsample(x, y, 2000, method)
    assert 1000 <= len(idx) <= 2002
    assert idx[0] == 0 and idx[-1] == len(x) - 1
    assert np.all(np.diff(idx) > 0)  # strictly increasing: x order kept, no duplicates


def test_minmax_keeps_every_spike_and_dip_and_the_global_extremes() -> None:
    _x, y = _noisy(1_000_000)
    spikes = [12_345, 400_000, 777_777]
    y[spikes] = 50.0
    y[654_321] = -50.0
    idx = minmax_indices(y, 2000)
    assert set(spikes) <= set(idx.tolist())
    assert 654_321 in idx
    # the envelope of every bucket is exact: the drawn max/min equal the true ones
    assert y[idx].max() == y.max() and y[idx].min() == y.min()


def test_minmax_envelope_matches_per_bucket_extremes() -> None:
    _x, y = _noisy(10_007, seed=3)
    idx = minmax_indices(y, 200)
    size = -(-len(y) // 100)
    for b in range(0, len(y), size):
        chunk = y[b : b + size]
        kept = y[idx[(idx >= b) & (idx < b + size)]]
        assert kept.max() == chunk.max() and kept.min() == chunk.min()


def test_lttb_follows_the_curve() -> None:
    x = np.linspace(0, 4 * np.pi, 100_000)
    y = np.sin(x)
    idx = lttb_indices(x, y, 500)
    assert len(idx) <= 500
    # the peaks of the sine survive within a bucket's width
    assert y[idx].max() > 0.999 and y[idx].min() < -0.999
    # linear interpolation of the kept points stays close to the true curve
    assert np.max(np.abs(np.interp(x, x[idx], y[idx]) - y)) < 0.01


@pytest.mark.parametrize("method", ["minmax", "lttb"])
def test_short_series_are_returned_whole(method: str) -> None:
    x, y = _noisy(50)
    assert downsample(x, y, 2000, method).tolist() == list(range(50))
    assert downsample(x[:0], y[:0], 2000, method).tolist() == []


def test_unknown_method_is_refused() -> None:
    x, y = _noisy(10)
    with pytest.raises(ValueError, match="minmax"):
        downsample(x, y, 5, "median")


def test_select_range_includes_one_neighbour_each_side() -> None:
    x = np.arange(100, dtype=np.float64) * 10
    idx = select_range(x, 205, 395)
    assert idx[0] == 20 and idx[-1] == 40  # 210..390 plus 200 and 400
    assert select_range(x, None, None).tolist() == list(range(100))
    assert select_range(x, 5000, 6000).tolist() == []
