"""The `gitxp` command: click commands that parse, call the Python API and print.

Nothing else imports this package. Each command lives in the module named
after it; `main.py` assembles the group and turns a `GitxpError` into a
one-line message and exit status 1.
"""
