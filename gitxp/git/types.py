"""Where gitxp's plain names and ids become dulwich's typed ones.

dulwich types ref names (`Ref`) and hex object ids (`ObjectID`) as distinct
kinds of `bytes`. Above `gitxp.git` both are plain `str`; the modules of
this package convert with these helpers where they call dulwich, so the type
checker sees a ref name never passed where an object id belongs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dulwich.objects import ObjectID
    from dulwich.refs import Ref
else:
    # Both are NewTypes of bytes, which at run time are bytes itself; importing
    # dulwich's objects and refs modules for them would cost every command,
    # even one that never reaches dulwich (docs/performance.md, "Everyday latency").
    ObjectID = Ref = bytes

__all__ = ["HEAD", "ObjectID", "Ref", "as_oid", "as_ref"]

HEAD = Ref(b"HEAD")


def as_ref(name: str) -> Ref:
    """The ref *name* (`refs/heads/main`) as dulwich takes it."""
    return Ref(name.encode())


def as_oid(hexsha: str) -> ObjectID:
    """The hex object id *hexsha* as dulwich takes it."""
    return ObjectID(hexsha.encode())
