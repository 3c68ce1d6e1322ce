"""Trees as gitxp writes them: the file modes git accepts, and nested trees built from paths.

Pure object building (nothing is written here): `GitRepo.write_tree` and the
snapshot hand the trees to the object store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError
from .hashing import SHA1_IDS, ObjectIds
from .types import as_oid

if TYPE_CHECKING:
    from dulwich.objects import Tree

MODE_FILE = 0o100644
MODE_EXEC = 0o100755
MODE_LINK = 0o120000
MODE_TREE = 0o040000
MODE_GITLINK = 0o160000
VALID_FILE_MODES = frozenset({MODE_FILE, MODE_EXEC, MODE_LINK, MODE_GITLINK})


def build_trees(
    files: Mapping[str, tuple[int, str]], ids: ObjectIds = SHA1_IDS
) -> tuple[str, list[Tree]]:
    """Build (without writing) the trees holding *files*; return the root id and all trees.

    *ids* is the repository's object format (`GitRepo.ids`): it names the trees.
    """
    from dulwich.objects import Tree

    root: dict[str, Any] = {}
    for path, (mode, sha) in files.items():
        if mode not in VALID_FILE_MODES:
            raise GitxpError(f"refusing to write {path!r} with invalid mode {mode:o}")
        parts = path.split("/")
        if any(p in ("", ".", "..", ".git") for p in parts):
            raise GitxpError(f"refusing to write unsafe path {path!r} into a tree")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise GitxpError(f"{path!r} is both a file and a directory")
            node = child
        node[parts[-1]] = (mode, sha)
    trees: list[Tree] = []

    def build(node: dict[str, Any]) -> str:
        tree = Tree()
        for name, value in node.items():
            if isinstance(value, dict):
                tree.add(name.encode("utf-8", "surrogateescape"), MODE_TREE, as_oid(build(value)))
            else:
                tree.add(name.encode("utf-8", "surrogateescape"), value[0], as_oid(value[1]))
        trees.append(tree)
        return ids.object_id(tree)

    return build(root), trees
