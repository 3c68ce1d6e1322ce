"""Operations on runs: launch (`gitxp run`), sweep, reproduce, compare, checkout, share, manage.

Each one is a Python function the CLI, the hooks and users call; they
compose the store (`gitxp.store`) and the live run (`gitxp.tracking`).
"""
