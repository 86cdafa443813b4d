"""Templates with the request: context processors (error pages included), filters, globals, tests,
and the names every such render gets (request, session, url_for, get_flashed_messages, config,
csrf_token)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from microweb import App, Request, Response, redirect

SECRET = "a-test-secret-that-is-long-enough"


def make_app(tmp_path: Path, templates: dict[str, str]) -> App:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    for name, text in templates.items():
        (folder / name).write_text(text)
    app = App(template_folder=folder, static_folder=None)
    app.secret_key = SECRET
    return app


def test_context_processor_in_pages_and_in_a_404_page(tmp_path: Path) -> None:
    app = make_app(tmp_path, {
        "page.html": "user={{ user }} site={{ site }} own={{ own }}",
        "404.html": "missing {{ path }} for {{ user }} on {{ site }}",
    })

    @app.before_request
    def load(request: Request) -> None:
        request.state.user = request.headers.get("x-user", "anonymous")

    @app.context_processor
    def inject(request: Request) -> dict[str, Any]:
        return {"user": request.state.user, "own": "processor"}

    @app.context_processor
    def no_arguments() -> dict[str, Any]:  # Flask's style, without the request, works too
        return {"site": "Notes"}

    @app.get("/")
    def index(request: Request) -> str:
        return request.render_template("page.html", own="render")  # the render's own values win

    c = app.test_client()
    assert c.get("/", headers={"x-user": "ada"}).text == "user=ada site=Notes own=render"
    r = c.get("/no/such/page", headers={"x-user": "ada"})
    assert r.status_code == 404 and r.text == "missing /no/such/page for ada on Notes"
    assert app.render_template("page.html") == "user= site= own="  # no request: no processors


def test_context_processor_on_the_package_error_page_and_a_500(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"500.html": "oops {{ who }}"})
    calls: list[str] = []

    @app.context_processor
    def inject(request: Request) -> dict[str, Any]:
        calls.append(request.path)
        return {"who": "ada"}

    @app.get("/boom")
    def boom(request: Request) -> str:
        raise ValueError("x")

    c = app.test_client()
    assert c.get("/boom").text == "oops ada"
    assert c.get("/nothing").status_code == 404 and calls == ["/boom", "/nothing"]


def test_a_failing_context_processor_still_gives_an_error_page(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"404.html": "{{ x }}"})

    @app.context_processor
    def broken(request: Request) -> dict[str, Any]:
        raise RuntimeError("processor bug")

    r = app.test_client().get("/missing")
    assert r.status_code == 404 and "404" in r.text  # the built-in fallback page


def test_filters_globals_and_tests(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"t.html": "{{ 'ada'|shout }} {{ 'x'|twice }} {{ answer() }} {{ version }} "
                                        "{{ 'yes' if 4 is even_number else 'no' }} {{ 'ok' if 'a' is short }}"})

    @app.template_filter()
    def shout(value: str) -> str:
        return value.upper() + "!"

    @app.template_filter("twice")
    def double(value: str) -> str:
        return value * 2

    @app.template_global()
    def answer() -> int:
        return 42

    app.add_template_global("1.0", "version")

    @app.template_test("even_number")
    def is_even(value: int) -> bool:
        return value % 2 == 0

    @app.template_test  # without parentheses
    def short(value: str) -> bool:
        return len(value) < 3

    assert app.render_template("t.html") == "ADA! xx 42 1.0 yes ok"
    assert set(app.template_filters) == {"shout", "twice"} and "answer" in app.template_globals


def test_helpers_added_after_the_first_render(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"a.html": "a", "b.html": "{{ 'b'|late }}{{ late_global }}"})
    assert app.render_template("a.html") == "a"  # the environment now exists

    @app.template_filter()
    def late(value: str) -> str:
        return value + "!"

    app.add_template_global("?", "late_global")
    assert app.render_template("b.html") == "b!?"


def test_names_every_render_with_the_request_gets(tmp_path: Path) -> None:
    app = make_app(tmp_path, {
        "all.html": "{{ request.path }}|{{ session.get('user') }}|{{ session.user }}|{{ 'user' in session }}|"
                    "{{ url_for('all_names') }}|{{ get_flashed_messages() }}|{{ config.SESSION_COOKIE_NAME }}|"
                    "{{ csrf_token()|length }}|{{ request.state.user }}",
        "nosession.html": "{{ request.path }} {{ config.JSON_SORT_KEYS }}",
    })

    @app.get("/login")
    def login(request: Request) -> Response:
        request.session["user"] = "ada"
        request.flash("hello")
        return redirect("/all", 303)

    @app.get("/all")
    def all_names(request: Request) -> str:
        request.state.user = "state-ada"
        return request.render_template("all.html")

    @app.get("/nosession")
    def nosession(request: Request) -> str:
        return request.render_template("nosession.html")

    c = app.test_client()
    c.get("/login")
    r = c.get("/all")
    assert r.text == "/all|ada|ada|True|/all|[&#39;hello&#39;]|session|86|state-ada"
    r = c.get("/nosession")
    assert r.text == "/nosession False"
    assert "vary" not in r.headers  # a template that never reads the session does not open it


def test_session_in_a_template_without_a_secret_key(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"flash.html": "[{{ get_flashed_messages()|length }}]",
                              "session.html": "{{ session.user }}"})
    app.secret_key = None

    @app.get("/flash")
    def flash(request: Request) -> str:
        return request.render_template("flash.html")

    @app.get("/session")
    def session(request: Request) -> str:
        return request.render_template("session.html")

    c = app.test_client()
    assert c.get("/flash").text == "[0]"  # a layout showing flashes works without sessions
    assert c.get("/session").status_code == 500  # using the session itself is the RuntimeError


@pytest.mark.parametrize("key", ["filter", "global", "test"])
def test_a_nameless_helper_is_an_error(key: str) -> None:
    app = App(template_folder=None, static_folder=None)

    class Nameless:
        def __call__(self, value: Any) -> Any:
            return value

    with pytest.raises(ValueError, match="name"):
        app.add_template_helper(key, Nameless())


def test_template_helpers_can_be_collected_elsewhere_and_handed_to_an_app(tmp_path: Path) -> None:
    """What a blueprint will do: carry helpers of its own, then pass them to the app."""
    from microweb.templating import TemplateHelpers

    class Collector(TemplateHelpers):
        def __init__(self) -> None:
            self.init_template_helpers()

    part = Collector()

    @part.template_filter()
    def stars(value: str) -> str:
        return f"*{value}*"

    @part.context_processor
    def inject(request: Request) -> dict[str, Any]:
        return {"section": "blog"}

    app = make_app(tmp_path, {"p.html": "{{ 'x'|stars }} {{ section }}"})
    for name, func in part.template_filters.items():
        app.add_template_filter(func, name)
    for func in part.context_processors:
        app.add_context_processor(func)

    @app.get("/")
    def index(request: Request) -> str:
        return request.render_template("p.html")

    assert app.test_client().get("/").text == "*x* blog"
