"""Bounded reads of hostile runs (gitxp issue 16, items 1-3 follow-ups).

The bomb is a 2 GiB blob of zeros that deflates to 2 MB, stored as one run's
run.json, notes.md, output.log and artifacts.json: loose (the object file is
written here, its id the real sha1 of the content) and packed (a pack and
index written here, which real git reads back as a 2 GiB blob: packing it
with `git repack` would take git half a minute to deflate). A smaller
hostile file goes through a real `git repack -ad`, deltas included. Bomb
reads run in a child process capped at 1.5 GiB of address space, so the
machine is safe whatever the code under test does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.faults.hostile import (
    ROOT,
    RUNS,
    capped,
    make_project,
    record,
    replace_blob,
    replace_file,
)
from tests.gitutil import GIT_ENV, git

CAP = 1536 << 20
BOMB = 2 << 30
CHUNK = 4 << 20
FILES = ("run.json", "notes.md", "output.log", "artifacts.json")


def _deflated_zeros() -> tuple[str, bytes, bytes]:
    """The bomb: the sha1 of a blob of BOMB zero bytes, its loose object file (zlib of
    header and body) and its pack entry's zlib stream (body alone), made in one pass.

    Each chunk is deflated after a full flush, which resets the compressor, so
    one chunk's output stands for all of them; the sha1 and zlib's adler32
    checksums are computed as the chunks stream past.
    """
    zeros, header = bytes(CHUNK), b"blob %d\0" % BOMB
    streams = []
    for prefix in (header, b""):
        packer = zlib.compressobj(9)
        first = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
        streams.append((first, packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)))
    sha, adlers = hashlib.sha1(header), [zlib.adler32(header), zlib.adler32(b"")]
    for _ in range(BOMB // CHUNK):
        sha.update(zeros)
        adlers = [zlib.adler32(zeros, a) for a in adlers]
    loose, packed = (
        first + block * (BOMB // CHUNK) + b"\x03\x00" + struct.pack(">I", adler)
        for (first, block), adler in zip(streams, adlers, strict=True)
    )  # b"\x03\x00": an empty final block; then the checksum
    return sha.hexdigest(), loose, packed


def write_loose_bomb(repo: Path, sha: str, data: bytes) -> None:
    directory = repo / ".git" / "objects" / sha[:2]
    directory.mkdir(exist_ok=True)
    (directory / sha[2:]).write_bytes(data)


def write_packed_bomb(repo: Path, sha: str, stream: bytes) -> None:
    """A pack holding only the bomb blob, and its version-2 index."""
    size, header = BOMB >> 4, [0x80 | (3 << 4) | (BOMB & 0x0F)]
    while size:
        header.append((size & 0x7F) | (0x80 if size >> 7 else 0))
        size >>= 7
    entry = bytes(header) + stream
    pack = b"PACK" + struct.pack(">II", 2, 1) + entry
    pack += hashlib.sha1(pack).digest()
    raw = bytes.fromhex(sha)
    fanout = b"".join(struct.pack(">I", int(raw[0] <= i)) for i in range(256))
    index = b"\xfftOc" + struct.pack(">I", 2) + fanout + raw
    index += struct.pack(">II", zlib.crc32(entry), 12) + pack[-20:]
    index += hashlib.sha1(index).digest()
    name = hashlib.sha1(pack[:-20]).hexdigest()
    (repo / ".git" / "objects" / "pack" / f"pack-{name}.pack").write_bytes(pack)
    (repo / ".git" / "objects" / "pack" / f"pack-{name}.idx").write_bytes(index)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("read-bounds")
    loose = make_project(base / "loose")
    ids = {name: record(loose, name) for name in ("good", *FILES)}
    sha, loose_data, pack_stream = _deflated_zeros()
    write_loose_bomb(loose, sha, loose_data)
    for name in FILES:
        replace_blob(loose, ids[name], name, sha)
    packed = base / "packed"
    shutil.copytree(loose, packed, symlinks=True)
    (packed / ".git" / "objects" / sha[:2] / sha[2:]).unlink()
    (packed / ".git" / "objects" / "pack").mkdir(exist_ok=True)
    write_packed_bomb(packed, sha, pack_stream)
    for repo in (loose, packed):  # real git sees a 2 GiB blob, without inflating it
        assert git(repo, "cat-file", "-s", sha).strip() == str(BOMB)
    assert not (packed / ".git" / "objects" / sha[:2] / sha[2:]).exists()
    return loose, packed, ids


READ_ALL = """
    import json, gitxp
    from gitxp import CorruptRunError
    repo = gitxp.open(".")
    ids = json.loads({ids!r})
    rows = {{r["id"]: r for r in repo.rows()}}
    for name, rid in ids.items():
        print(name, rows[rid]["status"], (rows[rid].get("corrupt") or "")[:160])
    reads = {{"notes.md": lambda r: r.notes, "output.log": lambda r: r.output,
             "artifacts.json": lambda r: r.artifacts()}}
    for name, read in reads.items():
        try:
            read(repo.run(ids[name]))
        except CorruptRunError as exc:
            print("refused", name, str(exc)[:200])
        else:
            print("read", name)
    print(repo.run(ids["good"]).notes == "", len(repo.run(ids["good"]).metrics()))
    print("peak rss kB", open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["loose", "packed"])
def test_a_zlib_bomb_is_refused_before_inflating(
    bombs: tuple[Path, Path, dict[str, str]], where: str
) -> None:
    loose, packed, ids = bombs
    path = loose if where == "loose" else packed
    result = capped(path, CAP, READ_ALL.format(ids=json.dumps(ids)))
    assert result.returncode == 0, result.stderr[-1500:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("good FINISHED"), lines
    # run.json is read by the listing: that run is CORRUPT, with the file and the limit named
    assert lines[1].startswith("run.json CORRUPT run.json inflates to 2,147,483,648 bytes")
    assert "GITXP_MAX_JSON_BYTES" in lines[1]
    assert all(line.split()[1] == "FINISHED" for line in lines[2:5]), lines
    for line, name in zip(lines[5:8], FILES[1:], strict=True):
        assert line.startswith(f"refused {name} run {ids[name]}"), line
        assert "2,147,483,648 bytes" in line
    assert lines[8] == "True 5"
    assert int(lines[9].split()[-1]) < 300_000  # kB: nothing near the 2 GiB was allocated


@pytest.mark.slow
def test_show_of_a_bombed_run_is_one_line(bombs: tuple[Path, Path, dict[str, str]]) -> None:
    loose, _, ids = bombs
    shown = capped(loose, CAP, "", "show", ids["notes.md"])
    assert shown.returncode == 1, shown.stderr[-1500:]
    assert len(shown.stderr.strip().splitlines()) == 1
    assert "notes.md inflates to 2,147,483,648 bytes" in shown.stderr
    listed = capped(loose, CAP, "", "log", "--format", "json")
    assert listed.returncode == 0, listed.stderr[-1500:]
    statuses = {r["id"]: r["status"] for r in json.loads(listed.stdout)}
    assert statuses[ids["run.json"]] == "CORRUPT" and statuses[ids["good"]] == "FINISHED"


def test_limits_hold_in_packs_git_made_with_deltas(tmp_path: Path) -> None:
    """Objects packed by `git repack -ad`, whole and as deltas, are read under the limit
    and refused over it, before anything is inflated."""
    from gitxp.errors import ObjectTooLargeError
    from gitxp.git.repository import GitRepo

    path = make_project(tmp_path / "p")
    big = json.dumps({"id": "x", "pad": "a" * 600_000}).encode()
    similar = big[:-3] + b'b"}'  # git stores one of these two as a delta of the other
    first = git(path, "hash-object", "-w", "--stdin", input=big.decode()).strip()
    second = git(path, "hash-object", "-w", "--stdin", input=similar.decode()).strip()
    tree = git(path, "mktree", input=f"100644 blob {first}\ta\n100644 blob {second}\tb\n").strip()
    git(path, "update-ref", "refs/keep", tree)
    git(path, "repack", "-adq")
    assert "count: 0" in git(path, "count-objects", "-v")  # nothing loose left
    idx = [str(p) for p in (path / ".git/objects/pack").glob("*.idx")]
    verify = git(path, "verify-pack", "-v", *idx).splitlines()
    deltas = [line for line in verify if line[:40] in (first, second) and len(line.split()) > 5]
    assert deltas, verify  # one is stored as a delta (its line names a depth and a base)
    with GitRepo(str(path)) as repo:
        assert repo.read_blob(first, limit=len(big)) == big
        assert repo.read_blob(second, limit=len(similar)) == similar
        for sha in (first, second):
            with pytest.raises(ObjectTooLargeError) as info:
                repo.read_blob(sha, limit=len(big) - 1)
            assert info.value.size == len(big) and sha in str(info.value)


def test_a_run_file_over_the_limit_in_a_pack_makes_that_run_corrupt(tmp_path: Path) -> None:
    path = make_project(tmp_path / "p")
    good, bad = record(path, "good"), record(path, "bad")
    meta = json.loads(git(path, "show", f"{RUNS}{bad}:run.json"))
    replace_file(path, bad, "run.json", json.dumps({**meta, "pad": " " * 70_000}).encode())
    git(path, "repack", "-adq")
    env = {**os.environ, "GITXP_MAX_JSON_BYTES": "64K", "PYTHONPATH": ROOT}
    out = subprocess.run(
        [sys.executable, "-m", "gitxp", "log", "--format", "json"],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rows = {r["id"]: r for r in json.loads(out.stdout)}
    assert rows[good]["status"] == "FINISHED"
    assert rows[bad]["status"] == "CORRUPT"
    assert "over the 65,536-byte limit (GITXP_MAX_JSON_BYTES)" in rows[bad]["corrupt"]


# -- artifacts.json (item 2) ----------------------------------------------------------------------
def _file(path: str, **extra: object) -> dict[str, object]:
    data = b"payload"
    return {
        "path": path,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "mode": "100644",
        "location": "tree",
        **extra,
    }


HOSTILE_MANIFESTS = {
    "parent": ("x", [_file("x/../../escaped.txt")], "not a safe path"),
    "absolute": ("x", [_file("/tmp/escaped-gitxp.txt")], "not a safe path"),
    "git dir": ("x", [_file("x/.GIT/config")], "not a safe path"),
    "nul": ("x", [_file("x/a\x00b")], "not a safe path"),
    "control": ("x", [_file("x/a\nb")], "not a safe path"),
    "backslash": ("x", [_file("x\\..\\..\\escaped.txt")], "not a safe path"),
    "other artifact": ("x", [_file("y/escaped.txt")], "not a safe path"),
    "name": ("../x", [_file("../x")], "not a safe relative path"),
    "negative size": ("x", [_file("x", size=-1)], "ill-typed size"),
    "sha256": ("x", [_file("x", sha256="zz" * 32)], "ill-typed sha256"),
    "no sha256": (
        "x",
        [{"path": "x", "size": 1, "location": "tree"}],
        "missing or ill-typed sha256",
    ),
    "files": ("x", "x", "not a file or directory record"),
}


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A project with a good run and one run per hostile manifest."""
    path = make_project(tmp_path_factory.mktemp("manifests") / "p")
    # run names may not need shell quoting: "git dir" is recorded as git-dir
    ids = {
        case: record(path, case.replace(" ", "-"), points=1)
        for case in ("good", *HOSTILE_MANIFESTS)
    }
    for case, (name, files, _) in HOSTILE_MANIFESTS.items():
        manifest = {"format": 1, "artifacts": {name: {"type": "file", "size": 7, "files": files}}}
        replace_file(path, ids[case], "artifacts.json", json.dumps(manifest).encode())
    return path, ids


def _gitxp(path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-m", "gitxp", *argv], cwd=path, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("case", sorted(HOSTILE_MANIFESTS))
def test_a_hostile_manifest_fails_show_and_download_in_one_line(
    manifests: tuple[Path, dict[str, str]], tmp_path: Path, case: str
) -> None:
    path, ids = manifests
    bad, reason = ids[case], HOSTILE_MANIFESTS[case][2]
    target = tmp_path / "out" / "to"
    for argv in (["show", bad], ["artifacts", "get", bad, "--to", str(target)]):
        out = _gitxp(path, *argv)
        assert out.returncode == 1, out.stdout + out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert f"run {bad} is not a valid gitxp run (artifacts.json" in out.stderr
        assert reason in out.stderr, out.stderr
    assert list((tmp_path / "out").rglob("*")) in ([], [target])  # nothing written
    assert not Path("/tmp/escaped-gitxp.txt").exists()


def test_runs_beside_a_hostile_manifest_are_unaffected(
    manifests: tuple[Path, dict[str, str]],
) -> None:
    path, ids = manifests
    assert _gitxp(path, "show", ids["good"]).returncode == 0
    listed = _gitxp(path, "log", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert {r["status"] for r in json.loads(listed.stdout)} == {"FINISHED"}


# -- rm of unreadable runs (item 3) ---------------------------------------------------------------
@pytest.mark.slow
def test_rm_moves_each_kind_of_unreadable_run_to_the_trash_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_project(tmp_path / "p")
    kinds = ("bad-time", "params-list", "deep", "no-run-json", "oversized", "future")
    ids = {kind: record(path, kind, points=1) for kind in ("good", *kinds)}
    meta = json.loads(git(path, "show", f"{RUNS}{ids['bad-time']}:run.json"))
    replace_file(
        path, ids["bad-time"], "run.json", json.dumps({**meta, "start_time": "x"}).encode()
    )
    replace_file(path, ids["params-list"], "params.json", b"[1, 2, 3]")
    replace_file(path, ids["deep"], "params.json", b'{"lr": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    tree = git(path, "ls-tree", f"{RUNS}{ids['no-run-json']}").splitlines()
    kept = "".join(line + "\n" for line in tree if not line.endswith("\trun.json"))
    tip = git(path, "rev-parse", RUNS + ids["no-run-json"]).strip()
    bare = git(path, "commit-tree", git(path, "mktree", input=kept).strip(), "-p", tip, "-m", "x")
    git(path, "update-ref", RUNS + ids["no-run-json"], bare.strip(), tip)
    meta = json.loads(git(path, "show", f"{RUNS}{ids['oversized']}:run.json"))
    replace_file(
        path, ids["oversized"], "run.json", json.dumps({**meta, "pad": " " * 70_000}).encode()
    )
    meta = json.loads(git(path, "show", f"{RUNS}{ids['future']}:run.json"))
    replace_file(path, ids["future"], "run.json", json.dumps({**meta, "format": 99}).encode())
    monkeypatch.setenv("GITXP_MAX_JSON_BYTES", "64K")  # the 70 KB run.json is over it
    tips = {k: git(path, "rev-parse", RUNS + v).strip() for k, v in ids.items()}
    statuses = {
        r["id"]: r["status"] for r in json.loads(_gitxp(path, "log", "--format", "json").stdout)
    }
    assert [statuses[ids[k]] for k in kinds] == ["CORRUPT"] * 5 + ["FINISHED"]
    removed = _gitxp(path, "rm", *(ids[k] for k in kinds))
    assert removed.returncode == 0, removed.stderr
    listed = _gitxp(path, "log", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [ids["good"]]
    for kind in kinds:  # moved as it was: same commit, files neither read nor rewritten
        assert git(path, "rev-parse", f"refs/gitxp/trash/{ids[kind]}").strip() == tips[kind]
        assert git(path, "show-ref", RUNS + ids[kind], check=False) == ""
    listed_trash = json.loads(_gitxp(path, "rm", "--list", "--format", "json").stdout)
    assert {t["id"] for t in listed_trash} == {ids[k] for k in kinds}
    restored = _gitxp(path, "rm", "--undo", ids["deep"])
    assert restored.returncode == 0, restored.stderr
    assert git(path, "rev-parse", RUNS + ids["deep"]).strip() == tips["deep"]
    kept_trash = _gitxp(path, "gc", "--no-repack", "--format", "json")  # within grace
    assert kept_trash.returncode == 0, kept_trash.stderr
    assert git(path, "for-each-ref", "refs/gitxp/trash/").count("\n") == 5
    dropped = _gitxp(path, "gc", "--grace-days", "0", "--no-repack")
    assert dropped.returncode == 0, dropped.stderr
    assert git(path, "for-each-ref", "refs/gitxp/trash/") == ""
    git(path, "fsck", "--strict")


# -- the validation hook and newer formats (item 4) -----------------------------------------------
def test_the_validate_hook_refuses_a_run_it_cannot_fully_check(tmp_path: Path) -> None:
    path = make_project(tmp_path / "p")
    good, future = record(path, "good", points=1), record(path, "future", points=1)
    assert _gitxp(path, "hook", "validate").returncode == 0
    meta = json.loads(git(path, "show", f"{RUNS}{future}:run.json"))
    replace_file(path, future, "run.json", json.dumps({**meta, "format": 99}).encode())
    checked = _gitxp(path, "hook", "validate")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    out = checked.stdout + checked.stderr
    assert future in out and good not in out and "Traceback" not in out
    assert "format 99, written by a newer gitxp" in out and "upgrade gitxp" in out


SERVE_ARTIFACT = """
    import sys, urllib.error, urllib.request
    from gitxp.ui import UIServer
    server = UIServer(".", port=0).start()
    url = f"http://127.0.0.1:{server.port}/api/artifact?run={sys.argv[1]}&name=weights.bin"
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            print(answer.status, len(answer.read()))
    except urllib.error.HTTPError as exc:
        print(exc.code, exc.read().decode()[:300])
    server.close()
    print("peak rss kB", open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""


@pytest.mark.slow
def test_the_ui_serves_no_artifact_past_its_manifest_size(
    bombs: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    # artifacts.json says 4,096 bytes; the tree's blob is the 2 GiB bomb
    import gitxp

    loose, _, _ = bombs
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(4096))
    with gitxp.start_run(experiment="art", name="art", repo=str(loose), snapshot=False) as run:
        run.log_artifact(weights)
    bomb = _deflated_zeros()[0]
    replace_blob(loose, run.id, "artifacts/weights.bin", bomb)
    result = capped(loose, CAP, SERVE_ARTIFACT, run.id)
    assert result.returncode == 0, result.stderr[-1500:]
    status, _, rest = result.stdout.partition("\n")[0].partition(" ")
    assert status.startswith("4"), result.stdout
    assert "2,147,483,648" in rest, result.stdout
    assert int(result.stdout.splitlines()[-1].split()[-1]) < 300_000  # kB


@pytest.mark.parametrize("size", [1 << 10, 1 << 16, 1 << 20, 1 << 24])
def test_the_one_call_inflate_of_small_objects_never_admits_one_over_the_limit(size: int) -> None:
    # small files are inflated in one call, trusting deflate's ~1032:1 bound; zeros
    # are what deflate shrinks most, so one byte less of limit must still refuse
    from gitxp.errors import ObjectTooLargeError
    from gitxp.git.objects import inflate_loose

    body = bytes(size)
    raw = zlib.compress(b"blob %d\0" % size + body, 9)
    assert inflate_loose(raw, "0" * 40, size)[1] == body
    with pytest.raises(ObjectTooLargeError):
        inflate_loose(raw, "0" * 40, size - 1)
