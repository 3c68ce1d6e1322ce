"""Writing one run's commits: `RunWriter`, the store side of a run being recorded.

A run's history is a chain of commits on `refs/gitxp/runs/<id>`, each the
child of the one before (the first, of the code commit). The writer holds
what the next commit will contain, the run's tree as path -> (mode, blob id)
and the number of metric parts, and writes it: the JSON files it is given,
the tree, the commit (its message from `storage.commit_message`), then the
ref, moved by compare-and-swap from the commit it wrote last
(`gitxp.git.refs.update_ref`), so a commit made meanwhile by another writer
is never lost. The writer knows nothing of the live run
(`gitxp.tracking.run`): what to write comes to it as plain data, and a
failed write is undone by `gitxp.store.transaction`.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError, RunFinishedError
from ..format import storage
from ..format.refs import RUNS_PREFIX
from ..format.status import now_ms

if TYPE_CHECKING:
    from ..git.repository import GitRepo

# metric points of one key, in one commit: (key, steps, timestamps, values)
Chunk = tuple[str, array, array, array]  # type: ignore[type-arg]

MERGE_MAX_POINTS = 2_000_000  # parts are merged into one at the end only up to this size
FILE_MODE = 0o100644


def is_part(path: str) -> bool:
    """Whether *path* in a run's tree is a Parquet part of its metrics."""
    return path.startswith(storage.METRICS_DIR) and path.endswith(".parquet")


class RunWriter:
    """The files of one run's next commit, and the writing of it to the run's ref.

    *parent* is the commit the first commit goes on (the code commit; None
    for a run on no commit). `lock` is the run's lock: whoever changes the
    files or commits holds it. `dirty` says something besides metric points
    changed since the last commit; `closed`, that the run has ended and takes
    no more files.
    """

    def __init__(self, git: GitRepo, run_id: str, parent: str | None) -> None:
        self.git = git
        self.run_id = run_id
        self.ref = RUNS_PREFIX + run_id
        self.lock = threading.RLock()
        self.tip: str | None = None  # the last commit written (None: no commit yet)
        self.parent = parent
        self.files: dict[str, tuple[int, str]] = {}
        self.parts = 0
        self.env_data: bytes | None = None  # env.json, written with the first commit
        self.pinned = False  # refs/gitxp/pending/<id> keeps the snapshot until then
        self.dirty = True
        self.closed = False
        self.last_commit = time.monotonic()

    @classmethod
    def resume(cls, git: GitRepo, run_id: str) -> RunWriter:
        """A writer adding commits to the existing run *run_id* (GitxpError if it has no ref)."""
        writer = cls(git, run_id, None)
        writer.reload()
        return writer

    def reload(self) -> None:
        """Start again from the tip of the run's ref (another process committed to it)."""
        from ..git.refs import read_ref

        tip = read_ref(self.git, self.ref)
        if tip is None:
            raise GitxpError(f"cannot join run {self.run_id}: {self.ref} does not exist")
        tree = self.git.read_commit(tip).tree
        self.files = {p: (m, s) for p, m, s in self.git.walk_tree(tree)}
        self.parts = sum(1 for p in self.files if is_part(p))
        self.tip = self.parent = tip

    # -- the tree's files -------------------------------------------------------------------------
    def put_file(self, path: str, data: bytes, mode: int = FILE_MODE) -> None:
        """Store *data* at *path* in the run's tree from the next commit on."""
        if self.closed:
            raise RunFinishedError(self.run_id, "put_file")
        with self.lock:
            self.files[path] = (mode, self.git.write_blob(data))
            self.dirty = True

    def drop_files(self, paths: Iterable[str]) -> None:
        """Remove *paths* from the run's tree from the next commit on."""
        with self.lock:
            for path in paths:
                self.files.pop(path, None)
            self.dirty = True

    def read_file(self, path: str) -> bytes | None:
        """The current content of *path* in the run's tree (None when absent)."""
        entry = self.files.get(path)
        return None if entry is None else self.git.read_blob(entry[1])

    def pin(self, commit: str) -> None:
        """Keep *commit* (the work-tree snapshot) from git's pruning until the first commit."""
        from ..git.refs import pin_pending

        pin_pending(self.git, self.run_id, commit)
        self.pinned = True

    # -- metric parts -------------------------------------------------------------------------------
    def add_part(self, chunks: Sequence[Chunk]) -> int:
        """Encode *chunks* as the next Parquet part of the tree; how many points it holds."""
        if not chunks:
            return 0
        from ..format.metrics import encode_points, part_name

        blob = encode_points(chunks)
        self.parts += 1
        self.files[part_name(self.parts)] = (FILE_MODE, self.git.write_blob(blob))
        return sum(len(c[1]) for c in chunks)

    def merge_parts(self, points: int) -> None:
        """Merge the metric parts into one part, for a run of at most MERGE_MAX_POINTS *points*.

        A git blob is written from one buffer, so merging holds the whole merged
        file in memory several times over (10M points: +170 MB of peak RSS).
        Larger runs keep their checkpoint parts, which readers handle already:
        memory stays bounded however long the run.
        """
        names = sorted(p for p in self.files if is_part(p))
        if len(names) < 2 or points > MERGE_MAX_POINTS:
            return
        from ..format.metrics import merge_parts, part_name

        merged = merge_parts(self.git.read_blob(self.files[n][1]) for n in names)
        for n in names:
            del self.files[n]
        self.files[part_name(1)] = (FILE_MODE, self.git.write_blob(merged))
        self.parts = 1

    # -- committing --------------------------------------------------------------------------------
    def commit(
        self,
        kind: str,
        points: int,
        *,
        meta: dict[str, Any],
        params: dict[str, Any],
        notes: str,
        summary: Mapping[str, Any],
        lasts: dict[str, dict[str, Any]],
    ) -> str:
        """Write the next commit of *kind* (start, checkpoint, end) and move the ref to it.

        *meta*, *params*, *summary* and *notes* become run.json, params.json,
        summary.json and notes.md; *lasts* (key -> {"last": value}) and the
        number of new *points* go into the message. run.json's liveness fields
        are stamped here: the heartbeat is the commit's time, and the end
        commit drops them. Raises RefUpdateError when the ref is not where
        this writer left it; any failure leaves the ref as it was.
        """
        from ..git.refs import update_ref

        if self.tip is None and kind == "checkpoint":
            kind = "start"  # the run's first commit, whatever prompted it
        detail = ""
        if kind == "checkpoint":
            detail = f"{points:,} new points" if points else "heartbeat"
        when_ms = now_ms()
        if kind == "end":
            # liveness fields only matter while RUNNING (crash detection reads them)
            meta.pop("heartbeat_time", None)
            meta.pop("checkpoint_seconds", None)
        else:
            meta["heartbeat_time"] = when_ms
        write = self.git.write_blob
        files = self.files
        if self.env_data is not None:
            files[storage.ENV_FILE] = (FILE_MODE, write(self.env_data))
            self.env_data = None
        files[storage.RUN_FILE] = (FILE_MODE, write(storage.dumps(meta)))
        files[storage.PARAMS_FILE] = (FILE_MODE, write(storage.dumps(params)))
        files[storage.SUMMARY_FILE] = (FILE_MODE, write(storage.dumps(summary)))
        if notes:
            files[storage.NOTES_FILE] = (FILE_MODE, write(notes.encode() + b"\n"))
        tree = self.git.write_tree(files)
        message = storage.commit_message(kind, meta, params, lasts, detail)
        parents = [self.parent] if self.parent else []
        commit = self.git.write_commit(tree, parents, message, when=when_ms / 1000)
        # no reflog line: each commit's parent is the previous one, so the ref only
        # ever moves forward along the run's own chain (a line would add a file per run)
        update_ref(self.git, self.ref, self.tip, commit, None)
        self.tip = self.parent = commit
        if self.pinned:
            from ..git.refs import unpin_pending

            self.pinned = False
            unpin_pending(self.git, self.run_id)
        self.dirty = False
        self.last_commit = time.monotonic()
        return commit
