"""A 100,000-run repository built in bulk, for the measures at scale.

Recording 100,000 runs one by one takes hours; this writes them with one
`git fast-import`: one run is recorded with gitxp itself (so the format is
whatever gitxp writes today), then its commit is repeated N times with each
run's own `run.json` (id, name, experiment, times), `params.json`,
`summary.json` and commit message, sharing the template's `env.json` and
metric part. Every ref is a packed ref, as after `git gc` or a clone.

    python -m benchmarks.scale_fixture 100000

The result is cached under benchmarks/.cache/fixtures/gitxp-scale-<N>.
`ship_index` then adds the listing index `gitxp push` would have shipped
(`refs/gitxp/index/v1`), as a clone of a remote pushed to by gitxp has it;
it only adds files (loose objects, one loose ref), so it is safe on a copy
hard-linked to a shared fixture.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from .common import EXPERIMENTS, ROOT, quiet_env
from .fixtures import FIX, init_project

SCALE_VERSION = 1
BASE_MS = 1_700_000_000_000  # run i starts at BASE_MS + i seconds


def scale_path(n: int) -> str:
    """Where the n-run bulk fixture lives."""
    return os.path.join(FIX, f"gitxp-scale-{n}")


def _git(path: str, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", *args], cwd=path, input=data, capture_output=True, check=True, env=quiet_env()
    ).stdout


def _template(path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Record one real run; its commit id, run.json and {file: blob id} of its tree."""
    env = quiet_env()
    env["PYTHONPATH"] = ROOT  # this checkout's gitxp
    code = (
        "import gitxp\n"
        "with gitxp.start_run(name='template', experiment='baseline', snapshot=False) as r:\n"
        "    r.log_params({'lr': 0.1})\n"
        "    for s in range(100): r.log_metrics({'loss': 1 / (s + 1), 'acc': s / 100}, step=s)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=path, check=True, env=env)
    ref = _git(path, "for-each-ref", "--format=%(refname)", "refs/gitxp/runs").decode().split()[0]
    commit = _git(path, "rev-parse", ref).decode().strip()
    tree = {}
    for line in _git(path, "ls-tree", "-r", commit).decode().splitlines():
        meta, name = line.split("\t", 1)
        tree[name] = meta.split()[2]
    run = json.loads(_git(path, "cat-file", "blob", tree["run.json"]))
    _git(path, "update-ref", "-d", ref)
    return commit, run, tree


def _run_id(ms: int, rnd: random.Random) -> str:
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    head = "".join(alphabet[(ms >> (5 * (9 - k))) & 31] for k in range(10))
    return head + "".join(rnd.choice(alphabet) for _ in range(16))


def _blob(data: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(data), data)


def runs(n: int) -> Iterator[dict[str, Any]]:
    """The n runs of the bulk fixture, in order: what each run's own files hold.

    Each is a dict of `id`, `name`, `experiment`, `start_time`, `end_time` (ms),
    `params` (params.json) and `summary` (summary.json). The MLflow twin of the
    fixture (benchmarks/mlflow_scale_fixture.py) is made from the same sequence.
    """
    rnd = random.Random(n)
    for i in range(n):
        ms = BASE_MS + i * 1000
        run_id = _run_id(ms, rnd)
        params = {
            "lr": round(10 ** rnd.uniform(-4, -1), 6),
            "batch_size": rnd.choice([16, 32, 64, 128]),
            "optimizer": rnd.choice(["adam", "sgd", "adamw"]),
            "layers": rnd.randint(1, 8),
            "dropout": round(rnd.uniform(0, 0.5), 3),
        }
        acc, loss = rnd.uniform(0.5, 0.99), rnd.uniform(0.05, 0.5)
        summary = {
            "acc": {"count": 100, "last": acc, "step": 99, "timestamp": ms + 500, "min": 0.0,
                    "max": acc},
            "loss": {"count": 100, "last": loss, "step": 99, "timestamp": ms + 500, "min": loss,
                     "max": 1.0},
        }  # fmt: skip
        yield {
            "id": run_id,
            "name": f"run-{i:06d}",
            "experiment": EXPERIMENTS[i % len(EXPERIMENTS)],
            "start_time": ms,
            "end_time": ms + 500,
            "params": params,
            "summary": summary,
        }


def _stream(n: int, parent: str, run: dict[str, Any], tree: dict[str, str]) -> bytes:
    """The fast-import input: n commits, each on its own run ref."""
    out: list[bytes] = []
    for spec in runs(n):
        ms, run_id, experiment = spec["start_time"], spec["id"], spec["experiment"]
        meta = dict(run, id=run_id, name=spec["name"], experiment=experiment)
        meta.update(start_time=ms, end_time=spec["end_time"], status="FINISHED")
        message = (
            f"gitxp: run {spec['name']} FINISHED in 0.5s ({experiment})\n\n"
            f"Gitxp-Run: {run_id}\nGitxp-Status: FINISHED\n"
        ).encode()
        out.append(b"commit refs/gitxp/runs/%s\n" % run_id.encode())
        out.append(b"committer bench <bench@example.com> %d +0000\n" % (ms // 1000))
        out.append(_blob(message))
        out.append(b"from %s\n" % parent.encode())
        for name, blob in tree.items():
            if name not in ("run.json", "params.json", "summary.json"):
                out.append(b"M 100644 %s %s\n" % (blob.encode(), name.encode()))
        files = (
            ("run.json", meta),
            ("params.json", spec["params"]),
            ("summary.json", spec["summary"]),
        )
        for name, value in files:
            out.append(b"M 100644 inline %s\n" % name.encode())
            out.append(_blob(json.dumps(value, indent=2).encode()))
        out.append(b"\n")
    return b"".join(out)


def build(n: int, path: str | None = None) -> str:
    """Build (or reuse) the n-run bulk fixture; its path (*path*: elsewhere than the cache)."""
    path = path or scale_path(n)
    marker = os.path.join(path, ".bench-complete")
    try:
        with open(marker) as f:
            if json.load(f) == {"version": SCALE_VERSION, "runs": n}:
                return path
    except (OSError, ValueError):
        pass
    subprocess.run(["rm", "-rf", path], check=True)
    init_project(path)
    started = time.perf_counter()
    template, run, tree = _template(path)
    parent = _git(path, "rev-parse", f"{template}^").decode().strip()
    _git(path, "fast-import", "--quiet", "--done", data=_stream(n, parent, run, tree) + b"done\n")
    _git(path, "pack-refs", "--all")
    _git(path, "gc", "-q")
    with open(marker, "w") as f:
        json.dump({"version": SCALE_VERSION, "runs": n}, f)
    print(f"built {n:,} runs in {time.perf_counter() - started:.1f}s: {path}", file=sys.stderr)
    return path


def _row(
    run_id: str,
    commit: str,
    meta: dict[str, Any],
    params: dict[str, Any],
    summary: dict[str, Any],
    notes: bool,
) -> dict[str, Any]:
    """The listing row gitxp reads from these files (`gitxp.store.record.read_row`)."""
    from gitxp.format.schema import LISTED_META

    row = {k: meta.get(k) for k in ("status", *LISTED_META)}
    row.update(
        id=run_id,
        dirty=meta.get("dirty", False),
        supervised=bool(meta.get("supervised")),
        commit=commit,
        params=params,
        tags=meta.get("tags") or {},
        notes=notes,
        metrics={k: s["last"] for k, s in summary.items()},
    )
    return row  # fmt: skip


def ship_index(n: int) -> str:
    """Add to the n-run fixture the listing index `gitxp push` ships; its commit id.

    The rows are written by gitxp's own index writer (what `gitxp push` calls)
    from the files the fixture generated, not read back from 100,000 runs.
    """
    from gitxp.format.listing_index import INDEX_REF
    from gitxp.git.refs import read_ref, update_ref
    from gitxp.git.repository import GitRepo
    from gitxp.store.shipped_index import build_index

    path = scale_path(n)
    with GitRepo(path) as git:
        done = read_ref(git, INDEX_REF)
        if done is not None:
            return done
        refs = dict(
            line.split()[::-1]
            for line in _git(path, "for-each-ref", "--format=%(objectname) %(refname)",
                             "refs/gitxp/runs/").decode().splitlines()
        )  # fmt: skip
        first = next(iter(refs.values()))
        run = json.loads(_git(path, "cat-file", "blob", f"{first}:run.json"))
        notes = b"notes.md" in _git(path, "ls-tree", "--name-only", first)
        rows = {}
        for spec in runs(n):
            run_id = spec["id"]
            meta = dict(run, id=run_id, name=spec["name"], experiment=spec["experiment"])
            meta.update(start_time=spec["start_time"], end_time=spec["end_time"])
            meta["status"] = "FINISHED"
            commit = refs["refs/gitxp/runs/" + run_id]
            rows[commit] = _row(run_id, commit, meta, spec["params"], spec["summary"], notes)
        started = time.perf_counter()
        sha = build_index(git, None, rows)
        assert sha is not None
        update_ref(git, INDEX_REF, None, sha, "benchmarks: the index gitxp push ships")
    print(f"shipped index of {n:,} runs in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return sha


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["100000"]:
        build(int(arg))
