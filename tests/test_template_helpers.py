from __future__ import annotations

from microweb import App
def test_helpers(tmp_path) -> None:
    """Minimal Flask-named template helpers (issue 11 has the full versions)."""
    (tmp_path/"t.html").write_text("{{ who|shout }} {{ greet() }} {{ 'y' if 3 is odd3 else 'n' }} {{ site }}")
    app = App(template_folder=tmp_path, static_folder=None)
    @app.template_filter()
    def shout(s): return s.upper()
    @app.template_global("greet")
    def g(): return "hi"
    @app.template_test("odd3")
    def t(v): return v == 3
    @app.context_processor
    def cp(): return {"site": "S"}
    @app.get("/")
    def i(request): return request.render_template("t.html", who="bob")
    assert app.test_client().get("/").text == "BOB hi y S"
