"""Property tests: whatever params and metric values go in come back out exactly."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gitxp

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)  # type: ignore[attr-defined,index]
    return a == b


@SETTINGS
@given(params=st.dictionaries(keys, json_values, max_size=6))
def test_params_round_trip_exactly(repo: Path, params: dict[str, object]) -> None:
    with gitxp.start_run(params=params, snapshot=False) as run:
        pass
    back = gitxp.open().run(run.id).params
    assert _same(back, params)


@SETTINGS
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50),
    steps=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=50, max_size=50),
)
def test_metric_values_and_steps_round_trip_exactly(
    repo: Path, values: list[float], steps: list[int]
) -> None:
    with gitxp.start_run(snapshot=False) as run:
        for value, step in zip(values, steps, strict=False):
            run.log_metric("m", value, step=step, timestamp=123)
    hist = gitxp.open().run(run.id).metric_history("m")
    got = sorted(zip(hist["step"], hist["value"], strict=True), key=lambda p: p[0])
    want = sorted(zip(steps, values, strict=False), key=lambda p: p[0])
    assert [s for s, _ in got] == [s for s, _ in want]
    for (_, g), (_, w) in zip(got, want, strict=True):
        assert (math.isnan(g) and math.isnan(w)) or (
            g == w and math.copysign(1, g) == math.copysign(1, w)
        )
    assert set(hist["timestamp"]) == {123}
