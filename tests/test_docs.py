"""The documentation is tested: its code runs, its commands parse, its site builds with warnings as errors.

- Every fenced ``python`` block in README.md and docs/**/*.md runs in a fresh
  process, in a temporary directory of its page, as a module (not ``__main__``,
  so ``if __name__ == "__main__": app.run()`` does not start a server); top-level
  ``test_*`` functions it defines are then called. A block with
  ``title="path"`` (``app.py``, ``templates/hello.html``) is also written to that
  path of the page's directory before any block of the page runs, so a page can
  show a template or an ``app.py`` that a later block imports.
- Every shell block (``bash``, ``sh``, ``shell``, ``console``, or untagged) that
  calls ``microweb`` (``microweb ...``, ``.venv/bin/microweb ...``,
  ``python -m microweb ...``) has each such command parsed by the real parser,
  ``microweb.cli.build_parser()``. Usage synopses with ``[optional]`` parts are
  ``text`` blocks.
- ``mkdocs build --strict`` builds the site (mkdocs.yml), so a broken internal
  link, a missing anchor or an API page that does not resolve fails; README.md's
  own relative links are checked here too.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO_ROOT, need
from microweb.cli import UsageError, build_parser

DOCS = Path(REPO_ROOT, "docs")
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", ""}
RUNNER = """
import runpy, sys
namespace = runpy.run_path(sys.argv[1], run_name="docs_snippet")
for name, value in list(namespace.items()):
    if name.startswith("test_") and callable(value):
        value()
"""


@dataclass
class Block:
    page: Path
    line: int
    language: str
    title: str | None
    code: str

    @property
    def where(self) -> str:
        return f"{os.path.relpath(self.page, REPO_ROOT)}:{self.line}"


FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")


def blocks_of(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the line each starts on."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m.group("fence"), len(m.group("indent"))
        info = m.group("info").strip()
        language = info.split()[0].lower() if info else ""
        title = re.search(r'title="([^"]+)"', info)
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        found.append(Block(page, start, language, title.group(1) if title else None, "\n".join(body) + "\n"))
        i += 1
    return found


def pages() -> list[Path]:
    return [Path(REPO_ROOT, "README.md"), *sorted(DOCS.rglob("*.md"))]


def all_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks_of(page)]


PYTHON_BLOCKS = [b for b in all_blocks() if b.language in ("python", "py")]


def test_the_pages_have_python_blocks() -> None:
    """A sanity check on the collector: the guide is full of runnable code."""
    assert len(PYTHON_BLOCKS) >= 25
    assert {b.page.name for b in PYTHON_BLOCKS} >= {"README.md", "routing.md", "requests.md", "responses.md",
                                                     "testing.md", "templates.md", "static.md"}


def _write_titled_files(page: Path, directory: Path) -> None:
    for block in blocks_of(page):
        if block.title:
            target = directory / block.title
            assert target.resolve().is_relative_to(directory.resolve()), block.where
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.where for b in PYTHON_BLOCKS])
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    _write_titled_files(block.page, tmp_path)
    snippet = tmp_path / "_snippet.py"
    snippet.write_text(block.code, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", RUNNER, str(snippet)], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, f"{block.where} failed:\n{r.stderr[-3000:]}"


# -- shell blocks ------------------------------------------------------------------------------


def microweb_commands(block: Block) -> list[list[str]]:
    """The argument lists of the ``microweb`` commands in a shell block."""
    text = block.code.replace("\\\n", " ")
    lines = text.splitlines()
    if block.language == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    commands = []
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token in ("&&", "||", ";", "|", "&"):
                argv = _microweb_argv(words)
                if argv is not None:
                    commands.append(argv)
                words = []
            else:
                words.append(token)
    return commands


def _microweb_argv(words: list[str]) -> list[str] | None:
    while words and (re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]) or words[0] in ("sudo", "exec")):
        words = words[1:]
    if not words:
        return None
    if os.path.basename(words[0]) == "microweb":
        return words[1:]
    if re.fullmatch(r"(.*/)?python3?(\.\d+)?", words[0]) and words[1:3] == ["-m", "microweb"]:
        return words[3:]
    return None


SHELL_BLOCKS = [b for b in all_blocks() if b.language in SHELL_LANGUAGES and "microweb" in b.code
                and microweb_commands(b)]


def test_the_pages_have_microweb_commands() -> None:
    assert sum(len(microweb_commands(b)) for b in SHELL_BLOCKS) >= 15


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[b.where for b in SHELL_BLOCKS])
def test_microweb_commands_parse(block: Block) -> None:
    parser = build_parser()
    for argv in microweb_commands(block):
        try:
            args = parser.parse_args(argv)
        except UsageError as exc:
            pytest.fail(f"{block.where}: microweb {shlex.join(argv)}: {exc}")
        except SystemExit as exc:  # --help, --version
            assert exc.code == 0, f"{block.where}: microweb {shlex.join(argv)}"
            continue
        assert args.command, f"{block.where}: microweb {shlex.join(argv)}: no command"


def test_the_command_checker_catches_a_wrong_flag() -> None:
    block = Block(DOCS / "x.md", 1, "bash", None, "cd site && microweb run app:app --prot 8000\n")
    assert microweb_commands(block) == [["run", "app:app", "--prot", "8000"]]
    with pytest.raises(UsageError):
        build_parser().parse_args(microweb_commands(block)[0])


# -- links and the site ------------------------------------------------------------------------


def need_docs_tools() -> None:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        need(module, f"the docs build needs {module}: pip install -e '.[docs]' (the test extra has it)")


def test_readme_links_resolve() -> None:
    text = Path(REPO_ROOT, "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link.split("#")[0] for link in links if not re.match(r"[a-z]+:", link) and not link.startswith("#")]
    assert local
    missing = [link for link in local if not Path(REPO_ROOT, link).exists()]
    assert not missing, missing


def test_docs_site_builds_strict(tmp_path: Path) -> None:
    need_docs_tools()
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stderr, r.stderr
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "microweb" in home and 'href="routing/"' in home
    for page in DOCS.glob("*.md"):  # every page is built and in the nav
        assert (site / page.stem / "index.html").is_file() or page.stem == "index", page
        assert f'href="{page.stem}/"' in home or page.stem == "index", f"{page.name} is not in the nav"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "microweb.App" in api and "Register the decorated function" in api  # docstrings made it
    assert "EventStreamResponse" in api and "download_name" in api


def test_docs_nav_takes_pages_added_later(tmp_path: Path) -> None:
    """Pages that other work adds (sessions, websockets, anything new) join the nav by their file alone."""
    need_docs_tools()
    import shutil

    for name in ("docs", "tools", "microweb"):
        shutil.copytree(Path(REPO_ROOT, name), tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(Path(REPO_ROOT, "mkdocs.yml"), tmp_path / "mkdocs.yml")
    (tmp_path / "docs" / "sessions.md").write_text("# Sessions and state\n\nSigned cookies.\n")
    (tmp_path / "docs" / "zeta.md").write_text("# Zeta, a page nobody listed\n\nSee [routing](routing.md).\n")
    for page in ("websockets.md", "conformance.md"):
        (tmp_path / "docs" / page).unlink(missing_ok=True)  # listed in mkdocs.yml, not there: left out
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    home = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="sessions/"' in home and 'href="zeta/"' in home and "More" in home
    assert home.index('href="templates/"') < home.index('href="sessions/"') < home.index('href="static/"')
    assert 'href="websockets/"' not in home


def test_the_screenshots_are_checked_in() -> None:
    """tools/screenshots.py's PNGs (headless Chromium): the built docs' home page and the demo."""
    import struct

    for name, min_width in (("docs-home.png", 1000), ("demo.png", 800)):
        data = (DOCS / "screenshots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", name
        width, height = struct.unpack(">II", data[16:24])
        assert width >= min_width and height >= 300 and len(data) > 10_000, (name, width, height)
