"""MkDocs hooks for the docs site: a nav that follows the pages that exist.

Pages are written in parallel with the features they describe, so the nav in
mkdocs.yml names some that may not be there yet: ``on_config`` drops entries
whose file is missing (a strict build would fail on them) and appends, under
"More", any page that exists but is not listed (a strict build would not link
it). A new page therefore needs only its file under docs/.
"""
from __future__ import annotations

import os
from typing import Any


def _prune(items: list[Any], docs_dir: str, seen: set[str]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, str):
            if os.path.isfile(os.path.join(docs_dir, item)):
                seen.add(item)
                kept.append(item)
        elif isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, list):
                children = _prune(value, docs_dir, seen)
                if children:
                    kept.append({title: children})
            elif isinstance(value, str) and (value.startswith(("http://", "https://"))
                                             or os.path.isfile(os.path.join(docs_dir, value))):
                seen.add(value)
                kept.append(item)
    return kept


def on_config(config: Any, **kwargs: Any) -> Any:
    docs_dir = config["docs_dir"]
    seen: set[str] = set()
    nav = _prune(list(config["nav"] or []), docs_dir, seen)
    extra = []
    for root, dirs, files in os.walk(docs_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(files):
            path = os.path.relpath(os.path.join(root, name), docs_dir).replace(os.sep, "/")
            if name.endswith(".md") and path not in seen:
                extra.append(path)
    if extra:
        nav.append({"More": extra})
    config["nav"] = nav
    return config
