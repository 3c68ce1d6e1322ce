"""A repository's object format: which hash names its objects (SHA-1 or SHA-256).

git names every object by a hash of its content: SHA-1 (40 hex digits) in
most repositories, SHA-256 (64 hex digits) in one made with
`git init --object-format=sha256`. A repository uses one of them for all
its objects, and the two cannot be mixed: an object id of one format means
nothing in a repository of the other.

`GitRepo.ids` is the one place that knows a repository's format; every
piece of gitxp that hashes, parses or validates an object id asks it,
once per repository (never per object), so a SHA-1 repository pays nothing
for SHA-256 support.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dulwich.object_format import ObjectFormat

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ObjectIds:
    """How the objects of one repository are named: the hash, and the id lengths."""

    name: str  # "sha1" or "sha256", as git's extensions.objectFormat spells it
    hex_length: int  # 40 or 64
    raw_length: int  # 20 or 32: the binary id in trees, indexes and packs
    # The id of a dulwich object in this format (chosen per format, not tested per object):
    # dulwich's `obj.id` is always SHA-1 (and cached); a SHA-256 id is hashed from the bytes.
    object_id: Callable[[Any], str]

    @property
    def format(self) -> ObjectFormat:
        """dulwich's description of the same format (its module loads hashlib: on first use)."""
        from dulwich import object_format

        return object_format.SHA256 if self.name == "sha256" else object_format.SHA1

    @property
    def new_hash(self) -> Callable[..., Any]:
        """hashlib's constructor of this format's hash.

        hashlib is imported on first use: loading OpenSSL is about 2 ms, which
        a command that only reads the listing cache never needs.
        """
        import hashlib

        return getattr(hashlib, self.name)  # type: ignore[no-any-return]

    @property
    def zero(self) -> str:
        """The all-zero id git uses for "no object" (a created or deleted ref)."""
        return "0" * self.hex_length

    @property
    def label(self) -> str:
        """The format as people write it: SHA-1, SHA-256."""
        return "SHA-1" if self.name == "sha1" else "SHA-256"

    def blob_id(self, data: bytes) -> str:
        """The id git gives a blob holding *data* (`git hash-object`)."""
        digest = self.new_hash(b"blob %d\0" % len(data))
        digest.update(data)
        return str(digest.hexdigest())

    def is_id(self, text: str) -> bool:
        """True when *text* is a full lower-case hex object id of this format."""
        return len(text) == self.hex_length and _HEX.issuperset(text)


def _sha1_id(obj: Any) -> str:
    return str(obj.id.decode())


def _sha256_id(obj: Any) -> str:
    from dulwich.object_format import SHA256

    obj.object_format = SHA256
    return str(obj.get_id(SHA256).decode())


SHA1_IDS = ObjectIds("sha1", 40, 20, _sha1_id)
SHA256_IDS = ObjectIds("sha256", 64, 32, _sha256_id)
HEX_LENGTHS = (40, 64)


def ids_of(repo: Any) -> ObjectIds:
    """The object format of dulwich repository *repo* (from `extensions.objectFormat`)."""
    fmt = getattr(repo, "object_format", None)
    return SHA256_IDS if fmt is not None and fmt.name == "sha256" else SHA1_IDS


def is_zero(sha: str) -> bool:
    """True for git's all-zero id of either format ("no object")."""
    return bool(sha) and not sha.strip("0")
