"""Shrinking a long metric series to a few thousand points that keep its shape.

Two methods, both vectorised with numpy:

- ``minmax`` (default): split the points into equal-count buckets and keep,
  in each, the lowest and the highest point in their original order. Every
  spike and dip of the full series survives, so the drawn envelope is exact;
  a 1,000,000-point series becomes at most ``2 * buckets`` points in a few
  milliseconds.
- ``lttb``: Largest-Triangle-Three-Buckets (Steinarsson, 2013), one point per
  bucket chosen to preserve the visual area of the curve; smoother-looking
  for dense, noisy lines.

The first and last points are always kept. Callers drop or mark non-finite
values before calling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

METHODS = ("minmax", "lttb")
DEFAULT_POINTS = 2000


def select_range(
    x: npt.NDArray[np.float64], lo: float | None, hi: float | None
) -> npt.NDArray[np.intp]:
    """Indices of the points with lo <= x <= hi, plus one neighbour each side.

    The neighbours let a zoomed chart draw its line to the edges of the view.
    """
    import numpy as np

    n = len(x)
    mask = np.ones(n, dtype=bool)
    if lo is not None:
        mask &= x >= lo
    if hi is not None:
        mask &= x <= hi
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return idx
    first, last = int(idx[0]), int(idx[-1])
    extra = []
    if first > 0:
        extra.append(first - 1)
    if last < n - 1:
        extra.append(last + 1)
    if extra:
        idx = np.union1d(idx, np.asarray(extra, dtype=idx.dtype))
    return idx


def minmax_indices(y: npt.NDArray[np.float64], points: int) -> npt.NDArray[np.intp]:
    """Indices (ascending) of the min and max of each of ``points // 2`` buckets."""
    import numpy as np

    n = len(y)
    if n <= points or points < 4:
        return np.arange(n)
    buckets = points // 2
    size = -(-n // buckets)  # ceil
    buckets = -(-n // size)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = y
    grid = padded.reshape(buckets, size)
    base = np.arange(buckets) * size
    lo = base + np.nanargmin(grid, axis=1)
    hi = base + np.nanargmax(grid, axis=1)
    idx = np.union1d(lo, hi)
    if idx[0] != 0:
        idx = np.concatenate(([0], idx))
    if idx[-1] != n - 1:
        idx = np.concatenate((idx, [n - 1]))
    return idx


def lttb_indices(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], points: int
) -> npt.NDArray[np.intp]:
    """Indices (ascending) chosen by Largest-Triangle-Three-Buckets."""
    import numpy as np

    n = len(y)
    if n <= points or points < 3:
        return np.arange(n)
    # bucket edges for the n - 2 inner points, points - 2 buckets
    edges = np.linspace(1, n - 1, points - 1).astype(np.intp)
    out = np.empty(points, dtype=np.intp)
    out[0], out[-1] = 0, n - 1
    # the average point of each bucket, vectorised up front
    sx = np.add.reduceat(x[1 : n - 1], edges[:-1] - 1)
    sy = np.add.reduceat(y[1 : n - 1], edges[:-1] - 1)
    counts = np.diff(edges).astype(np.float64)
    counts[counts == 0] = 1
    avg_x = np.append(sx / counts, x[n - 1])
    avg_y = np.append(sy / counts, y[n - 1])
    a = 0
    for i in range(points - 2):
        start, stop = edges[i], max(edges[i + 1], edges[i] + 1)
        bx, by = x[start:stop], y[start:stop]
        cx, cy = avg_x[i + 1], avg_y[i + 1]
        ax, ay = x[a], y[a]
        area = np.abs((ax - cx) * (by - ay) - (ax - bx) * (cy - ay))
        a = start + int(np.argmax(area))
        out[i + 1] = a
    return np.unique(out)


def downsample(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    points: int = DEFAULT_POINTS,
    method: str = "minmax",
) -> npt.NDArray[np.intp]:
    """Indices of at most about *points* points of (x, y) that keep the curve's shape.

    *x* must be sorted ascending and *y* finite.
    """
    if method == "minmax":
        return minmax_indices(y, points)
    if method == "lttb":
        return lttb_indices(x, y, points)
    raise ValueError(f"unknown downsampling method {method!r}; use one of {', '.join(METHODS)}")


def check_options(xaxis: str, method: str) -> None:
    """Refuse an x axis or a downsampling method that `series_answer` does not know."""
    from ..errors import InvalidValueError

    if xaxis not in ("step", "timestamp"):
        raise InvalidValueError("xaxis", f"{xaxis!r} must be step or timestamp")
    if method not in METHODS:
        raise InvalidValueError("method", f"{method!r} must be one of {', '.join(METHODS)}")


def series_answer(
    run_id: str,
    key: str,
    arrays: tuple[Any, Any, Any],
    points: int,
    xaxis: str,
    lo: float | None,
    hi: float | None,
    method: str,
    max_points: int = 20_000,
) -> dict[str, Any]:
    """One series' answer: about *points* of its finite points within [lo, hi], the
    shape kept (`downsample`), with how many there are in all, in range and not finite."""
    import numpy as np

    points = max(10, min(int(points), max_points))
    steps, stamps, values = arrays
    total = len(values)
    xs = (steps if xaxis == "step" else stamps).astype(np.float64)
    if xaxis == "timestamp" and total and np.any(np.diff(xs) < 0):
        order = np.argsort(xs, kind="stable")
        steps, stamps, values, xs = steps[order], stamps[order], values[order], xs[order]
    idx = select_range(xs, lo, hi)
    finite = np.isfinite(values[idx])
    nonfinite = int(len(idx) - np.count_nonzero(finite))
    idx = idx[finite]  # NaN/inf cannot be drawn; the count is reported instead
    x = xs[idx]
    chosen = downsample(x, values[idx], points, method)
    sel = idx[chosen]
    return {
        "run": run_id,
        "key": key,
        "total": total,
        "in_range": len(x),
        "nonfinite": nonfinite,
        "downsampled": bool(len(sel) < len(x)),
        "method": method,
        "step": steps[sel].tolist(),
        "timestamp": stamps[sel].tolist(),
        "value": values[sel].tolist(),
    }
