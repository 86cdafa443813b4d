"""``microweb new NAME``: a new site to start from (app, templates, static files and a test)."""
from __future__ import annotations

import os
import re

__all__ = ["create_project", "FILES"]

APP = '''"""{name}: a microweb site.

Develop:  microweb run app:app --debug --reload
Test:     python -m pytest -q
"""
from __future__ import annotations

import os

from microweb import App, Request

HERE = os.path.dirname(os.path.abspath(__file__))

app = App(template_folder=os.path.join(HERE, "templates"), static_folder=os.path.join(HERE, "static"))


@app.route("/")
def index(request: Request) -> str:
    return request.render_template("index.html", title="{name}")


@app.get("/api/hello/<name>")
def hello(request: Request, name: str) -> dict[str, str]:
    return {{"hello": name}}
'''

BASE = '''<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{name}{% endblock %}</title>
<link rel="stylesheet" href="{{ url_for('static', filename='style.css') }}">
</head>
<body>
<header><a href="/">{name}</a></header>
<main>{% block content %}{% endblock %}</main>
</body>
</html>
'''

INDEX = '''{% extends "base.html" %}
{% block content %}
<h1>{{ title }}</h1>
<p>Edit <code>app.py</code>, <code>templates/</code> and <code>static/</code>; with
<code>microweb run app:app --debug --reload</code> the page reloads itself.</p>
{% endblock %}
'''

NOT_FOUND = '''{% extends "base.html" %}
{% block title %}Not found{% endblock %}
{% block content %}
<h1>Not found</h1>
<p>There is nothing at <code>{{ path }}</code>. <a href="/">Home</a></p>
{% endblock %}
'''

STYLE = '''body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
header a { font-weight: bold; text-decoration: none; color: inherit; }
'''

TEST = '''"""Tests for {name}: app.test_client() runs requests through the app in memory, no server needed.

The test client needs httpx, and these tests pytest: pip install 'microweb[testing]'.
"""
from __future__ import annotations

from app import app


def test_index() -> None:
    client = app.test_client()
    response = client.get("/")
    assert response.status_code == 200
    assert "<h1>{name}</h1>" in response.text


def test_api() -> None:
    response = app.test_client().get("/api/hello/world")
    assert response.json() == {{"hello": "world"}}


def test_not_found_page() -> None:
    response = app.test_client().get("/no/such/page")
    assert response.status_code == 404
    assert "nothing at <code>/no/such/page</code>" in response.text


def test_static_file() -> None:
    response = app.test_client().get("/style.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
'''

README = '''# {name}

A microweb site: `app.py` (the routes), `templates/` (Jinja2, `base.html` is the layout),
`static/` (served as is) and `test_app.py`.

Set up a virtual environment with microweb and its test client (`pytest`, `httpx`: the
`testing` extra), then run the tests and the development server:

```
python3 -m venv .venv && .venv/bin/pip install 'microweb[testing]'
.venv/bin/python -m pytest -q
.venv/bin/microweb run app:app --debug --reload
```

From a checkout of microweb instead of PyPI: `.venv/bin/pip install -e '/path/to/microweb[testing]'`.
'''

FILES: dict[str, str] = {
    "README.md": README,
    "app.py": APP,
    "templates/base.html": BASE,
    "templates/index.html": INDEX,
    "templates/404.html": NOT_FOUND,
    "static/style.css": STYLE,
    "test_app.py": TEST,
}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NAME_RULE = "a letter or digit, then letters, digits, '.', '_' or '-'"


def create_project(path: str) -> list[str]:
    """Write the scaffold into the new directory ``path``; returns the files written.

    The project's name is the directory's own name (``microweb new .`` in an empty
    directory uses its name). Raises ``ValueError`` for a bad name or a directory
    that exists and is not empty.
    """
    if not path.strip():
        raise ValueError("the project needs a name: microweb new NAME")
    name = os.path.basename(os.path.abspath(path))
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid project name {name!r}: {_NAME_RULE}")
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise ValueError(f"{path} already exists and is not an empty directory")
    written = []
    for relative, template in FILES.items():
        target = os.path.join(path, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # Jinja templates keep their braces: only Python files and the base title are formatted.
        if relative.endswith(".py"):
            text = template.format(name=name)
        else:
            text = template.replace("{name}", name)
        with open(target, "x", encoding="utf-8") as f:
            f.write(text)
        written.append(relative)
    return written
