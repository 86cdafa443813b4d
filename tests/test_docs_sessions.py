"""Every Python block of docs/sessions.md runs on its own (its asserts are the documented behaviour)."""
from __future__ import annotations

import os
import re

import pytest

from tests.conftest import REPO_ROOT

DOC = os.path.join(REPO_ROOT, "docs", "sessions.md")


def python_blocks() -> list[str]:
    with open(DOC, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def test_the_page_has_its_examples_and_tables() -> None:
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    assert len(python_blocks()) >= 8
    assert "## Flask equivalents" in text and "| `SECRET_KEY` |" in text


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_docs_block_runs(index: int) -> None:
    source = python_blocks()[index]
    exec(compile(source, f"{DOC}:block{index}", "exec"), {"__name__": f"docs_sessions_{index}"})
