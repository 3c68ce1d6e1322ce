"""One run per rank (`ranks="all"`): the runs of a distributed job, grouped.

Every rank's run carries the tags `rank`, `world_size` (when the launcher
says) and `group`, the same group id on every rank, and every rank but 0
names rank 0's run as its `parent` in run.json. No rank waits for another
and none needs a collective:

- the group id is derived from what the launcher puts in every rank's
  environment (`group_id`): `$GITXP_GROUP` when set, else the run of
  `gitxp run`, torchrun's `TORCHELASTIC_RUN_ID`, the MPI job, the Slurm job
  step, or `MASTER_ADDR:MASTER_PORT`;
- under `gitxp run`, rank 0 records into that command's run, which is every
  other rank's parent (its id is in `GITXP_RUN_ID`);
- otherwise rank 0 leaves its run id in `.git/gitxp/ranks/<group>.json`
  (written atomically) and the other ranks read it: at once if it is there,
  else at each of their commits until it is (`GroupedRun`), waiting up to
  `END_WAIT_SECONDS` at the final one. A record from an earlier job of the
  same group id is told apart (`_is_current`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..format.status import now_ms
from ..format.values import check_text
from .options import RunOptions
from .run import Run

if TYPE_CHECKING:
    from ..git.repository import GitRepo
    from .ranks import Rank

log = logging.getLogger("gitxp.tracking.rank_groups")

ENV_GROUP = "GITXP_GROUP"
TAG_RANK = "rank"
TAG_WORLD_SIZE = "world_size"
TAG_GROUP = "group"
# a record of rank 0 written this long before this process started is an earlier job's
# (the ranks of one job start within seconds of each other)
CURRENT_WINDOW_MS = 60_000
END_WAIT_SECONDS = 5.0  # how long a rank's final commit waits for rank 0's record
STALE_RECORD_SECONDS = 86_400  # rank 0 removes records older than a day when it writes one
_IMPORTED_MS = now_ms()


def launch_key(env: os._Environ[str] | dict[str, str]) -> str:
    """What identifies this launch of the job in *env*, the same on every rank."""
    if env.get("GITXP_RUN_ID") and not env.get("GITXP_RUN_RANK"):  # gitxp run -- torchrun
        return f"gitxp-run:{env['GITXP_RUN_ID']}"
    elastic = env.get("TORCHELASTIC_RUN_ID")
    if elastic:
        attempt = env.get("TORCHELASTIC_RESTART_COUNT", "0")
        if elastic != "none":  # torchrun's default id when none is given: not unique
            return f"torchelastic:{elastic}:{attempt}"
        return f"torchelastic:{env.get('MASTER_ADDR')}:{env.get('MASTER_PORT')}:{attempt}"
    for name in ("PMIX_NAMESPACE", "OMPI_MCA_orte_hnp_uri", "OMPI_MCA_ess_base_jobid"):
        if env.get(name):
            return f"mpi:{env[name]}"
    if env.get("SLURM_JOB_ID"):
        return f"slurm:{env['SLURM_JOB_ID']}:{env.get('SLURM_STEP_ID', '')}"
    if env.get("MASTER_ADDR") and env.get("MASTER_PORT"):
        return f"master:{env['MASTER_ADDR']}:{env['MASTER_PORT']}"
    return f"host:{socket.gethostname()}:{os.getppid()}"


def group_id() -> str:
    """The id every rank of this job shares: `$GITXP_GROUP`, or derived from the launcher's
    environment (12 hex digits)."""
    explicit = os.environ.get(ENV_GROUP, "").strip()
    if explicit:
        return check_text(ENV_GROUP, explicit)
    return hashlib.sha256(launch_key(os.environ).encode()).hexdigest()[:12]


def tagged(options: RunOptions, rank: Rank, group: str) -> RunOptions:
    """*options* with the group's tags added: `rank`, `world_size` and `group`."""
    tags = dict(options.tags or {})
    tags[TAG_RANK] = str(rank.rank)
    if rank.world_size is not None:
        tags[TAG_WORLD_SIZE] = str(rank.world_size)
    tags[TAG_GROUP] = group
    return replace(options, tags=tags)


def start(git: GitRepo, options: RunOptions, rank: Rank, parent: str | None) -> Run:
    """A new run of rank *rank* in its group (rank 0's or, with *parent*, another's).

    *options* are already `tagged`. Rank 0 leaves its id for the others;
    another rank names *parent* (the run of `gitxp run`), else rank 0's run
    when its record is there, else a `GroupedRun` that finds it later.
    """
    group = str((options.tags or {}).get(TAG_GROUP, ""))
    if rank.is_zero:
        run = Run(git, options)
        announce(git, group, run.id)
        return run
    parent = parent or lookup(git, group)
    if parent is not None:
        extra = {**(options.extra_meta or {}), "parent": parent}
        return Run(git, replace(options, extra_meta=extra))
    return GroupedRun(git, options, group)


class GroupedRun(Run):
    """The run of a rank other than 0 that has not found rank 0's run yet: it looks for
    rank 0's record before each of its commits, and names that run its parent once found."""

    def __init__(self, repo: GitRepo, options: RunOptions, group: str) -> None:
        self._group: str | None = group  # set first: Run.__init__ may commit at once
        super().__init__(repo, options)

    def _commit(self, kind: str) -> None:
        if self._group is not None:
            # the last chance: a rank that ends before rank 0 started gives it a moment
            patience = END_WAIT_SECONDS if kind == "end" else 0.0
            parent = lookup(self._git, self._group, patience)
            if parent is not None:
                self._meta["parent"] = parent
                self._group = None
        super()._commit(kind)


def _record_path(git: GitRepo, group: str) -> str:
    name = hashlib.sha256(group.encode()).hexdigest()[:16]  # any group id makes a safe name
    return git.gitxp_dir("ranks", f"{name}.json")


def announce(git: GitRepo, group: str, run_id: str) -> None:
    """Leave rank 0's run id *run_id* for the other ranks of *group* (never raises)."""
    path = _record_path(git, group)
    record = {
        "group": group,
        "run": run_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "time": now_ms(),
    }
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _prune(os.path.dirname(path))
        temp = f"{path}.{os.getpid()}.tmp"
        with open(temp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(temp, path)  # readers see the old record or the new one, whole
    except OSError as exc:  # the runs are recorded all the same; only the link is lost
        log.warning("gitxp: the other ranks cannot learn run %s: %s", run_id, exc)


def _prune(directory: str) -> None:
    """Remove the records of jobs older than a day."""
    cutoff = time.time() - STALE_RECORD_SECONDS
    for entry in os.scandir(directory):
        try:
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:
            pass  # another rank 0 pruned it first


def lookup(git: GitRepo, group: str, patience: float = 0.0) -> str | None:
    """Rank 0's run id in *group*, when rank 0 of this job has left it (waiting up to
    *patience* seconds for it); else None."""
    deadline = time.monotonic() + patience
    while True:
        found = _read_record(git, group)
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def _read_record(git: GitRepo, group: str) -> str | None:
    try:
        with open(_record_path(git, group), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("group") != group:
        return None
    run_id = record.get("run")
    if not isinstance(run_id, str) or not _is_current(record):
        return None
    return run_id


def _is_current(record: dict[str, Any]) -> bool:
    """Whether *record* was left by rank 0 of this job, not of an earlier one with the
    same group id: rank 0 started this process (Lightning's launcher does), or it wrote
    the record at most a minute before this process started."""
    if record.get("host") == socket.gethostname() and record.get("pid") == os.getppid():
        return True
    written = record.get("time")
    return isinstance(written, int) and written >= process_start_ms() - CURRENT_WINDOW_MS


def process_start_ms() -> int:
    """When this process started (ms since the epoch); on systems without /proc, when
    gitxp's tracking was first imported."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return int((boot + ticks / os.sysconf("SC_CLK_TCK")) * 1000)
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_MS
