"""Files the UI serves: the package's own static files and plotly.js from the `plotly` wheel.

Static files are found once, at start-up, by listing the package directory;
requests are answered by looking the name up in that list, so no URL can
reach a file outside it. plotly.js comes from the installed `plotly`
distribution (the optional extra `gitxp[ui]`); nothing is fetched from the
internet.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from ..errors import MissingExtraError

STATIC_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ui", "static"
)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True)
class Asset:
    """One servable file: its bytes and content type."""

    name: str
    data: bytes
    content_type: str


def static_assets() -> dict[str, Asset]:
    """The package's static files by name (flat directory, read once)."""
    out = {}
    for name in sorted(os.listdir(STATIC_DIR)):
        path = os.path.join(STATIC_DIR, name)
        ext = os.path.splitext(name)[1]
        if os.path.isfile(path) and not os.path.islink(path) and ext in CONTENT_TYPES:
            with open(path, "rb") as f:
                out[name] = Asset(name, f.read(), CONTENT_TYPES[ext])
    return out


def plotly_js_path() -> str:
    """The path of plotly.min.js inside the installed `plotly` package."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("gitxp ui", "plotly", "ui")
    for base in spec.submodule_search_locations:
        path = os.path.join(base, "package_data", "plotly.min.js")
        if os.path.isfile(path):
            return path
    raise MissingExtraError("gitxp ui", "plotly (with its plotly.min.js)", "ui")


def plotly_js() -> Asset:
    """plotly.min.js as an asset."""
    with open(plotly_js_path(), "rb") as f:
        return Asset("plotly.min.js", f.read(), CONTENT_TYPES[".js"])


def plotly_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("plotly")
    except PackageNotFoundError:
        return "unknown"
