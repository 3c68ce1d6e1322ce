"""gitxp writers against git's own maintenance (and `gitxp gc`), with real processes.

Each test runs the real `git repack -ad`, `git gc`, `git pack-refs`,
`git prune-packed` (or what it does to a fan-out directory) next to real
gitxp processes, then checks `git fsck --strict`, that every edit a command
acknowledged is there, and that no run is lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import fsck, git
from tests.workflows_util import GITXP, child_env
from tests.workflows_util import gitxp as run_gitxp


def _script(tmp: Path, name: str, body: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(body))
    return path


def _spawn(script: Path, cwd: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(**env),
    )


def _record_runs(repo: Path, n: int) -> list[str]:
    ids = []
    os.environ["GITXP_START_DELAY"] = "0"
    try:
        for i in range(n):
            with gitxp.start_run(name=f"r{i}", params={"i": i}, snapshot=False) as run:
                run.log_metric("loss", 1.0 / (i + 1), step=0)
            ids.append(run.id)
    finally:
        del os.environ["GITXP_START_DELAY"]
    return ids


# -- item 8: a fan-out directory removed under a writer ------------------------------

SPIN_RMDIR = """
import os, sys, time
objects = sys.argv[1]
dirs = [os.path.join(objects, f"{i:02x}") for i in range(256)]
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    for d in dirs:  # what `git prune-packed` does to every fan-out directory it empties
        try:
            os.rmdir(d)
        except OSError:
            pass
"""

WRITE_BLOBS = """
import sys
from gitxp.git.repository import GitRepo
git = GitRepo(sys.argv[1])
n = int(sys.argv[2])
for i in range(n):
    git.write_blob(b"blob %d of the writer\\n" % i)
print("wrote", n)
"""


def test_loose_writes_survive_fanout_directories_vanishing(repo: Path, tmp_path: Path) -> None:
    spinner = _spawn(_script(tmp_path, "spin.py", SPIN_RMDIR), repo, ".git/objects", "20")
    try:
        time.sleep(0.2)
        writer = _spawn(_script(tmp_path, "write.py", WRITE_BLOBS), repo, str(repo), "2500")
        _out, err = writer.communicate(timeout=60)
    finally:
        spinner.kill()
        spinner.wait()
    assert writer.returncode == 0, err[-2000:]
    missing = [
        i
        for i in range(0, 2500, 97)
        if git(repo, "cat-file", "-t", _blob_id(b"blob %d of the writer\n" % i), check=False)
        != "blob\n"
    ]
    assert missing == []
    fsck(repo)


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.mark.slow
def test_run_writers_survive_real_prune_packed_and_repack(repo: Path, tmp_path: Path) -> None:
    writer_src = """
    import os, sys
    import gitxp
    for r in range(int(sys.argv[1])):
        with gitxp.start_run(name=f"w{os.getpid()}-{r}", snapshot=False) as run:
            for step in range(40):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
                run.checkpoint()
    print("done")
    """
    script = _script(tmp_path, "writer.py", writer_src)
    writers = [_spawn(script, repo, "6", GITXP_START_DELAY="0") for _ in range(2)]
    rounds = 0
    while any(w.poll() is None for w in writers):
        for cmd in (["repack", "-ad"], ["prune-packed"], ["gc", "--quiet"]):
            git(repo, *cmd, check=False)
        rounds += 1
    for w in writers:
        _out, err = w.communicate()
        assert w.returncode == 0, err[-2000:]
    assert rounds >= 2
    rows = gitxp.open(repo).runs()
    assert len(rows) == 12 and set(rows["status"]) == {"FINISHED"}
    assert all(len(gitxp.open(repo).run(i).metric_history("loss")) == 40 for i in rows["id"])
    fsck(repo)


# -- item 7: a run's snapshot before its ref exists ----------------------------------

DELAYED_RUN = """
import os, sys, time
import gitxp
run = gitxp.start_run(name="delayed", checkpoint_seconds=120)
print(json.dumps({"id": run.id, "code": run.code_commit}), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
run.log_metric("acc", 0.5, step=1)
run.end()
print("ended", flush=True)
""".replace("import os, sys, time", "import json, os, sys, time")


@pytest.mark.parametrize(
    "maintenance",
    [
        [["gitxp", "gc"], ["git", "repack", "-a", "-d"]],
        [["git", "gc", "--prune=now", "--quiet"]],
    ],
    ids=["gitxp-gc-then-git-repack-ad", "git-gc-prune-now"],
)
def test_snapshot_of_a_run_in_its_start_delay_survives_maintenance(
    repo: Path, tmp_path: Path, maintenance: list[list[str]]
) -> None:
    (repo / "train.py").write_text("print('changed, so the run gets a snapshot commit')\n")
    (repo / "new_file.py").write_text("x = 1\n")
    go = tmp_path / "go"
    writer = _spawn(
        _script(tmp_path, "delayed.py", DELAYED_RUN), repo, str(go), GITXP_START_DELAY="60"
    )
    assert writer.stdout is not None
    line = writer.stdout.readline()
    assert line, writer.communicate()[1]
    info = json.loads(line)
    # the run is in its start delay: no run ref yet, only the snapshot commit
    assert git(repo, "for-each-ref", "refs/gitxp/runs/") == ""
    for cmd in maintenance:
        if cmd[0] == "gitxp":
            result = run_gitxp(repo, *cmd[1:])
            assert result.returncode == 0, result.stderr
        else:
            git(repo, *cmd[1:])
    go.write_text("go")
    _out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert git(repo, "cat-file", "-t", info["code"], check=False) == "commit\n"
    record = gitxp.open(repo).run(info["id"])
    assert record.status == "FINISHED" and record.code_commit == info["code"]
    assert record.env  # the environment blob, written with the first commit
    assert git(repo, "for-each-ref", "refs/gitxp/pending/") == ""  # the pin is gone
    fsck(repo)
    git(repo, "gc", "--quiet")  # and git's own gc keeps working afterwards


# -- item 6: ref packing against concurrent edits ------------------------------------

# At least N edits and at least 3 s of editing: a faster gitxp must not end the
# edits before the packers have had several rounds against them.
TAGGER = """
import json, sys, time
import gitxp
from gitxp.ops.manage import tag
ids = sys.argv[2:]
n = int(sys.argv[1])
end = time.monotonic() + 3.0
i = 0
while i < n or time.monotonic() < end:
    run = ids[i % len(ids)]
    tag(run, {"n": str(i)})
    print(json.dumps([run, str(i)]), flush=True)
    i += 1
"""

GC_LOOP = """
import sys, time
from gitxp.ops.manage import gc
end = time.monotonic() + float(sys.argv[1])
rounds = 0
while time.monotonic() < end:
    gc(repack=False)
    rounds += 1
print(rounds)
"""


def test_an_edit_made_while_gc_packs_refs_is_kept(repo: Path, tmp_path: Path) -> None:
    """Deterministic: 4,000 other loose refs keep `gitxp gc` packing for a while; the
    edit starts the moment gc takes packed-refs.lock (watched from outside)."""
    (run_id,) = _record_runs(repo, 1)
    head = git(repo, "rev-parse", "HEAD").strip()
    fill = "".join(
        f"create refs/gitxp/fill/d{d:02d}/r{i:04d} {head}\n" for d in range(10) for i in range(400)
    )
    git(repo, "update-ref", "--stdin", input=fill)
    lock = repo / ".git" / "packed-refs.lock"
    gc_proc = subprocess.Popen(
        [*GITXP, "gc", "--no-repack"], cwd=repo, env=child_env(), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not lock.exists():
        assert gc_proc.poll() is None, gc_proc.communicate()[1]
        assert time.monotonic() < deadline, "gc never took packed-refs.lock"
    from gitxp.ops.manage import tag

    error = None
    try:
        tag(run_id, {"during": "gc"})
    except gitxp.GitxpError as exc:  # the edit must not fail because gc is packing
        error = exc
    _, err = gc_proc.communicate(timeout=120)
    assert gc_proc.returncode == 0, err
    assert error is None, f"tag failed while gc packed refs: {error}"
    assert gitxp.open(repo).run(run_id).tags == {"during": "gc"}, "the acknowledged edit is lost"
    assert "refs/gitxp/runs/" + run_id in (repo / ".git" / "packed-refs").read_text()
    fsck(repo)


@pytest.mark.slow
def test_acknowledged_edits_survive_concurrent_ref_packing(repo: Path, tmp_path: Path) -> None:
    # many runs, each edited in turn: every `gitxp gc` pass finds many loose refs to
    # pack, while the taggers keep moving them
    ids = _record_runs(repo, 60)
    tagger = _script(tmp_path, "tagger.py", TAGGER)
    taggers = [_spawn(tagger, repo, "45", *ids[k::2]) for k in range(2)]
    packer = _spawn(_script(tmp_path, "gc.py", GC_LOOP), repo, "1000")
    acked: dict[str, str] = {}
    git_rounds = 0
    try:
        while any(t.poll() is None for t in taggers):
            time.sleep(0.3)
            git(repo, "pack-refs", "--all", check=False)  # git's own packing, as `git gc` does
            git_rounds += 1
        for t in taggers:
            out, err = t.communicate()
            assert t.returncode == 0, err[-3000:]
            for line in out.splitlines():
                run, value = json.loads(line)
                acked[run] = value
    finally:
        packer.kill()
        packer.wait()
    assert len(acked) == len(ids) and git_rounds > 3
    found = {r.id: r.tags.get("n") for r in (gitxp.open(repo).run(i) for i in ids)}
    lost = {run: (value, found[run]) for run, value in acked.items() if found[run] != value}
    assert lost == {}, f"acknowledged tag edits lost: {lost}"
    fsck(repo)


# -- item 9: locks left by a killed gc -----------------------------------------------


def _pack_name_of_all_objects(repo: Path) -> str:
    """The name dulwich gives a pack of every object in *repo* (sha1 of the sorted ids)."""
    ids = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split()
    return hashlib.sha1(b"".join(bytes.fromhex(i) for i in sorted(ids))).hexdigest()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_gc_clears_provably_stale_locks_and_names_live_ones(repo: Path) -> None:
    ids = _record_runs(repo, 3)
    pack_dir = repo / ".git" / "objects" / "pack"
    pack_dir.mkdir(parents=True, exist_ok=True)
    idx_lock = pack_dir / f"pack-{_pack_name_of_all_objects(repo)}.idx.lock"
    idx_lock.write_bytes(b"")  # what a gc killed while writing its pack index leaves
    packed_lock = repo / ".git" / "packed-refs.lock"
    packed_lock.write_text("")

    # young: not provably stale; gc says which lock and how old, and does not crash
    result = run_gitxp(repo, "gc")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"objects/pack/{idx_lock.name}" in result.stderr and " s old" in result.stderr

    # two hours untouched: stale by age; both are removed, and gc does all its work
    _age(idx_lock, 7200)
    _age(packed_lock, 7200)
    result = run_gitxp(repo, "gc", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {c.split(" ")[0] for c in report["locks_cleared"]} == {
        f"objects/pack/{idx_lock.name}",
        "packed-refs.lock",
    }
    assert report["refs_packed"] == 3 and report["refs_skipped"] is None
    assert report["packs_after"] == 1
    assert not idx_lock.exists() and not packed_lock.exists()

    # a ref lock left by a killed `gitxp gc` names its process: stale as soon as it is gone
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    ref_lock = repo / ".git" / "refs" / "gitxp" / "runs" / f"{ids[0]}.lock"
    ref_lock.parent.mkdir(parents=True, exist_ok=True)
    ref_lock.write_text(f"gitxp {dead.pid} {socket.gethostname()}\n")
    report = gitxp.gc()
    assert [c.split(" ")[0] for c in report.locks_cleared] == [f"refs/gitxp/runs/{ids[0]}.lock"]
    from gitxp.ops.manage import tag

    assert tag(ids[0], {"after": "gc"}) == {"after": "gc"}
    fsck(repo)


def test_gc_keeps_a_live_pin_and_drops_one_a_killed_run_left(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text("print('dirty')\n")
    writer = _spawn(
        _script(tmp_path, "delayed.py", DELAYED_RUN),
        repo,
        str(tmp_path / "never"),
        GITXP_START_DELAY="60",
    )
    assert writer.stdout is not None
    info = json.loads(writer.stdout.readline())
    writer.kill()  # SIGKILL in the start delay: the run never gets its ref
    writer.wait()
    pin = repo / ".git" / "refs" / "gitxp" / "pending" / info["id"]
    assert pin.read_text().strip() == info["code"]
    gitxp.gc()
    assert pin.exists()  # young: it could be a live run's
    _age(pin, 2 * 86_400)
    gitxp.gc()
    assert git(repo, "for-each-ref", "refs/gitxp/pending/") == ""
    assert git(repo, "cat-file", "-t", info["code"]) == "commit\n"  # loose: git's grace applies
    fsck(repo)
