"""``--debug``: tracebacks on the 500 page and templates reloaded when they change.

Never on unless asked for: ``App(debug=True)`` or ``microweb run --debug``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["enable_debug"]


def enable_debug(app: Any) -> None:
    """Turn on debug mode for ``app``: 500 pages show the traceback, templates are re-read on change."""
    app.debug = True  # the App's setter also turns on template auto-reload
