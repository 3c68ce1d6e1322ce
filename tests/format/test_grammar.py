"""The names gitxp accepts end where they seem to: a trailing newline is not part of a valid name.

Python's `$` also matches before a final newline, so a pattern checked with
`match` accepts ``"name\\n"``; these tests hold every grammar of the format
to whole-string matches.
"""

from __future__ import annotations

import pytest

import gitxp
from gitxp.errors import InvalidValueError
from gitxp.format import refs
from gitxp.format.ids import is_run_id, new_run_id
from gitxp.format.values import check_key


def test_a_run_ref_with_a_trailing_newline_is_refused() -> None:
    ref = refs.RUNS_PREFIX + new_run_id()
    assert refs.problem(ref) is None
    assert refs.problem(ref + "\n") is not None
    assert not refs.is_run_ref(ref + "\n")
    assert not refs.is_valid(ref + "\n")


def test_a_run_id_with_a_trailing_newline_is_not_a_run_id() -> None:
    run_id = new_run_id()
    assert is_run_id(run_id)
    assert not is_run_id(run_id + "\n")


@pytest.mark.parametrize("key", ["loss\n", "acc\n"])
def test_a_metric_key_with_a_trailing_newline_is_refused(key: str) -> None:
    assert check_key("metric", key.strip()) == key.strip()
    with pytest.raises(InvalidValueError):
        check_key("metric", key)


def test_logging_a_key_with_a_trailing_newline_fails_with_a_clear_error(repo: object) -> None:
    with gitxp.start_run() as run, pytest.raises(InvalidValueError, match="metric key"):
        run.log_metric("loss\n", 1.0)
