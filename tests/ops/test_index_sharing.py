"""The shipped listing index: pushed with the runs, fetched by clones, never trusted blindly."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from gitxp.format import listing_index as fmt
from gitxp.git.refs import read_ref, update_ref
from gitxp.git.repository import GitRepo
from gitxp.git.trees import MODE_FILE
from gitxp.ops import sharing
from gitxp.store.listing_cache import CACHE_FILE, UNVERIFIED_FILE
from gitxp.store.query import RunIndex, public_row
from gitxp.store.shipped_index import build_index, shipped_rows
from tests.gitutil import fsck, git, run_refs
from tests.ops.test_sharing_transports import continue_run, record, tip

INDEX = fmt.INDEX_REF


def _bare(tmp_path: Path, name: str = "origin.git") -> Path:
    bare = tmp_path / name
    git(tmp_path, "init", "-q", "--bare", str(bare))
    return bare


def _new_repo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    git(tmp_path, "init", "-q", "-b", "main", str(path))
    (path / "train.py").write_text(f"print({name!r})\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def listing(path: Path) -> str:
    """Every run's public row, as one comparable text (NaN compares equal as text)."""
    with gitxp.open(path) as r:
        rows = [public_row(row) for row in RunIndex(r.git).rows()]
    return json.dumps(sorted(rows, key=lambda row: row["id"]), sort_keys=True)


def drop_run_files(path: Path, run_ids: list[str]) -> None:
    """Delete the loose run.json, params.json and summary.json objects of *run_ids*: a
    listing that read any of them would list the run as CORRUPT."""
    for run_id in run_ids:
        for name in ("run.json", "params.json", "summary.json"):
            sha = git(path, "rev-parse", f"refs/gitxp/runs/{run_id}:{name}").strip()
            loose = path / ".git" / "objects" / sha[:2] / sha[2:]
            assert loose.exists(), f"{name} of {run_id} is not a loose object"
            loose.unlink()


def remote_rows(bare: Path, repo: Path) -> dict[str, dict[str, Any]]:
    """The rows the remote's index holds for the runs of *repo*, at their local tips."""
    with GitRepo(str(repo)) as ours:
        wanted = {ref.rsplit("/", 1)[-1]: read_ref(ours, ref) or "" for ref in run_refs(repo)}
    with GitRepo(str(bare)) as theirs:
        return shipped_rows(theirs, wanted)


def test_a_git_clone_lists_from_the_index_without_reading_a_run(repo: Path, tmp_path: Path) -> None:
    bare = _bare(tmp_path)
    ids = record(repo, 4)
    sharing.push(repo, str(bare))
    assert len(remote_rows(bare, repo)) == 4
    fsck(bare)

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", bare.as_uri(), str(clone))
    # unpacked, so single objects can be deleted below
    git(
        clone,
        "-c",
        "fetch.unpackLimit=100000",
        "fetch",
        "-q",
        "origin",
        "refs/gitxp/*:refs/gitxp/*",
    )
    assert git(clone, "rev-parse", INDEX).strip() == git(bare, "rev-parse", INDEX).strip()
    fsck(clone)
    drop_run_files(clone, ids)
    assert listing(clone) == listing(repo)


def test_gitxp_fetch_brings_the_index_and_the_listing_needs_no_run_object(
    repo: Path, tmp_path: Path
) -> None:
    bare = _bare(tmp_path)
    ids = record(repo, 3)
    sharing.push(repo, str(bare))
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    sharing.fetch(other, str(bare))
    assert git(other, "rev-parse", INDEX).strip() == git(bare, "rev-parse", INDEX).strip()
    fsck(other)
    drop_run_files(other, ids)
    assert listing(other) == listing(repo)


def test_listing_again_without_a_cache_queues_each_shipped_row_once(
    repo: Path, tmp_path: Path
) -> None:
    bare = _bare(tmp_path)
    record(repo, 3)
    sharing.push(repo, str(bare))
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    sharing.fetch(other, str(bare))
    cache = other / ".git" / "gitxp" / CACHE_FILE
    queue = other / ".git" / "gitxp" / UNVERIFIED_FILE
    sizes = []
    for _ in range(3):  # the cache deleted (or lost) before each listing
        cache.unlink(missing_ok=True)
        with GitRepo(str(other)) as g:
            RunIndex(g).rows()
        sizes.append(len(queue.read_text().splitlines()))
    assert sizes == [3, 3, 3]


def test_a_pushed_update_replaces_the_run_row_and_fetch_follows(repo: Path, tmp_path: Path) -> None:
    bare = _bare(tmp_path)
    first, second = record(repo, 2)
    sharing.push(repo, str(bare))
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    sharing.fetch(other, str(bare))
    continue_run(repo, first, 0.25)
    assert {r.status for r in sharing.push(repo, str(bare))} == {"updated", "up-to-date"}
    rows = remote_rows(bare, repo)
    assert rows[tip(repo, first)]["metrics"]["extra"] == 0.25
    shard = git(bare, "show", f"{INDEX}:shards/{fmt.shard_of(first)}")
    assert shard.count(first) == 1  # the row of the earlier commit went
    # the clone fast-forwards its index and lists the new version from it
    before = git(other, "rev-parse", INDEX).strip()
    sharing.fetch(other, str(bare))
    assert git(other, "rev-list", INDEX).split()[1] == before
    assert listing(other) == listing(repo)
    assert second in listing(other)


def test_two_pushers_end_with_the_union_of_their_rows(tmp_path: Path) -> None:
    bare = _bare(tmp_path)
    a, b = _new_repo(tmp_path, "a"), _new_repo(tmp_path, "b")
    record(a, 2)
    record(b, 2)
    sharing.push(a, str(bare))
    sharing.push(b, str(bare))  # b has never seen a's index: fetched, merged, pushed again
    assert len(remote_rows(bare, a)) == 2 and len(remote_rows(bare, b)) == 2
    record(a, 3)
    record(b, 3)
    code = "import sys\nfrom gitxp.ops import sharing\nsharing.push(sys.argv[1], sys.argv[2])\n"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(p), str(bare)], env=env) for p in (a, b)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(run_refs(bare)) == 10
    assert len(remote_rows(bare, a)) == 5 and len(remote_rows(bare, b)) == 5
    fsck(bare)


def test_the_lost_race_retries_and_both_pushers_rows_land(tmp_path: Path) -> None:
    """Deterministic form of the race: b's index push loses to a's, then merges and wins."""
    bare = _bare(tmp_path)
    a, b = _new_repo(tmp_path, "a"), _new_repo(tmp_path, "b")
    record(a, 1)
    record(b, 1)
    sharing.push(a, str(bare))
    sharing.fetch(b, str(bare))  # b's index is a's
    record(a, 1)
    record(b, 1)
    sharing.push(a, str(bare))  # moves the remote index past what b holds
    sharing.push(b, str(bare))
    assert len(remote_rows(bare, a)) == 2 and len(remote_rows(bare, b)) == 3
    assert git(b, "rev-parse", INDEX).strip() == git(bare, "rev-parse", INDEX).strip()
    fsck(bare)


def test_reindex_ships_runs_pushed_before_the_index_existed(
    repo: Path, tmp_path: Path, runner: CliRunner
) -> None:
    bare = _bare(tmp_path)
    record(repo, 3)
    git(repo, "push", "-q", str(bare), "refs/gitxp/runs/*:refs/gitxp/runs/*")
    result = runner.invoke(cli, ["push", str(bare), "-q"])
    assert result.exit_code == 0, result.output
    assert remote_rows(bare, repo) == {}  # up to date: nothing was sent, no row either
    result = runner.invoke(cli, ["push", str(bare), "--reindex", "-q"])
    assert result.exit_code == 0, result.output
    assert len(remote_rows(bare, repo)) == 3


def test_remote_setup_makes_plain_git_fetch_carry_the_index(repo: Path, tmp_path: Path) -> None:
    bare = _bare(tmp_path)
    record(repo, 2)
    sharing.push(repo, str(bare))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    sharing.setup_remote(clone, push=False)
    git(clone, "fetch", "-q")
    assert git(clone, "rev-parse", INDEX).strip() == git(bare, "rev-parse", INDEX).strip()
    assert listing(clone) == listing(repo)


def _forge(bare: Path, files: dict[str, bytes], trees: tuple[str, ...] = ()) -> str:
    """Point the remote's index at a commit whose tree holds *files* (and empty-named
    subtrees at *trees*), as a hostile pusher could."""
    with GitRepo(str(bare)) as g:
        entries = {path: (MODE_FILE, g.write_blob(data)) for path, data in files.items()}
        for path in trees:
            entries[f"{path}/x"] = (MODE_FILE, g.write_blob(b"x\n"))
        commit = g.write_commit(g.write_tree(entries), [], "forged index\n")
        update_ref(g, INDEX, read_ref(g, INDEX), commit, "test: forged")
    return commit


def _row_line(row: dict[str, Any]) -> bytes:
    return fmt.encode_shard([fmt.encode_row(row)])


def test_a_lying_row_is_corrected_on_a_later_listing(
    repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare = _bare(tmp_path)
    liar, honest = record(repo, 2)
    sharing.push(repo, str(bare))
    with GitRepo(str(bare)) as g:
        row = dict(remote_rows(bare, repo)[tip(repo, liar)])
        row["params"] = {"i": 999}
        update_ref(
            g,
            INDEX,
            read_ref(g, INDEX),
            build_index(g, read_ref(g, INDEX), {row["commit"]: row}) or "",
            None,
        )
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    sharing.fetch(other, str(bare))
    refs_before = git(other, "for-each-ref")
    first = json.loads(listing(other))
    assert {r["id"]: r["params"]["i"] for r in first} == {liar: 999, honest: 1}
    with gitxp.open(other) as r:
        assert r.run(liar).params == {"i": 0}  # a run itself is always read from its files
    with caplog.at_level(logging.WARNING, logger="gitxp"):
        assert listing(other) == listing(repo)
    lies = [rec.getMessage() for rec in caplog.records if "unlike its files" in rec.getMessage()]
    assert len(lies) == 1 and liar in lies[0]
    assert git(other, "for-each-ref") == refs_before


def test_a_hostile_index_never_moves_a_ref_nor_shows_a_wrong_run(
    repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = _bare(tmp_path)
    ids = record(repo, 4)
    sharing.push(repo, str(bare))
    rows = remote_rows(bare, repo)
    by_id = {row["id"]: row for row in rows.values()}
    garbage, ghost, big, misplaced = ids
    ghost_row = dict(by_id[ghost], commit="1" * 40, name="not-a-run")
    padding = [
        dict(by_id[big], id=by_id[big]["id"][:-4] + f"{i:02d}" + big[-2:], commit=f"{i:040x}")
        for i in range(60)
    ]
    files = {
        fmt.MANIFEST_FILE: fmt.manifest(),
        f"shards/{fmt.shard_of(garbage)}": b'{"id": "' + garbage.encode() + b'", oops\n',
        f"shards/{fmt.shard_of(ghost)}": fmt.encode_shard(
            [fmt.encode_row(by_id[ghost]), fmt.encode_row(ghost_row)]
        ),
        f"shards/{fmt.shard_of(big)}": fmt.encode_shard(
            [fmt.encode_row(r) for r in [by_id[big], *padding]]
        ),
        # a row filed under a shard that is not its run's
        "shards/zz.jsonl": _row_line(by_id[misplaced]),
        "shards/README": b"extra file\n",
        "notes/evil.sh": b"rm -rf /\n",
    }
    _forge(bare, files, trees=("shards/00.jsonl",))
    with GitRepo(str(bare)) as g:
        update_ref(g, "refs/gitxp/index/other", None, read_ref(g, INDEX) or "", None)
    monkeypatch.setenv("GITXP_MAX_JSON_BYTES", "20000")
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    with caplog.at_level(logging.WARNING, logger="gitxp"):
        sharing.fetch(other, str(bare))
        refs = git(other, "for-each-ref", "--format=%(refname)").split()
        assert sorted(refs) == sorted([INDEX, *(f"refs/gitxp/runs/{i}" for i in ids)])
        fsck(other)
        assert listing(other) == listing(repo)
        assert "not-a-run" not in listing(other)
    skipped = [rec.getMessage() for rec in caplog.records if "skipped" in rec.getMessage()]
    assert len(skipped) == 1
    assert fmt.shard_of(garbage) in skipped[0] and fmt.shard_of(big) in skipped[0]


def test_an_index_of_a_newer_format_or_no_index_at_all_is_ignored(
    repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare = _bare(tmp_path)
    ids = record(repo, 2)
    sharing.push(repo, str(bare))
    rows = remote_rows(bare, repo)
    lie = {c: dict(r, name="from-the-future") for c, r in rows.items()}
    _forge(
        bare,
        {
            fmt.MANIFEST_FILE: b'{"format": 2}\n',
            **{f"shards/{fmt.shard_of(r['id'])}": _row_line(r) for r in lie.values()},
        },
    )
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    with caplog.at_level(logging.WARNING, logger="gitxp"):
        sharing.fetch(other, str(bare))
        assert listing(other) == listing(repo)
    assert any("format 2" in rec.getMessage() for rec in caplog.records)
    assert sorted(run_refs(other)) == sorted(f"refs/gitxp/runs/{i}" for i in ids)


def test_an_index_ref_naming_a_blob_is_ignored_and_the_runs_still_arrive(
    repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare = _bare(tmp_path)
    ids = record(repo, 2)
    sharing.push(repo, str(bare))
    blob = git(bare, "hash-object", "-w", "--stdin", input="not an index\n").strip()
    git(bare, "update-ref", INDEX, blob)
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    with caplog.at_level(logging.WARNING, logger="gitxp"):
        results = sharing.fetch(other, str(bare))
    assert {r.status for r in results} == {"new"}
    assert git(other, "for-each-ref", "--format=%(refname)", "refs/gitxp/index/") == ""
    assert any("ignored the listing index" in rec.getMessage() for rec in caplog.records)
    assert listing(other) == listing(repo)
    # and the next push from here builds a proper index over it
    sharing.push(repo, str(bare), reindex=True)
    assert len(remote_rows(bare, repo)) == len(ids)
    fsck(bare)
