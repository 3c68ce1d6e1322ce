"""Reading one file of a committed run, bounded before it is inflated (docs/format.md, limits)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ObjectTooLargeError
from ..format import schema

if TYPE_CHECKING:
    from ..git.repository import GitRepo


def read_run_file(git: GitRepo, sha: str, name: str, limit: int | None = None) -> bytes:
    """The blob *sha*, the file *name* of a run, refused (`schema.Invalid`) before it is
    inflated when it declares more than *limit* bytes (default: `GITXP_MAX_JSON_BYTES`,
    the bound of every JSON and text file of a run)."""
    bound = schema.max_json_bytes() if limit is None else limit
    try:
        return git.read_blob(sha, limit=bound)
    except ObjectTooLargeError as exc:
        setting = "GITXP_MAX_JSON_BYTES" if limit is None else "its limit"
        raise schema.Invalid(
            f"{name} inflates to {exc.size:,} bytes, over the {exc.limit:,}-byte limit ({setting})"
        ) from None
