"""Every Python block of docs/structure.md runs on its own (its asserts are the checks)."""
from __future__ import annotations

import os
import re

import pytest

from tests.conftest import REPO_ROOT

DOC = os.path.join(REPO_ROOT, "docs", "structure.md")
BLOCKS = re.findall(r"```python\n(.*?)```", open(DOC, encoding="utf-8").read(), re.S)


def test_the_page_has_blocks() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_block_runs(index: int) -> None:
    if "import flask" in BLOCKS[index]:
        pytest.importorskip("flask")
    exec(compile(BLOCKS[index], f"docs/structure.md block {index + 1}", "exec"), {"__name__": "docs_block"})
