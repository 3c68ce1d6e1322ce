"""A run's commit as all-or-nothing: a failed write (full disk, I/O error) loses no point.

Committing takes the buffered points out of their series, encodes them as a
Parquet part, then writes blobs, trees, a commit and finally moves the ref
(`gitxp.store.writer.RunWriter.commit`). Any of these writes can fail: a
full disk, a quota, a read-only or broken file system. `Attempt` wraps one
commit; when it fails before the ref moved, the writer and the run's
metadata are put back exactly as they were, the summaries count only what
is committed, and the attempt hands back the points it took, for the caller
to keep (ahead of anything logged since) and retry at the next checkpoint.

Only the final commit cannot wait for a next time: `finish_after_failure`
tries the end commit without merging parts, then an end commit without the
points (FAILED, its error saying how many are missing), saves the points to
a Parquet file outside the repository if it can, and raises `RunWriteError`.
A run never reads FINISHED with points missing; when nothing at all can be
written, its ref stays at the last good checkpoint (RUNNING, CRASHED to
readers once the process is gone).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import RunWriteError

if TYPE_CHECKING:
    from .writer import Chunk, RunWriter

log = logging.getLogger("gitxp.store.transaction")


class Summarised(Protocol):
    """A metric key's running summary, which a failed commit puts back as it was."""

    def state(self) -> tuple[Any, ...]: ...

    def restore(self, state: tuple[Any, ...]) -> None: ...


class Attempt:
    """One try at committing through *writer*; undoes itself when the try fails.

    On failure before the ref moved, the writer's files, parts, tip and
    pending env.json, the run's *meta* (changed in place) and the summaries
    noted with `taking` are put back; `failed` is then True and `chunks` are
    the points the try took, to be kept for the next one.
    """

    def __init__(self, writer: RunWriter, meta: dict[str, Any]) -> None:
        self.writer = writer
        self.meta = meta
        self.saved = (writer.tip, dict(writer.files), writer.parts, writer.env_data)
        self.saved_meta = dict(meta)
        self.chunks: list[Chunk] = []
        self.summaries: dict[str, tuple[Summarised, tuple[Any, ...]]] = {}
        self.failed = False

    def taking(self, key: str, series: Summarised) -> None:
        """Note *series*' summary before the points of *key* taken now are counted in it."""
        if key not in self.summaries:
            self.summaries[key] = (series, series.state())

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        writer = self.writer
        if exc_type is None or writer.tip != self.saved[0]:
            return  # committed (a failure after the ref moved does not unmake the commit)
        writer.tip, writer.files, writer.parts, writer.env_data = self.saved
        self.meta.clear()
        self.meta.update(self.saved_meta)
        for series, state in self.summaries.values():
            series.restore(state)
        self.failed = True


def points(chunks: list[Chunk]) -> int:
    """How many points *chunks* hold."""
    return sum(len(c[3]) for c in chunks)


def warn_kept(run_id: str, pending: int, exc: BaseException) -> None:
    """Say that a checkpoint failed and its *pending* points wait in memory for the next one."""
    log.warning(
        "gitxp: checkpoint of run %s failed (%s); its %s points stay in memory and are "
        "retried at the next checkpoint",
        run_id,
        describe(exc),
        f"{pending:,}",
    )


def describe(exc: BaseException) -> str:
    """A failed write in a few words: the OS's reason and the file, or the exception."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}"


def finish_after_failure(
    run_id: str,
    exc: BaseException,
    status: str,
    error: str | None,
    *,
    joined: bool,
    commit_end: Callable[[str, str | None], None],
    unwritten: Callable[[], list[Chunk]],
) -> None:
    """The end commit failed with *exc*: write what still fits, save the rest, raise RunWriteError.

    *commit_end(status, error)* tries an end commit with that status and
    error; *unwritten()* takes the points no commit holds. Returns only when
    the end commit succeeds on its second try (the points without merging
    the parts first: no large merged blob to write). A *joined* run (`gitxp
    run` owns it and records how it ended) gets no end commit from here.
    """
    if not joined:
        try:
            commit_end(status, error)
            return
        except Exception as again:
            exc = again
    chunks = unwritten()
    count = points(chunks)
    spilled = spill(run_id, chunks)
    cause = describe(exc)
    lost = f"gitxp could not write {count:,} points ({cause})"
    if spilled:
        lost += f"; they were saved to {spilled}"
    # FINISHED would claim a complete record; a run that failed or was killed says so still
    final = "FAILED" if status == "FINISHED" else status
    try:
        if joined:
            raise exc
        commit_end(final, f"{error}; {lost}" if error else lost)
    except Exception:
        final = "RUNNING"  # not even that: the ref keeps its last good checkpoint
    raise RunWriteError(run_id, cause, count, final, spilled) from exc


@contextlib.contextmanager
def report_write_failure() -> Iterator[None]:
    """Log a RunWriteError (a warning) instead of raising it: while another exception is on
    its way out of a `with start_run()` block, that one goes on (its type and exit code
    are the script's), and the write failure is said beside it."""
    try:
        yield
    except RunWriteError as exc:
        log.warning("gitxp: %s", exc)


def spill(run_id: str, chunks: list[Chunk]) -> str | None:
    """Save *chunks* as one Parquet file in the temp directory; its path, or None."""
    if not chunks:
        return None
    try:
        from ..format.metrics import encode_points

        data = encode_points(chunks)
        path = os.path.join(
            tempfile.gettempdir(), f"gitxp-unwritten-{run_id}-{int(time.time())}.parquet"
        )
        with open(path, "xb") as f:
            try:
                f.write(data)
                f.flush()
            except BaseException:
                os.unlink(path)
                raise
        return path
    except Exception:
        return None
