"""A run's commit as all-or-nothing: a failed write (full disk, I/O error) loses no point.

Committing takes the buffered points out of their series, encodes them as a
Parquet part, then writes blobs, trees, a commit and finally moves the ref.
Any of these writes can fail: a full disk, a quota, a read-only or broken
file system. `Attempt` wraps one commit; when it fails before the ref moved,
the run is put back exactly as it was: the points wait again (held, ahead of
anything logged since), the summaries count only what is committed, the
tree and run.json are the last good ones. The next checkpoint retries them.

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
import os
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import RunWriteError

if TYPE_CHECKING:
    from .run import Run

Chunk = tuple[str, array, array, array]  # type: ignore[type-arg]


class Attempt:
    """One try at committing *run*; puts the run back as it was when the try fails.

    Re-entrant: an attempt opened inside another (the end commit's flush,
    then `_commit`) joins the outer one.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.outer = run._attempt is None
        if self.outer:
            self.tip = run._tip
            self.files = dict(run._files)
            self.parts = run._parts
            self.meta = dict(run._meta)
            self.env_data = getattr(run, "_env_data", None)  # written with the first commit
            self.chunks: list[Chunk] = []
            self.summaries: dict[str, tuple[Any, ...]] = {}

    def __enter__(self) -> Attempt:
        if self.outer:
            self.run._attempt = self
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.outer:
            return
        run = self.run
        run._attempt = None
        if exc_type is None or run._tip != self.tip:
            # committed (a failure after the ref moved does not unmake the commit)
            run._buffer_points = run._buffer_limit
            return
        run._files = self.files
        run._parts = self.parts
        run._meta = self.meta
        run._env_data = self.env_data
        for key, state in self.summaries.items():
            series = run._series.get(key)
            if series is not None:
                series.restore(state)
        run._held = self.chunks + run._held
        run._pending += points(self.chunks)
        # a full buffer retries at the next timed checkpoint, or once as many
        # points again have come in: not on every point logged meanwhile
        run._buffer_points = run._pending + run._buffer_limit


def points(chunks: list[Chunk]) -> int:
    return sum(len(c[3]) for c in chunks)


def take_points(run: Run) -> list[Chunk]:
    """The points to commit now: those held from failed commits, then the newly logged.

    One chunk per key. Each key's summary counts them from here on; the
    attempt under way keeps what it said before, to put it back on failure.
    """
    attempt = run._attempt
    held = {c[0]: c for c in run._held}
    run._held = []
    chunks: list[Chunk] = []
    for key, series in list(run._series.items()):
        taken = series.take()
        old = held.pop(key, None)
        if old is not None:
            taken = (
                old[1:]
                if taken is None
                else (old[1] + taken[0], old[2] + taken[1], old[3] + taken[2])
            )
        if taken is None:
            continue
        if attempt is not None and key not in attempt.summaries:
            attempt.summaries[key] = series.state()
        series.add(*taken)
        chunks.append((key, *taken))
    if attempt is not None:
        attempt.chunks.extend(chunks)
    return chunks


def warn_kept(run: Run, exc: BaseException) -> None:
    """Say that a checkpoint failed and its points wait in memory for the next one."""
    print(
        f"gitxp: checkpoint of run {run.id} failed ({describe(exc)}); its {run._pending:,} "
        f"points stay in memory and are retried at the next checkpoint",
        file=sys.stderr,
    )


def describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}"


def finish_after_failure(
    run: Run, status: str, error: str | None, end_time: int | None, exc: BaseException
) -> None:
    """The end commit failed: write what still fits, save the rest, raise RunWriteError.

    Returns only when the end commit succeeds on its second try (the points
    without merging the parts first: no large merged blob to write).
    """
    from ..format.status import now_ms

    def end_meta(final: str, why: str | None) -> None:
        run._meta["status"] = final
        run._meta["end_time"] = now_ms() if end_time is None else int(end_time)
        if why:
            run._meta["error"] = why[:2000]

    if not run._joined:
        try:
            end_meta(status, error)
            run._commit("end")
            return
        except Exception as again:
            exc = again
    chunks = run._held + [(k, *t) for k, s in run._series.items() if (t := s.take())]
    run._held = []
    run._pending = 0
    unwritten = points(chunks)
    spilled = spill(run.id, chunks)
    cause = describe(exc)
    lost = f"gitxp could not write {unwritten:,} points ({cause})"
    if spilled:
        lost += f"; they were saved to {spilled}"
    # FINISHED would claim a complete record; a run that failed or was killed says so still
    final = "FAILED" if status == "FINISHED" else status
    try:
        if run._joined:
            raise exc  # `gitxp run` owns the run's end and records how the command ended
        end_meta(final, f"{error}; {lost}" if error else lost)
        run._commit("end")
    except Exception:
        final = "RUNNING"  # not even that: the ref keeps its last good checkpoint
    raise RunWriteError(run.id, cause, unwritten, final, spilled) from exc


@contextlib.contextmanager
def report_write_failure(run: Run) -> Iterator[None]:
    """Print a RunWriteError instead of raising it: while another exception is on its
    way out of a `with start_run()` block, that one goes on (its type and exit code
    are the script's), and the write failure is said beside it."""
    try:
        yield
    except RunWriteError as exc:
        print(f"gitxp: {exc}", file=sys.stderr)


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
