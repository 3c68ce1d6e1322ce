"""Experiment records: the numeric ids, tags and lifecycle that MLflow gives experiments.

gitxp names an experiment by the `experiment` field of its runs and needs
nothing else. MLflow numbers experiments and lets them carry tags, a
description and a deleted state, so those live in one place that travels
with git: the ref `refs/gitxp/experiments`, a commit whose tree holds
`experiments.json` (docs/format.md). Each change is a new commit on that
ref (compare-and-swap, retried when another writer moved it first), so
`git log refs/gitxp/experiments` shows every change.

An experiment's id is a number derived from its name (`experiment_id`), so
two clones that never exchanged this ref still agree on the id of every
experiment their runs name; the record keeps it when the experiment is
renamed. gitxp's "default" experiment is MLflow's "0".
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError, RefUpdateError
from ..format import schema, storage
from ..git.refs import read_ref, update_ref
from .blobs import read_run_file

if TYPE_CHECKING:
    from ..git.repository import GitRepo

EXPERIMENTS_REF = "refs/gitxp/experiments"
EXPERIMENTS_FILE = "experiments.json"
DEFAULT_NAME = "default"
DEFAULT_ID = "0"
FORMAT = 1
_ATTEMPTS = 20


def experiment_id(name: str) -> str:
    """The id of the experiment called *name* when no record says otherwise.

    A decimal number from the first 48 bits of the name's SHA-256 (at most
    15 digits, exact in JavaScript's numbers, which MLflow's UI uses);
    "default" is "0".
    """
    if name == DEFAULT_NAME:
        return DEFAULT_ID
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    return str(int.from_bytes(digest[:6], "big") or 1)


def read(git: GitRepo) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The experiment records by id, and the commit they were read from (None: no records)."""
    tip = read_ref(git, EXPERIMENTS_REF)
    if tip is None:
        return {}, None
    found = git.lookup_path(git.commit_tree(tip), EXPERIMENTS_FILE)
    if found is None:
        return {}, tip
    try:
        raw = schema.load_json(read_run_file(git, found[1], EXPERIMENTS_FILE), EXPERIMENTS_FILE)
    except schema.Invalid as exc:
        raise GitxpError(
            f"{EXPERIMENTS_REF}:{EXPERIMENTS_FILE} cannot be read ({exc}); "
            f"inspect it with `git show {EXPERIMENTS_REF}:{EXPERIMENTS_FILE}`"
        ) from None
    records = raw.get("experiments") if isinstance(raw, dict) else None
    if not isinstance(records, dict):
        return {}, tip
    return {
        str(k): _checked(v) for k, v in records.items() if isinstance(v, dict) and v.get("name")
    }, tip


def _checked(record: dict[str, Any]) -> dict[str, Any]:
    """A record with the members of the wrong type dropped (the file may come from anyone)."""
    out: dict[str, Any] = {"name": str(record["name"])}
    tags = record.get("tags")
    if isinstance(tags, dict):
        out["tags"] = {str(k): str(v) for k, v in tags.items()}
    for key in ("creation_time", "last_update_time"):
        if isinstance(record.get(key), int):
            out[key] = record[key]
    for key in ("lifecycle_stage", "artifact_location"):
        if isinstance(record.get(key), str):
            out[key] = record[key]
    return out


def change(git: GitRepo, what: str, edit: Callable[[dict[str, dict[str, Any]]], None]) -> None:
    """Apply *edit* to the records (a dict by id it changes in place) as one new commit.

    *what* names the change in the commit subject. A writer that lost the
    race to the ref re-reads the records and applies *edit* again.
    """
    for attempt in range(_ATTEMPTS):
        records, tip = read(git)
        edit(records)
        blob = git.write_blob(storage.dumps({"format": FORMAT, "experiments": records}, depth=2))
        tree = git.write_tree({EXPERIMENTS_FILE: (0o100644, blob)})
        message = f"gitxp: experiments: {what}\n"
        commit = git.write_commit(tree, [tip] if tip else [], message, when=time.time())
        try:
            update_ref(git, EXPERIMENTS_REF, tip, commit, message.strip())
            return
        except RefUpdateError:
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
