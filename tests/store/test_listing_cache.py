"""The listing cache (store/listing_cache.py): what a listing gives is what reading every run
from git gives, whatever moved since the cache was written, and a warm listing reads no ref."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from gitxp.format.status import effective_status
from gitxp.store import query
from gitxp.store.pending import publish_pending
from gitxp.store.query import select, to_frame
from gitxp.store.record import listing_row
from tests.faults.hostile import replace_file, run_json
from tests.gitutil import git

RUNS = "refs/gitxp/runs/"
FILTERS = [
    "metrics.acc > 0.8 and params.opt = 'adam'",
    "params.lr = '0.5' or params.lr >= 0.1",
    "not (tags.team = 'vision') and metrics.loss < 1",
    "params.opt LIKE 'a%' or params.opt ILIKE '%W'",
    "params.opt not in ('sgd', 'adam')",
    "params.missing is null and params.dropout is null",
    "params.nested = '{\"a\": [1, 2]}'",
    "attributes.status = 'RUNNING' or status = 'CRASHED' or status = 'CORRUPT'",
    "duration > 0 and experiment = 'iris'",
    "metrics.acc != 0.5",
    "params.big > 1e18",
    "params.flag = true",
]


@pytest.fixture
def varied(repo: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Runs with every kind of row: mixed-type and nested params, None, NaN and infinite
    metrics, a CORRUPT run, a run whose object is missing, a live RUNNING run, a stored
    RUNNING run gone stale (CRASHED), two refs on one commit. Name -> id."""
    now = time.time_ns() // 1_000_000 + 1500  # the fixed time statuses are judged at
    monkeypatch.setattr(query, "now_ms", lambda: now)
    specs: list[tuple[str, str, dict[str, Any], dict[str, float], dict[str, str]]] = [
        ("alpha", "iris", {"lr": 0.1, "opt": "adam", "layers": 2, "flag": True}, {"acc": 0.91}, {"team": "vision"}),
        ("beta", "iris", {"lr": 0.01, "opt": "sgd", "nested": {"a": [1, 2]}}, {"acc": 0.85, "loss": float("inf")}, {"team": "nlp"}),
        ("gamma", "mnist", {"lr": "0.5", "opt": "adam", "big": 2**60 + 1}, {"acc": float("nan"), "loss": float("-inf")}, {}),
        ("delta", "mnist", {"lr": 1, "opt": "Adam W", "dropout": None}, {"acc": 0.5}, {"note": "x"}),
        ("eps", "iris", {}, {}, {}),
        ("bad", "iris", {"lr": 0.2}, {"acc": 0.7}, {}),
        ("stale", "mnist", {"lr": 0.3}, {"acc": 0.6, "loss": 0.2}, {}),
    ]  # fmt: skip
    ids = {}
    for name, exp, params, metrics, tags in specs:
        with gitxp.start_run(
            name=name, experiment=exp, params=params, tags=tags, snapshot=False
        ) as r:
            if metrics:
                r.log_metrics(metrics, step=0)
            ids[name] = r.id
    replace_file(repo, ids["bad"], "params.json", b"[1, 2, 3]")  # CORRUPT: fails the schema
    meta = run_json(repo, ids["stale"])
    hour_ago = meta["start_time"] - 3_600_000
    meta.update(status="RUNNING", end_time=None, host="elsewhere", start_time=hour_ago)
    meta["heartbeat_time"] = hour_ago
    replace_file(repo, ids["stale"], "run.json", json.dumps(meta).encode())
    tip = git(repo, "rev-parse", RUNS + ids["beta"]).strip()
    git(repo, "update-ref", RUNS + "01zzzzzzzzzzzzzzzzzzzzzzzy", tip)  # two refs, one commit
    live = gitxp.start_run(name="live", experiment="iris", params={"lr": 0.4}, snapshot=False)
    live.log_metric("acc", 0.3, step=0)
    publish_pending()  # its first commit, now rather than after the start delay
    ids["live"] = live.id
    # a run whose commit object is gone: listed CORRUPT, never cached
    with gitxp.start_run(name="lost", experiment="mnist", snapshot=False) as r:
        ids["lost"] = r.id
    yield ids  # type: ignore[misc]
    live.end()


def reference(path: Path) -> list[dict[str, Any]]:
    """Every run's row read from git, with no cache: what a listing must give, in order."""
    repo = gitxp.open(path)
    rows = []
    now = query.now_ms()
    for line in git(path, "for-each-ref", "--format=%(objectname) %(refname)", RUNS).splitlines():
        sha, ref = line.split(" ", 1)
        row, _ = listing_row(repo.git, sha, ref.rsplit("/", 1)[-1])
        row.pop("summary", None)
        row["ref"] = ref
        row["status"] = effective_status(row, now)
        end = row.get("end_time") or (now if row["status"] == "RUNNING" else None)
        start = row.get("start_time")
        row["duration"] = None if end is None or start is None else (end - start) / 1000
        rows.append(row)
    return select(rows)


def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Equal rows, member order, ints and floats and NaNs included."""
    return json.dumps(a) == json.dumps(b)


def check(path: Path) -> None:
    """The listing, filtered listings, frames and `log -n 2` equal the reference."""
    ref = reference(path)
    repo = gitxp.open(path)
    assert same(repo.rows(), ref)
    assert same(repo.rows(limit=2), ref[:2])
    pd.testing.assert_frame_equal(repo.runs(), to_frame(ref), check_exact=True)
    out = CliRunner().invoke(cli, ["log", "-n", "2", "--format", "json", "-C", str(path)])
    assert out.exit_code == 0, out.output
    assert [r["id"] for r in json.loads(out.stdout)] == [r["id"] for r in ref[:2]]
    assert repo.broken_runs == {r["ref"]: r["corrupt"] for r in ref if r.get("corrupt")}


def lose(path: Path, commit: str) -> bytes:
    """Delete the loose object *commit*; return its bytes."""
    obj = path / ".git" / "objects" / commit[:2] / commit[2:]
    data = obj.read_bytes()
    obj.unlink()
    return data


def settle(path: Path) -> None:
    """Age packed-refs and the run-ref directories, as if nothing moved for an hour."""
    old = time.time() - 3600
    targets = [path / ".git" / "packed-refs"]
    targets += [Path(d) for d, _, _ in os.walk(path / ".git" / "refs" / "gitxp" / "runs")]
    for target in targets:
        if target.exists():
            os.utime(target, (old, old))


def test_rows_frames_and_filters_equal_reading_every_run(
    varied: dict[str, str], repo: Path
) -> None:
    tip = git(repo, "rev-parse", RUNS + varied["lost"]).strip()
    kept = lose(repo, tip)
    ref = reference(repo)
    statuses = {r["name"]: r["status"] for r in ref}
    assert statuses["live"] == "RUNNING" and statuses["stale"] == "CRASHED"
    assert [r["status"] for r in ref].count("CORRUPT") == 2  # bad, and lost (unreadable)
    repo_ = gitxp.open(repo)
    for _ in range(2):  # cold, then warm
        assert same(repo_.rows(), ref)
        pd.testing.assert_frame_equal(repo_.runs(), to_frame(ref), check_exact=True)
        for flt in FILTERS:
            expected = select(ref, flt)
            assert same(repo_.rows(filter=flt), expected), flt
            pd.testing.assert_frame_equal(
                repo_.runs(filter=flt), to_frame(expected), check_exact=True
            )
        for exp, order in [
            ("iris", None),
            (["mnist"], "metrics.acc DESC"),
            (None, ["params.lr", "name DESC"]),
        ]:
            expected = select(ref, None, exp, order)
            assert same(repo_.rows(experiment=exp, order_by=order), expected)
            assert same(repo_.rows(experiment=exp, order_by=order, limit=3), expected[:3])
            pd.testing.assert_frame_equal(
                repo_.runs(experiment=exp, order_by=order), to_frame(expected), check_exact=True
            )
        assert repo_.experiments() == ["default", "iris", "mnist"]  # the lost run has none
    # the unreadable run is re-read by every listing: once its object is back it is listed
    (repo / ".git" / "objects" / tip[:2] / tip[2:]).write_bytes(kept)
    check(repo)
    assert {r["name"]: r["status"] for r in gitxp.open(repo).rows()}["lost"] == "FINISHED"


def test_a_warm_listing_reads_no_ref(
    varied: dict[str, str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "pack-refs", "--all")
    git(
        repo,
        "update-ref",
        RUNS + varied["alpha"],
        git(repo, "rev-parse", RUNS + varied["delta"]).strip(),
    )
    settle(repo)
    check(repo)  # writes the settled stamps

    def refused(*args: object) -> None:
        raise AssertionError("a warm listing read the refs")

    monkeypatch.setattr(query, "read_packed_refs", refused)
    monkeypatch.setattr(query, "scan_loose_refs", refused)
    check(repo)


@pytest.mark.parametrize(
    "change",
    [
        "update",
        "delete",
        "pack-refs",
        "gc",
        "shadow",
        "unshadow",
        "copy",
        "record",
        "garbage",
        "truncated",
        "foreign",
    ],
)
def test_a_listing_follows_every_change(
    varied: dict[str, str], repo: Path, tmp_path: Path, change: str
) -> None:
    """Each change made once the cache is warm and its stamps settled (so nothing is
    re-read unless something moved) shows in the next listing."""
    if change in ("shadow", "unshadow"):
        git(repo, "pack-refs", "--all")
    settle(repo)
    check(repo)
    cache = repo / ".git" / "gitxp" / query.CACHE_FILE
    alpha, delta = RUNS + varied["alpha"], RUNS + varied["delta"]
    if change == "update":
        git(repo, "update-ref", alpha, git(repo, "rev-parse", delta).strip())
    elif change == "delete":
        git(repo, "update-ref", "-d", alpha)
    elif change == "pack-refs":
        git(repo, "pack-refs", "--all")
    elif change == "gc":
        git(repo, "gc", "-q")
    elif change in ("shadow", "unshadow"):
        git(repo, "update-ref", alpha, git(repo, "rev-parse", delta).strip())  # loose over packed
        check(repo)
        settle(repo)
        check(repo)
        if change == "unshadow":  # the loose file goes: the packed value shows again
            (repo / ".git" / Path(*alpha.split("/"))).unlink()
    elif change == "copy":
        copy = tmp_path / "copy"
        shutil.copytree(repo, copy, symlinks=True)
        git(repo, "update-ref", "-d", alpha)  # the original changes, not the copy
        check(copy)
        git(copy, "update-ref", delta, git(copy, "rev-parse", alpha).strip())
        check(copy)
    elif change == "record":
        with gitxp.start_run(name="new", experiment="iris", snapshot=False) as r:
            r.log_metric("acc", 0.99)
    elif change == "garbage":
        cache.write_bytes(cache.read_bytes()[:30] + b"\x00garbage" * 100)
    elif change == "truncated":
        cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    elif change == "foreign":  # another version's cache, and the JSON cache of versions 1-3
        data = cache.read_bytes().replace(b"gitxp-listing-cache 4", b"gitxp-listing-cache 9", 1)
        cache.write_bytes(data)
        (repo / ".git" / "gitxp" / "index-v1.json").write_text('{"version": 3, "rows": {}}')
    check(repo)
    check(repo)
    assert not (repo / ".git" / "gitxp" / "index-v1.json").exists()
