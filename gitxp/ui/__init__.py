"""The local web UI (`gitxp ui`): a read-only server and its static single-page app.

`UIServer(path).start()` serves a repository on 127.0.0.1 from a background
thread (handy in notebooks and tests); `ui(path)` serves until Ctrl-C.
"""

from __future__ import annotations

from .server import DEFAULT_HOST, DEFAULT_PORT, UIServer, ui

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "UIServer", "ui"]
