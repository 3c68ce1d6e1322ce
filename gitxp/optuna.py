"""`gitxp.optuna`: every Optuna trial as a gitxp run (`GitxpCallback`, its `track_in_gitxp`).

A public alias of `gitxp.integrations.optuna`, where the code lives. Needs
Optuna (`pip install 'gitxp[optuna]'`); without it, importing this module
raises a one-line `MissingExtraError`.
"""

from __future__ import annotations

from .integrations.optuna import GitxpCallback, optuna_module

optuna_module()  # fail at import, naming the extra, when Optuna is missing

__all__ = ["GitxpCallback"]
