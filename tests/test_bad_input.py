"""Every public call refuses bad input with a GitxpError that says what to do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gitxp


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"experiment": ""}, "experiment"),
        ({"experiment": 3}, "experiment"),
        ({"name": "   "}, "name"),
        ({"params": [1, 2]}, "expected a dict"),
        ({"params": {"lr": object()}}, "cannot store"),
        ({"tags": "x"}, "expected a dict"),
        ({"notes": 5}, "notes are text"),
        ({"checkpoint_seconds": -1}, "give a number of seconds, above 0"),
        ({"buffer_points": 0}, "at least 1"),
    ],
)
def test_start_run_rejects_bad_arguments(
    repo: Path, kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(gitxp.GitxpError) as info:
        gitxp.start_run(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert gitxp.active_run() is None
    assert gitxp.open().rows() == []  # nothing half-written


def test_end_with_unknown_status(repo: Path) -> None:
    with (
        gitxp.start_run() as run,
        pytest.raises(gitxp.InvalidValueError, match="FINISHED, FAILED or KILLED"),
    ):
        run.end("DONE")


def test_open_outside_a_repository(tmp_path: Path) -> None:
    with pytest.raises(gitxp.NotARepositoryError, match="not a git repository"):
        gitxp.open(tmp_path)


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda r: r.runs(filter="metrics.acc >>> 1"), gitxp.FilterSyntaxError, "invalid filter"),
        (lambda r: r.runs(filter=42), gitxp.FilterSyntaxError, "invalid filter"),
        (lambda r: r.runs(order_by=[3]), gitxp.FilterSyntaxError, "invalid order_by"),
        (lambda r: r.runs(order_by=3), gitxp.FilterSyntaxError, "invalid order_by"),
        (
            lambda r: r.runs(order_by="metrics.acc UP"),
            gitxp.FilterSyntaxError,
            '"metrics.acc DESC"',
        ),
        (lambda r: r.runs(order_by="foo.bar"), gitxp.FilterSyntaxError, "invalid order_by"),
        (lambda r: r.runs(experiment=5), gitxp.InvalidValueError, "experiment name"),
        (lambda r: r.rows(experiment=[None]), gitxp.InvalidValueError, "experiment name"),
        (lambda r: r.run(None), gitxp.InvalidValueError, "run"),
        (lambda r: r.run("zzzzzzzz"), gitxp.RunNotFoundError, "no run matches"),
    ],
)
def test_repo_rejects_bad_queries(repo: Path, call, error: type[Exception], fragment: str) -> None:  # type: ignore[no-untyped-def]
    with gitxp.start_run(name="only"):
        pass
    with pytest.raises(error, match=re.escape(fragment)):
        call(gitxp.open())


def test_metric_history_key_must_be_a_string(repo: Path) -> None:
    with gitxp.start_run(name="only") as run:
        run.log_metric("m", 1)
    with pytest.raises(gitxp.InvalidValueError):
        gitxp.open().run("only").metric_history(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: gitxp.rm(5), "runs: 5: give a run's name or id"),
        (lambda: gitxp.rm([None]), "give a run's name or id"),
        (lambda: gitxp.compare("only"), "give a list of at least two runs"),
        (lambda: gitxp.compare(None), "give a list of at least two runs"),  # type: ignore[arg-type]
        (lambda: gitxp.branch("only", 5), "branch name: 5"),  # type: ignore[arg-type]
    ],
)
def test_workflow_calls_refuse_arguments_of_the_wrong_type(repo: Path, call, fragment: str) -> None:  # type: ignore[no-untyped-def]
    with gitxp.start_run(name="only"):
        pass
    with pytest.raises(gitxp.InvalidValueError, match=re.escape(fragment)):
        call()


def test_launch_takes_its_command_from_any_iterable(repo: Path) -> None:
    result = gitxp.launch((a for a in ["python", "-c", "pass"]), name="gen", stream=False)
    assert (result.status, result.exit_code) == ("FINISHED", 0)
    assert gitxp.open().run("gen").meta["command"]["argv"] == ["python", "-c", "pass"]


def test_rm_and_restore_take_one_run_as_a_plain_string(repo: Path) -> None:
    from gitxp.ops.manage import restore

    with gitxp.start_run(name="only") as run:
        pass
    assert [t.id for t in gitxp.rm("only")] == [run.id]
    assert gitxp.open().rows() == []
    assert [t.id for t in restore("only")] == [run.id]
    assert [r["id"] for r in gitxp.open().rows()] == [run.id]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: gitxp.gc(grace_days="x"), "grace_days: 'x': give a number of days, 0 or more"),  # type: ignore[arg-type]
        (lambda: gitxp.reproduce("only", rtol="x"), "rtol: 'x': give a number"),  # type: ignore[arg-type]
        (lambda: gitxp.reproduce("only", atol=float("nan")), "atol: nan"),
        (lambda: gitxp.open(5), "repository path: 5"),  # type: ignore[arg-type]
        (lambda: gitxp.rm("only", repo=None), "repository path: None"),  # type: ignore[arg-type]
        (lambda: gitxp.start_run(checkpoint_seconds="x"), "checkpoint_seconds: 'x'"),  # type: ignore[arg-type]
        (lambda: gitxp.ops.manage.tag("only", 5), "tags: 5: give a dict"),  # type: ignore[arg-type]
        (lambda: gitxp.ops.manage.tag("only", remove=5), "remove: 5"),  # type: ignore[arg-type]
        (lambda: gitxp.ops.manage.tag("only", remove="best"), "remove: 'best'"),
        (lambda: gitxp.checkout("only", path=5), "path: 5"),  # type: ignore[arg-type]
        (lambda: gitxp.checkout("only", branch=5), "branch: 5"),  # type: ignore[arg-type]
        (lambda: gitxp.open().run("only").download_artifacts(to=None), "download directory"),  # type: ignore[arg-type]
        (lambda: gitxp.launch("python train.py"), "command: 'python train.py': give the program"),  # type: ignore[arg-type]
        (lambda: gitxp.launch(["python", 5]), "command: ['python', 5]"),  # type: ignore[list-item]
    ],
)
def test_settings_of_the_wrong_type_are_clear_errors(repo: Path, call, fragment: str) -> None:  # type: ignore[no-untyped-def]
    import gitxp.ops.manage  # tag lives there

    with gitxp.start_run(name="only"):
        pass
    with pytest.raises(gitxp.InvalidValueError, match=re.escape(fragment)):
        call()
