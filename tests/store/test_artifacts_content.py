"""Text and dicts kept with a run straight from memory: `log_text` and `log_dict`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import gitxp
from tests.gitutil import fsck, git


def test_text_and_dicts_become_file_artifacts_git_can_show(repo: Path) -> None:
    config = {"lr": np.float32(0.5), "layers": [np.int64(3), 4], "out": Path("runs/a"), "név": "ü"}
    with gitxp.start_run() as run:
        text_entry = run.log_text("# Report\naccuracy rose\n", "eval/report.md")
        json_entry = run.log_dict(config, "config.json")
        yaml_entry = run.log_dict({"model": {"depth": 3, "drop": 0.1}}, "model.yaml")
    ref = f"refs/gitxp/runs/{run.id}"
    assert git(repo, "show", f"{ref}:artifacts/eval/report.md") == "# Report\naccuracy rose\n"
    stored = git(repo, "show", f"{ref}:artifacts/config.json")
    assert json.loads(stored) == {"lr": 0.5, "layers": [3, 4], "out": "runs/a", "név": "ü"}
    assert stored.endswith("}\n") and "\n  " in stored  # indented, one final newline
    assert yaml.safe_load(git(repo, "show", f"{ref}:artifacts/model.yaml")) == {
        "model": {"depth": 3, "drop": 0.1}
    }
    assert [e["name"] for e in (text_entry, json_entry, yaml_entry)] == [
        "eval/report.md",
        "config.json",
        "model.yaml",
    ]
    record = gitxp.open(repo).run(run.id)
    assert {a["name"] for a in record.artifacts()} == {
        "eval/report.md",
        "config.json",
        "model.yaml",
    }
    fsck(repo)


def test_module_level_twins_write_to_the_active_run(repo: Path) -> None:
    with gitxp.start_run() as run:
        gitxp.log_text("hello", "hello.txt")
        gitxp.log_dict([1, 2], "list.json")
    ref = f"refs/gitxp/runs/{run.id}"
    assert git(repo, "show", f"{ref}:artifacts/hello.txt") == "hello"
    assert json.loads(git(repo, "show", f"{ref}:artifacts/list.json")) == [1, 2]


def test_logging_a_name_again_replaces_it(repo: Path) -> None:
    with gitxp.start_run() as run:
        run.log_text("first", "notes.txt")
        run.log_text("second", "notes.txt")
    assert git(repo, "show", f"refs/gitxp/runs/{run.id}:artifacts/notes.txt") == "second"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda run: run.log_text(b"bytes", "a.txt"), "text: bytes given: log_text takes a str"),
        (lambda run: run.log_text("x", "../escape.txt"), "must be a relative path"),
        (lambda run: run.log_text("x", ""), "must be a non-empty string"),
        (lambda run: run.log_dict({"f": object()}, "c.json"), "c.json: cannot be written"),
        (lambda run: run.log_dict({"x": float("nan")}, "c.json"), "c.json: cannot be written"),
    ],
)
def test_bad_content_or_names_are_clear_errors_and_store_nothing(
    repo: Path, call: object, match: str
) -> None:
    with gitxp.start_run() as run, pytest.raises(gitxp.GitxpError, match=match):
        call(run)  # type: ignore[operator]
    assert gitxp.open(repo).run(run.id).artifacts() == []


def test_an_ended_run_refuses_content(repo: Path) -> None:
    with gitxp.start_run() as run:
        pass
    with pytest.raises(gitxp.RunFinishedError):
        run.log_text("late", "late.txt")
    with pytest.raises(gitxp.RunFinishedError):
        run.log_dict({}, "late.json")


def test_yaml_without_pyyaml_says_what_to_install(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with gitxp.start_run() as run:
        with pytest.raises(gitxp.ArtifactError, match=r"pip install pyyaml, or name it \.json"):
            run.log_dict({"a": 1}, "config.yaml")
        run.log_dict({"a": 1}, "config.json")  # JSON needs nothing
    assert [a["name"] for a in gitxp.open(repo).run(run.id).artifacts()] == ["config.json"]
