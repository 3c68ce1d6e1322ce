"""Building hostile runs with git plumbing: a real recorded run with one file of its tree replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.gitutil import GIT_ENV, git

RUNS = "refs/gitxp/runs/"
ROOT = str(Path(__file__).resolve().parents[2])


def capped(path: Path, cap: int, code: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run *code* (or `gitxp ARGV` when code is empty) in *path*, in a child process whose
    address space is limited to *cap* bytes: a read that would allocate more dies there."""
    prelude = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))\n"
    if not code:
        code = "import sys; from gitxp.cli.main import main; sys.exit(main())"
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code), *argv],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _git_bytes(repo: Path, *args: str, data: bytes) -> str:
    out = subprocess.run(
        ["git", *args],
        cwd=repo,
        input=data,
        capture_output=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return out.stdout.decode().strip()


def make_project(path: Path) -> Path:
    """A git repository with one commit, ready to record runs."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('training')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def record(path: Path, name: str, experiment: str = "exp", points: int = 5) -> str:
    """Record a real run (params lr, metric acc) and return its id."""
    import gitxp

    with gitxp.start_run(experiment=experiment, name=name, params={"lr": 0.1}, repo=str(path)) as r:
        for i in range(points):
            r.log_metric("acc", 0.5 + i / 100, step=i)
        return r.id


def run_json(path: Path, run_id: str) -> dict[str, Any]:
    return json.loads(git(path, "show", f"{RUNS}{run_id}:run.json"))


def replace_file(path: Path, run_id: str, name: str, content: bytes) -> str:
    """Commit the run's tree with *name* (``x.json`` or ``metrics/part-...``) replaced by
    *content*, as a new commit on its ref; return the new commit id."""
    return replace_blob(
        path, run_id, name, _git_bytes(path, "hash-object", "-w", "--stdin", data=content)
    )


def replace_blob(path: Path, run_id: str, name: str, blob: str) -> str:
    """Like `replace_file`, with the blob *blob* (already in the repository) as the file."""
    ref = RUNS + run_id

    def rebuild(tree: str, parts: list[str]) -> str:
        lines = git(path, "ls-tree", tree).splitlines()
        entries = {line.split("\t", 1)[1]: line.split("\t", 1)[0] for line in lines}
        head, rest = parts[0], parts[1:]
        if rest:
            sub = entries[head].split()[2]
            entries[head] = f"040000 tree {rebuild(sub, rest)}"
        else:
            entries[head] = f"100644 blob {blob}"
        text = "".join(f"{info}\t{n}\n" for n, info in sorted(entries.items()))
        return git(path, "mktree", input=text).strip()

    tree = rebuild(git(path, "rev-parse", f"{ref}^{{tree}}").strip(), name.split("/"))
    tip = git(path, "rev-parse", ref).strip()
    commit = git(path, "commit-tree", tree, "-p", tip, "-m", f"hostile {name}").strip()
    git(path, "update-ref", ref, commit, tip)
    return commit


def parquet_bomb(rows_per_group: int = 1_000_000, groups: int = 300) -> bytes:
    """A few KB of Parquet whose footer lists the same (real, RLE-encoded) row group
    *groups* times: a reader decodes rows_per_group * groups genuine rows."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = rows_per_group
    table = pa.table(
        {
            "key": pa.array(["acc"] * n).dictionary_encode(),
            "step": pa.array(np.zeros(n, np.int64)),
            "timestamp": pa.array(np.zeros(n, np.int64)),
            "value": pa.array(np.ones(n, np.float64)),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, use_dictionary=True, compression="zstd", row_group_size=n)
    single = sink.getvalue()
    meta = pq.read_metadata(pa.BufferReader(single))
    footer_len = int.from_bytes(single[-8:-4], "little")
    data = single[: len(single) - 8 - footer_len]
    big = pq.read_metadata(pa.BufferReader(single))
    for _ in range(groups - 1):
        big.append_row_groups(meta)
    out = io.BytesIO()
    big.write_metadata_file(out)
    footer = out.getvalue()[4:]  # PAR1 | footer | length | PAR1
    return data + footer
