"""microweb serving ``$BENCH_STATIC_DIR`` as its static folder (no routes: every GET is a file)."""
from __future__ import annotations

import os

from microweb import App

app = App(static_folder=os.environ["BENCH_STATIC_DIR"])
