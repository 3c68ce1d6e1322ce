"""One malformed run must not break the others (gitxp issue 16, item 2).

Each hostile run is a real recorded run with one file of its tree rewritten
through git plumbing (hash-object, mktree, commit-tree, update-ref), as a
teammate could push it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.hostile import RUNS, make_project, record, replace_file, run_json
from tests.gitutil import GIT_ENV, git


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A repository with a good run and one run per kind of malformed file."""
    path = make_project(tmp_path_factory.mktemp("malformed") / "project")
    ids = {
        name: record(path, name)
        for name in ("good", "bad-time", "params-list", "deep", "summary-text", "future")
    }
    meta = run_json(path, ids["bad-time"])
    meta["start_time"] = "yesterday"
    replace_file(path, ids["bad-time"], "run.json", json.dumps(meta).encode())
    replace_file(path, ids["params-list"], "params.json", b"[1, 2, 3]")
    deep = b"[" * 10_000 + b"]" * 10_000
    replace_file(path, ids["deep"], "params.json", b'{"lr": ' + deep + b"}")
    replace_file(
        path,
        ids["summary-text"],
        "summary.json",
        b'{"acc": {"count": "many", "last": "high", "step": 4, "min": "a", "max": "b"}}',
    )
    meta = run_json(path, ids["future"])
    meta["format"] = 99
    meta["start_time"] = {"iso": "2031-01-01"}  # a v99 type this gitxp does not know
    replace_file(path, ids["future"], "run.json", json.dumps(meta).encode())
    return path, ids


MALFORMED = ("bad-time", "params-list", "deep", "summary-text")
REASONS = {
    "bad-time": "start_time",
    "params-list": "params.json is a list",
    "deep": "deeper than",
    "summary-text": "summary.json",
}


class _Result:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.exit_code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.output = proc.stdout + proc.stderr


def _cli(path: Path, *args: str) -> _Result:
    """`gitxp ARGS` in *path*, as a real process."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": root}
    proc = subprocess.run(
        [sys.executable, "-m", "gitxp", *args], cwd=path, env=env, capture_output=True, text=True
    )
    return _Result(proc)


def test_listing_lists_malformed_runs_as_corrupt_and_the_others_intact(
    project: tuple[Path, dict[str, str]],
) -> None:
    import gitxp

    path, ids = project
    with gitxp.open(path) as repo:
        rows = {r["id"]: r for r in repo.rows()}
        frame = repo.runs()
        corrupt = repo.rows(filter="attributes.status = 'CORRUPT'")
        experiments = repo.experiments()
    assert set(rows) == set(ids.values())
    good = rows[ids["good"]]
    assert good["status"] == "FINISHED" and good["metrics"]["acc"] == pytest.approx(0.54)
    for name in MALFORMED:
        row = rows[ids[name]]
        assert row["status"] == "CORRUPT", name
        assert REASONS[name] in row["corrupt"], (name, row["corrupt"])
    assert {r["id"] for r in corrupt} == {ids[n] for n in MALFORMED}
    # a run of a newer format is listed with what this gitxp can read of it
    future = rows[ids["future"]]
    assert future["status"] == "FINISHED" and future["format"] == 99
    assert future["start_time"] is None and future["params"] == {"lr": 0.1}
    assert len(frame) == 6 and "metrics.acc" in frame.columns
    assert experiments == ["exp"]


def test_gitxp_log_lists_every_run_and_carries_the_reason_in_json(
    project: tuple[Path, dict[str, str]],
) -> None:
    path, ids = project
    text = _cli(path, "log")
    assert text.exit_code == 0, text.output
    assert "CORRUPT" in text.output and ids["good"] in text.output
    result = _cli(path, "log", "--format", "json")
    assert result.exit_code == 0
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert len(rows) == 6
    assert "start_time" in rows[ids["bad-time"]]["corrupt"]
    assert "corrupt" not in rows[ids["good"]]
    # one warning line per CORRUPT run on stderr
    assert sum("is CORRUPT" in line for line in result.stderr.splitlines()) == len(MALFORMED)


def test_gitxp_show_prints_why_a_run_is_corrupt(project: tuple[Path, dict[str, str]]) -> None:
    path, ids = project
    result = _cli(path, "show", ids["params-list"])
    assert result.exit_code == 0, result.output
    assert "CORRUPT" in result.output
    assert "Corrupt:    params.json is a list, not an object" in result.output
    data = json.loads(_cli(path, "show", ids["deep"], "--format", "json").stdout)
    assert data["status"] == "CORRUPT" and "deeper than 64 levels" in data["corrupt"]
    future = _cli(path, "show", ids["future"])
    assert future.exit_code == 0 and "Format:     99" in future.output


def test_run_record_of_a_corrupt_run_reads_without_error(
    project: tuple[Path, dict[str, str]],
) -> None:
    import gitxp

    path, ids = project
    with gitxp.open(path) as repo:
        record = repo.run(ids["summary-text"])
        assert record.status == "CORRUPT" and record.summary == {} and record.params == {}
        assert record.to_dict()["corrupt"].startswith("summary.json")
        # the metric parts themselves are intact: they still read
        assert list(repo.run(ids["bad-time"]).metrics()["value"]) == pytest.approx(
            [0.5, 0.51, 0.52, 0.53, 0.54]
        )


def test_tag_refuses_a_run_of_a_newer_format_and_leaves_it_alone(
    project: tuple[Path, dict[str, str]],
) -> None:
    path, ids = project
    ref = RUNS + ids["future"]
    before = git(path, "rev-parse", ref).strip()
    result = _cli(path, "tag", ids["future"], "best=yes")
    assert result.exit_code == 1
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert "format 99" in message and "upgrade gitxp" in message
    assert git(path, "rev-parse", ref).strip() == before
    corrupt = _cli(path, "tag", ids["bad-time"], "best=yes")
    assert corrupt.exit_code == 1 and "CORRUPT run cannot be changed" in corrupt.output


def test_the_cache_keeps_the_verdict_per_commit_and_a_repaired_run_reads_again(
    project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    import shutil

    import gitxp

    src, ids = project
    path = tmp_path / "copy"
    shutil.copytree(src, path)
    # the copied cache names the source's ref directories (by absolute path): start afresh
    from gitxp.format import schema
    from gitxp.store.listing_cache import CACHE_FILE, CacheFile

    (path / ".git" / "gitxp" / CACHE_FILE).unlink()
    with gitxp.open(path) as repo:
        first = {r["id"]: r["status"] for r in repo.rows()}
    cache = CacheFile.read(str(path / ".git" / "gitxp" / CACHE_FILE), schema.limits_key())
    assert cache is not None
    tip = git(path, "rev-parse", RUNS + ids["deep"]).strip()
    at = cache.column("commit").index(tip)
    assert cache.column("status")[at] == "CORRUPT"  # cached as corrupt, not re-read
    assert at not in cache.header["volatile"]
    with gitxp.open(path) as repo:
        assert {r["id"]: r["status"] for r in repo.rows()} == first
    # repairing the run (its ref back on the previous, valid commit) lists it again
    git(path, "update-ref", RUNS + ids["deep"], f"{tip}^")
    with gitxp.open(path) as repo:
        assert {r["id"]: r["status"] for r in repo.rows()}[ids["deep"]] == "FINISHED"


def test_ui_api_lists_runs_and_experiments_despite_malformed_runs(
    project: tuple[Path, dict[str, str]],
) -> None:
    from gitxp.ui.server import UIServer
    from tests.ui_helpers import get_json

    path, _ = project
    server = UIServer(str(path), port=0).start()
    try:
        runs = get_json(server.port, "/api/runs")
        experiments = get_json(server.port, "/api/experiments")
    finally:
        server.close()
    assert runs["total"] == 6 and runs["status"]["CORRUPT"] == len(MALFORMED)
    assert experiments == [{"name": "exp", "runs": 6, "running": 0}]
