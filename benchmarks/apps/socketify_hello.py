"""socketify (uWebSockets, C++) hello world with a Python callback, one process.
SIGTERM's default action stops it (the C++ loop never returns to Python to run a handler).

usage: python3 benchmarks/apps/socketify_hello.py PORT (listens on 127.0.0.1).
"""
from __future__ import annotations

import sys
from typing import Any

from socketify import App, AppListenOptions


def index(res: Any, req: Any) -> None:
    res.write_header("Content-Type", "text/plain")
    res.end("Hello, World!")


def main(port: int) -> None:
    app = App()
    app.get("/", index)
    app.listen(AppListenOptions(port=port, host="127.0.0.1"), lambda config: None)
    app.run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
