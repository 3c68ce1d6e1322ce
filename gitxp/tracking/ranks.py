"""Distributed training: which rank this process is, and whether it records.

Under a distributed launcher every process runs the same script, so every
process calls `gitxp.start_run()`. By default (`ranks="zero"`) only global
rank 0 records; the other ranks get an inert run (`gitxp.tracking.inert`).
With `ranks="all"` (or `GITXP_RANKS=all`) every rank records a run of its
own, grouped with the others (`gitxp.tracking.rank_groups`).

The rank is read from the first of these that is present (the innermost
launcher wins: a launcher started inside another sets its own variables,
while the outer one's are merely inherited):

1. `torch.distributed`, when the process already initialised it;
2. `RANK`/`WORLD_SIZE` (torchrun, torch.distributed.launch, DeepSpeed, Accelerate);
3. `OMPI_COMM_WORLD_RANK`/`OMPI_COMM_WORLD_SIZE` (Open MPI's mpirun);
4. `PMI_RANK`/`PMI_SIZE` (MPICH, Intel MPI, srun --mpi=pmi2);
5. `SLURM_PROCID`/`SLURM_NTASKS` (srun);
6. `LOCAL_RANK` with `NODE_RANK` or `GROUP_RANK` and `LOCAL_WORLD_SIZE`/`WORLD_SIZE`
   (launchers that spawn the other ranks from rank 0, like Lightning's).

A variable that is not a whole number is not a launcher's: it is skipped
with a warning. A world of one process is no distributed job at all.
docs/distributed.md describes all of it for users.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

from ..errors import InvalidValueError

log = logging.getLogger("gitxp.tracking.ranks")

ENV_RANKS = "GITXP_RANKS"
ZERO = "zero"
ALL = "all"
MODES = (ZERO, ALL)

# (rank variable, world-size variable), innermost launcher first
_LAUNCHER_VARIABLES = (
    ("RANK", "WORLD_SIZE"),
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("PMI_RANK", "PMI_SIZE"),
    ("SLURM_PROCID", "SLURM_NTASKS"),
)
_warned: set[str] = set()


@dataclass(frozen=True)
class Rank:
    """This process's place in a distributed job: its global *rank*, the *world_size*
    (None when the launcher does not say) and *source*, what told us."""

    rank: int
    world_size: int | None
    source: str

    @property
    def is_zero(self) -> bool:
        """Whether this is global rank 0, the rank that records by default."""
        return self.rank == 0


def ranks_mode(value: object) -> str:
    """Which ranks record: *value* ("zero" or "all"), else `$GITXP_RANKS`, else "zero"."""
    what = "ranks"
    if value is None:
        value = os.environ.get(ENV_RANKS, "").strip().lower() or ZERO
        what = ENV_RANKS
    if value not in MODES:
        raise InvalidValueError(
            what, f"{value!r} must be 'zero' (only global rank 0 records) or 'all' (every rank)"
        )
    return str(value)


def detect() -> Rank | None:
    """This process's rank in a distributed job, or None for a single process (no launcher,
    or a world of one)."""
    found = _from_torch() or _from_variables() or _from_local_rank()
    if found is None or found.world_size == 1:
        return None
    return found


def _whole(name: str) -> int | None:
    """Environment variable *name* as a non-negative int; None when unset or not one."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        if name not in _warned:
            _warned.add(name)
            log.warning("gitxp: ignoring %s=%r: a rank or size is a whole number", name, raw)
        return None
    return value


def _from_torch() -> Rank | None:
    """The rank of an initialised `torch.distributed` (never imports torch)."""
    dist = sys.modules.get("torch.distributed")
    if dist is None:
        return None
    try:
        if not (dist.is_available() and dist.is_initialized()):
            return None
        return Rank(int(dist.get_rank()), int(dist.get_world_size()), "torch.distributed")
    except Exception:  # a torch build without distributed support, a group torn down
        return None


def _from_variables() -> Rank | None:
    for rank_name, size_name in _LAUNCHER_VARIABLES:
        rank = _whole(rank_name)
        if rank is not None:
            return Rank(rank, _whole(size_name), rank_name)
    return None


def _from_local_rank() -> Rank | None:
    """A rank spawned on one node by rank 0 itself: LOCAL_RANK, plus the node's rank."""
    local = _whole("LOCAL_RANK")
    if local is None:
        return None
    node = _whole("NODE_RANK")
    if node is None:
        node = _whole("GROUP_RANK") or 0
    per_node = _whole("LOCAL_WORLD_SIZE")
    world = _whole("WORLD_SIZE")
    if per_node is None and node == 0:
        per_node = world
    return Rank(node * (per_node or 1) + local, world, "LOCAL_RANK")
