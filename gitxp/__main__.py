"""`python -m gitxp`: the `gitxp` command, for when its script is not on PATH."""

from .cli.main import main

main()
