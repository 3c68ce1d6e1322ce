"""`gitxp.ray`: every Ray Tune trial as a gitxp run (`GitxpLoggerCallback`).

A public alias of `gitxp.integrations.ray_tune`, where the code lives. Needs
Ray Tune (`pip install 'gitxp[ray]'`); without it, importing this module
raises a one-line `MissingExtraError`.
"""

from __future__ import annotations

from .integrations.ray_tune import GitxpLoggerCallback

__all__ = ["GitxpLoggerCallback"]
