"""`RunOptions`: a run's settings as one frozen object, checked and settled when made."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest

import gitxp
from gitxp.git.repository import GitRepo
from gitxp.tracking.options import RunOptions
from gitxp.tracking.run import Run
from tests.gitutil import git, run_refs


def test_defaults_from_the_environment_are_settled_when_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITXP_CHECKPOINT_SECONDS", "5")
    monkeypatch.setenv("GITXP_START_DELAY", "0")
    options = RunOptions()
    monkeypatch.setenv("GITXP_CHECKPOINT_SECONDS", "7")  # read once: later changes do not count
    assert options.checkpoint_seconds == 5.0 and options.start_delay == 0.0
    assert options.buffer_points == 1_000_000
    assert RunOptions(checkpoint_seconds=2).checkpoint_seconds == 2.0  # given beats the variable


@pytest.mark.parametrize(
    ("settings", "env", "fragment"),
    [
        ({}, {"GITXP_CHECKPOINT_SECONDS": "soon"}, "GITXP_CHECKPOINT_SECONDS"),
        ({}, {"GITXP_START_DELAY": "-1"}, "GITXP_START_DELAY"),
        ({"checkpoint_seconds": 0}, {}, "checkpoint_seconds"),
        ({"buffer_points": 0}, {}, "at least 1"),
        ({"name": "has space"}, {}, "name"),
        ({"params": {"a|b": 1}}, {}, "param key"),
        ({"tags": ["x"]}, {}, "expected a dict"),
    ],
)
def test_bad_settings_are_refused_when_made(
    settings: dict[str, object],
    env: dict[str, str],
    fragment: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(gitxp.InvalidValueError) as info:
        RunOptions(**settings)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_params_and_tags_are_stored_normalised_and_the_object_is_frozen() -> None:
    options = RunOptions(params={"lr": np.float64(0.5), "layers": [64, 64]}, tags={"n": 3})
    assert options.params == {"lr": 0.5, "layers": [64, 64]}
    assert type(options.params["lr"]) is float  # type: ignore[index]
    assert options.tags == {"n": "3"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.name = "other"  # type: ignore[misc]
    renamed = dataclasses.replace(options, name="other")
    assert renamed.name == "other" and renamed.params == options.params


def test_the_public_keywords_are_run_options_fields() -> None:
    # start_run and launch build their RunOptions from their own keywords (options_from):
    # every run setting they take must be a field of the same name
    fields = {f.name for f in dataclasses.fields(RunOptions)}
    start_run = set(inspect.signature(gitxp.start_run).parameters) - {"repo"}
    assert start_run <= fields, start_run - fields
    launch = set(inspect.signature(gitxp.launch).parameters)
    process = {"cmd", "repo", "cwd", "env", "unset_env", "stream", "output_cap", "on_start"}
    process.add("record_cwd")
    assert launch - process <= fields, (launch - process) - fields
    assert gitxp.RunOptions is RunOptions


def test_a_run_starts_from_options(repo: Path) -> None:
    options = RunOptions(
        experiment="opts",
        name="from-options",
        params={"lr": 0.1},
        notes="made from RunOptions",
        start_delay=0,  # the first commit at once
        snapshot=False,
    )
    run = Run(GitRepo(str(repo)), options)
    try:
        assert run_refs(repo) == [f"refs/gitxp/runs/{run.id}"]  # committed before any log
        meta = json.loads(git(repo, "show", f"refs/gitxp/runs/{run.id}:run.json"))
        assert meta["experiment"] == "opts" and meta["name"] == "from-options"
        assert meta["checkpoint_seconds"] == options.checkpoint_seconds
        run.log_metric("loss", 0.5)
    finally:
        run.end()
    record = gitxp.open(repo).run("from-options")
    assert record.params == {"lr": 0.1} and record.status == "FINISHED"
    assert "made from RunOptions" in (record.notes or "")
