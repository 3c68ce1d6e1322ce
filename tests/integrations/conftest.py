"""Fixtures of the integration tests: no callback, autolog or compatibility layer leaves a run open."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_leftover_runs() -> object:
    """Fail a test that leaves a run open (callback, autolog, MLflow layer), and close it."""
    from gitxp.tracking import context as tracking

    yield
    left = list(tracking._open)
    for run in left:
        run.end("KILLED")
    assert not left, f"runs left open: {left}"
