"""`create_refs`: many new refs in one packed-refs rewrite that keeps every line already there.

It copies the packed refs it finds line for line (so adding 10 refs to
100,000 does not re-parse them all), so these tests check with the real
`git` that what it writes is still a packed-refs git reads: peeled tags
keep their `^` lines, new tags get theirs, the order is git's, and a ref
that exists (loose or packed) is reported, not replaced.
"""

from __future__ import annotations

from pathlib import Path

from gitxp.format.ids import new_run_id
from gitxp.git.packed_refs import create_refs
from gitxp.git.repository import GitRepo
from tests.gitutil import fsck, git

RUNS = "refs/gitxp/runs/"


def _refs(repo: Path) -> dict[str, str]:
    """{ref: 'id peeled-id'} as git reads them."""
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname) %(*objectname)")
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1].strip() for line in out.splitlines()}


def test_new_refs_join_packed_ones_and_peeled_tags_stay_peeled(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "-a", "-m", "release", "v1", head)
    git(repo, "branch", "side", head)
    git(repo, "pack-refs", "--all")
    old_tag = git(repo, "rev-parse", "v1").strip()
    git(repo, "tag", "-a", "-m", "model", "model@v0.1.0", head)
    new_tag = git(repo, "rev-parse", "model@v0.1.0").strip()
    git(repo, "tag", "-d", "model@v0.1.0")  # the tag object stays; create_refs names it
    before = _refs(repo)
    runs = {RUNS + new_run_id(): head for _ in range(50)}

    failed = create_refs(GitRepo(str(repo)), {**runs, "refs/tags/model@v0.1.0": new_tag})

    assert failed == {}
    after = _refs(repo)
    assert {k: v for k, v in after.items() if k in before} == before  # untouched, v1 peeled
    assert after["refs/tags/v1"] == f"{old_tag} {head}"
    assert after["refs/tags/model@v0.1.0"] == f"{new_tag} {head}"
    assert {k: after[k] for k in runs} == dict.fromkeys(runs, head)
    packed = (repo / ".git" / "packed-refs").read_text().splitlines()
    assert f"^{head}" in packed[packed.index(f"{old_tag} refs/tags/v1") + 1]
    assert f"^{head}" in packed[packed.index(f"{new_tag} refs/tags/model@v0.1.0") + 1]
    names = [line.split(" ", 1)[1] for line in packed if line[:1] not in ("#", "^")]
    assert names == sorted(names)  # git's order: it may binary-search a sorted file
    git(repo, "pack-refs", "--all")  # git rewrites it without complaint
    assert _refs(repo) == after
    fsck(repo)


def test_existing_refs_loose_or_packed_are_reported_and_kept(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    second = git(repo, "rev-parse", "HEAD").strip()
    packed, loose, fresh = (RUNS + new_run_id() for _ in range(3))
    git(repo, "update-ref", packed, head)
    git(repo, "pack-refs", "--all")
    git(repo, "update-ref", loose, head)

    failed = create_refs(GitRepo(str(repo)), {packed: second, loose: second, fresh: second})

    assert set(failed) == {packed, loose}
    refs = _refs(repo)
    assert (refs[packed], refs[loose], refs[fresh]) == (head, head, second)
    fsck(repo)
