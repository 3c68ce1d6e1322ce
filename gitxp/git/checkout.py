"""Writing a commit's files to disk, safely, and switching the work tree to a new branch.

Runs may come from someone else's repository (`git fetch` of their
refs/gitxp/*), so a tree is treated as untrusted input: before anything is
written, every path is checked with dulwich's validator for this
repository's config (`.git`, `..`, `.`, NTFS/HFS aliases of `.git`) and
with gitxp's own rules (no empty, absolute or NUL-carrying names, no
`.git` in any case), and no file is ever written through a symlink.

The work tree is never overwritten silently: `switch_to_new_branch`
refuses when there are uncommitted changes (listing them), and with
`force` first saves them as a commit on `refs/gitxp/saved/<stamp>`.

Files are written as `git checkout` writes them: through the line-ending
conversion and filter drivers (Git LFS smudge) that the commit's
`.gitattributes` name (`filters.WorkTreeFilters`).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dulwich.diff_tree import tree_changes
from dulwich.index import (
    get_path_element_validator,
    update_working_tree,
    validate_path_element_default,
)
from dulwich.objects import Blob
from dulwich.refs import check_ref_format

from ..errors import GitxpError, InvalidValueError, UncommittedChangesError, UnsafePathError
from .filters import WorkTreeFilters
from .refs import read_ref, update_ref
from .repository import MODE_EXEC, MODE_GITLINK, MODE_LINK, GitRepo
from .types import HEAD, as_oid, as_ref

SAVED_PREFIX = "refs/gitxp/saved/"


def _element_validator(git: GitRepo | None) -> Callable[[bytes], bool]:
    if git is None:
        return validate_path_element_default
    return get_path_element_validator(git.dulwich.get_config_stack())


def check_path(path: str, validate: Callable[[bytes], bool]) -> None:
    """Raise UnsafePathError unless *path* (from a tree) may be written below a directory."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise UnsafePathError(path, "not a relative path inside the target")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise UnsafePathError(path, "it has an empty, '.' or '..' component")
        if part.lower() == ".git" or part.lower().startswith(".git/"):
            raise UnsafePathError(path, "it would write into a .git directory")
        if not validate(part.encode("utf-8", "surrogateescape")):
            raise UnsafePathError(path, f"{part!r} is not a safe file name")


def tree_entries(git: GitRepo, commit: str) -> list[tuple[str, int, str]]:
    """Every (path, mode, id) of *commit*'s tree, all paths validated first."""
    info = git.read_commit(commit)
    validate = _element_validator(git)
    entries = list(git.walk_tree(info.tree))
    for path, mode, _sha in entries:
        check_path(path, validate)
        if mode not in (0o100644, MODE_EXEC, MODE_LINK, MODE_GITLINK):
            raise UnsafePathError(path, f"unknown file mode {mode:o}")
    return entries


def _safe_dir(root: str, rel_dir: str, made: set[str]) -> str:
    """Create *rel_dir* below *root* component by component, refusing symlinks."""
    current = root
    built = ""
    for part in rel_dir.split("/") if rel_dir else []:
        built = f"{built}/{part}" if built else part
        current = os.path.join(current, part)
        if built in made:
            continue
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current)
        else:
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(built, "a file or symlink is in the way of a directory")
        made.add(built)
    return current


def materialize(git: GitRepo, commit: str, dest: str) -> int:
    """Write the files of *commit* into the new or empty directory *dest*; return the count.

    Every path is validated before the first byte is written, so a hostile
    tree leaves *dest* untouched.
    """
    entries = tree_entries(git, commit)
    dest = os.path.abspath(dest)
    if os.path.lexists(dest):
        if os.path.islink(dest) or not os.path.isdir(dest):
            raise GitxpError(f"{dest} exists and is not a directory; choose a new directory")
        if os.listdir(dest):
            raise GitxpError(f"{dest} is not empty; choose a new or empty directory")
    else:
        os.makedirs(dest)
    with WorkTreeFilters(git, tree=git.read_commit(commit).tree) as filters:
        return _write_entries(git, entries, dest, filters)


def _write_entries(
    git: GitRepo, entries: list[tuple[str, int, str]], dest: str, filters: WorkTreeFilters
) -> int:
    made: set[str] = set()
    store = git.dulwich.object_store
    count = 0
    for path, mode, sha in entries:
        parent, _, name = path.rpartition("/")
        directory = _safe_dir(dest, parent, made)
        full = os.path.join(directory, name)
        if mode == MODE_GITLINK:
            os.mkdir(full)  # a submodule: its own repository is not part of this commit
            continue
        blob = store[as_oid(sha)]
        if not isinstance(blob, Blob):
            raise UnsafePathError(path, "its entry is not a file")
        data = blob.as_raw_string()
        if mode == MODE_LINK:
            os.symlink(data, full)
        else:
            data = filters.smudge(path, data)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(full, flags, 0o755 if mode == MODE_EXEC else 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        count += 1
    return count


# -- branches ------------------------------------------------------------------
def check_branch_name(name: str) -> str:
    """Return the full ref of branch *name*, or raise if git would refuse the name."""
    ref = f"refs/heads/{name}"
    if not name or name.startswith("-") or not check_ref_format(as_ref(ref)):
        raise InvalidValueError("branch", f"{name!r} is not a valid git branch name")
    return ref


def create_branch(git: GitRepo, name: str, commit: str, force: bool = False) -> str:
    """Point branch *name* at *commit* (creating it); an existing branch needs *force*."""
    ref = check_branch_name(name)
    current = read_ref(git, ref)
    if current == commit:
        return ref
    if current is not None and not force:
        raise GitxpError(
            f"branch {name!r} exists already (at {current[:12]}); choose another name "
            "or pass --force to move it"
        )
    update_ref(git, ref, current, commit, f"gitxp: branch {name}")
    return ref


# -- the work tree ---------------------------------------------------------------
@dataclass
class WorkTreeState:
    """Uncommitted work that a checkout could destroy."""

    changed: list[str] = field(default_factory=list)  # staged or unstaged changes
    in_the_way: list[str] = field(default_factory=list)  # untracked files the target would replace

    @property
    def paths(self) -> list[str]:
        return sorted(set(self.changed) | set(self.in_the_way))


def _head_tree(git: GitRepo) -> str | None:
    head = git.head()
    return git.read_commit(head).tree if head else None


def worktree_state(git: GitRepo, target_commit: str) -> WorkTreeState:
    """What in the work tree differs from HEAD, and what untracked files the target would hit."""
    from dulwich import porcelain

    status = porcelain.status(git.dulwich, untracked_files="no")
    changed: set[str] = set()
    for paths in status.staged.values():
        changed.update(_text(p) for p in paths)
    changed.update(_text(p) for p in status.unstaged)
    head_tree = _head_tree(git)
    tracked = {p for p, _m, _s in git.walk_tree(head_tree)} if head_tree else set()
    in_the_way = []
    for path, _mode, _sha in git.walk_tree(git.read_commit(target_commit).tree):
        if path in tracked:
            continue
        full = os.path.join(git.root, *path.split("/"))
        if os.path.lexists(full):
            in_the_way.append(path)
    return WorkTreeState(sorted(changed), sorted(in_the_way))


def _text(path: bytes | str) -> str:
    return path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path


def save_work(git: GitRepo, paths: list[str]) -> str:
    """Commit the work tree as it is (tracked changes and untracked files) to a saved ref.

    Returns the ref. Refuses when a path that would be overwritten cannot
    be saved (ignored, secret-looking, nested repository).
    """
    from .snapshot import take_snapshot

    snap = take_snapshot(
        git, 2**62, "gitxp: uncommitted work saved before `gitxp checkout --force`"
    )
    unsaved = {item["path"].rstrip("/") for item in snap.excluded}
    lost = [p for p in paths if p in unsaved or any(p.startswith(u + "/") for u in unsaved)]
    if lost:
        raise UncommittedChangesError(
            lost,
            "these cannot be saved (ignored or secret-looking files); move them aside first",
        )
    code = snap.code_commit
    if code is None:
        raise GitxpError("nothing to save and no commit yet; commit your work first")
    ref = f"{SAVED_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    update_ref(git, ref, None, code, "gitxp: save work before checkout")
    return ref


def switch_to_new_branch(git: GitRepo, name: str, commit: str, force: bool = False) -> str | None:
    """Create branch *name* at *commit* and check it out; return the saved-work ref, if any.

    Refuses (UncommittedChangesError) when uncommitted work would be
    overwritten, unless *force*, which first saves it with `save_work`.
    """
    ref = check_branch_name(name)
    if read_ref(git, ref) not in (None, commit):
        raise GitxpError(f"branch {name!r} exists already; choose another name")
    tree_entries(git, commit)  # validate every path before touching anything
    state = worktree_state(git, commit)
    saved = None
    if state.paths:
        if not force:
            raise UncommittedChangesError(
                state.paths,
                "commit or stash them, or pass --force to save them to a ref first "
                "(nothing was changed)",
            )
        saved = save_work(git, state.paths)
        for path in state.in_the_way:  # saved above; the target's version replaces them
            os.remove(os.path.join(git.root, *path.split("/")))
    drepo = git.dulwich
    target_tree = as_oid(git.read_commit(commit).tree)
    head_tree = _head_tree(git)
    old_tree = as_oid(head_tree) if head_tree else None
    config = drepo.get_config_stack()
    with WorkTreeFilters(git, tree=target_tree.decode()) as filters:
        update_working_tree(
            drepo,
            old_tree,
            target_tree,
            change_iterator=tree_changes(drepo.object_store, old_tree, target_tree),
            validate_path_element=get_path_element_validator(config),
            allow_overwrite_modified=force,
            # dulwich's annotation names its own FilterBlobNormalizer, though it calls
            # only the two normalize methods, which WorkTreeFilters has too
            blob_normalizer=filters,  # type: ignore[arg-type]
            config=config,
        )
        if saved:
            # update_working_tree only touches what differs between HEAD and *commit*:
            # an edit to a file the two share would survive. It is saved; put it back too.
            _match_commit(git, state.changed, commit, filters)
    create_branch(git, name, commit)
    drepo.refs.set_symbolic_ref(HEAD, as_ref(ref), message=b"gitxp: checkout")
    return saved


def _match_commit(git: GitRepo, paths: list[str], commit: str, filters: WorkTreeFilters) -> None:
    """Make *paths* in the work tree and the index what they are in *commit* (or absent),
    written through *filters* (smudge, eol) as git checkout writes them."""
    from dulwich.index import build_file_from_blob, get_symlink_fn, index_entry_from_stat

    wanted = {p: (m, s) for p, m, s in git.walk_tree(git.read_commit(commit).tree)}
    drepo = git.dulwich
    config = drepo.get_config_stack()
    index = drepo.open_index()
    made: set[str] = set()
    for path in paths:
        key = path.encode("utf-8", "surrogateescape")
        full = os.path.join(git.root, *path.split("/"))
        if os.path.lexists(full) and (os.path.islink(full) or not os.path.isdir(full)):
            os.unlink(full)
        if path not in wanted:
            if key in index:
                del index[key]
            continue
        mode, sha = wanted[path]
        if mode == MODE_GITLINK:
            continue  # a submodule's own work tree is not this checkout's
        _safe_dir(git.root, path.rpartition("/")[0], made)
        blob = drepo.object_store[as_oid(sha)]
        assert isinstance(blob, Blob)
        if mode != MODE_LINK:
            blob = filters.checkout_normalize(blob, key)
        st = build_file_from_blob(
            blob, mode, full.encode("utf-8", "surrogateescape"), symlink_fn=get_symlink_fn(config)
        )
        index[key] = index_entry_from_stat(st, sha.encode(), mode)
    index.write()
