"""`python -m gitxp`: the `gitxp` command, for when its script is not on PATH."""

from gitxp.cli.main import main

main()
