"""Everything gitxp does with git, behind one package: the only place dulwich is imported.

- `repository`: discovery, objects, commits, config (`GitRepo`)
- `refs`: compare-and-swap ref updates with retry, fast ref listing
- `snapshot`: the work tree recorded as a commit without touching it
"""
