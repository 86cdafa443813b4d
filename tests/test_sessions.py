"""Sessions (signed cookies), flash messages, request.state and app.config, through the test client,
the parser + ``app.handle`` directly, and a live server behind a trusted proxy."""
from __future__ import annotations

import datetime
import json
import logging
import time
from typing import Any

import httpx
import pytest

from microweb import App, Config, Request, Response, redirect
from microweb.http.parser import RequestParser
from microweb.sessions import CookieSessionInterface, Session, SessionInterface

SECRET = "a-test-secret-that-is-long-enough"


def session_app(**config: Any) -> App:
    app = App(template_folder=None, static_folder=None)
    app.config.update({"SECRET_KEY": SECRET, **config})

    @app.get("/set/<key>/<value>")
    def set_value(request: Request, key: str, value: str) -> dict[str, Any]:
        request.session[key] = value
        return dict(request.session)

    @app.get("/get")
    def get(request: Request) -> dict[str, Any]:
        return dict(request.session)

    @app.get("/plain")
    def plain(request: Request) -> str:
        return "no session here"

    @app.get("/clear")
    def clear(request: Request) -> str:
        request.session.clear()
        return "cleared"

    @app.get("/permanent")
    def permanent(request: Request) -> str:
        request.session["p"] = "1"
        request.session.permanent = True
        return "permanent"

    return app


def session_cookie(response: httpx.Response, name: str = "session") -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            return header
    return None


def cookie_value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


def raw_get(app: App, path: str, cookie: str | None = None, extra: bytes = b"") -> bytes:
    head = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: a\r\n" + extra
    if cookie is not None:
        head += b"Cookie: session=" + cookie.encode() + b"\r\n"
    request = RequestParser(request_class=app.request_class).receive(head + b"\r\n")[0]
    out = app.handle(request)
    assert isinstance(out, bytes)
    return out


def signed(data: dict[str, Any], secret: str = SECRET, now: float | None = None) -> str:
    interface = CookieSessionInterface()
    key = interface._derive(secret)
    return interface.sign(key, data, json.dumps, now=now)


# -- the session ------------------------------------------------------------------------------

def test_session_round_trip_and_cookie_defaults() -> None:
    c = session_app().test_client()
    r = c.get("/set/user/ada")
    header = session_cookie(r)
    assert header is not None
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Secure" not in header  # plain HTTP
    assert "Expires" not in header and "Max-Age" not in header  # a browser-session cookie
    assert r.headers["vary"] == "Cookie"
    assert c.get("/get").json() == {"user": "ada"}
    c.get("/set/theme/dark")
    assert c.get("/get").json() == {"user": "ada", "theme": "dark"}


def test_reading_does_not_write_and_untouched_sessions_cost_nothing() -> None:
    app = session_app()
    c = app.test_client()
    c.get("/set/user/ada")
    r = c.get("/get")
    assert session_cookie(r) is None and r.headers["vary"] == "Cookie"
    r = c.get("/plain")  # the session is never opened: no Vary, no Set-Cookie
    assert "vary" not in r.headers and session_cookie(r) is None
    cookie = cookie_value(session_cookie(c.get("/set/a/b")) or "")
    out = raw_get(app, "/plain", cookie)
    assert b"Vary" not in out and b"Set-Cookie" not in out and out.endswith(b"no session here")


def test_the_hot_path_is_unchanged_for_handlers_that_do_not_use_the_session() -> None:
    app = session_app()
    request = RequestParser(request_class=app.request_class).receive(b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")[0]
    app.handle(request)
    assert request._session is None and not request.session_opened
    with pytest.raises(AttributeError):
        request._state  # request.state is made only when used


def test_a_modified_session_on_the_fast_path_is_still_saved() -> None:
    """A str/dict handler with no after_request hooks takes the shortcut unless the session was used."""
    app = session_app()
    out = raw_get(app, "/set/k/v")
    assert b"Set-Cookie: session=" in out and out.endswith(b'{"k":"v"}')


def flip(char: str) -> str:
    """Another character of the same alphabet (base64url or digits): one byte changed."""
    if char.isdigit():
        return str((int(char) + 1) % 10)
    return "B" if char == "A" else "A"


def test_a_tampered_cookie_is_an_empty_session() -> None:
    """One byte flipped anywhere (payload, timestamp or signature): an empty session, never an error."""
    app = session_app()
    good = signed({"user": "ada"})
    assert app.test_client(cookies={"session": good}).get("/get").json() == {"user": "ada"}
    tried = 0
    for position, char in enumerate(good):
        if char == ".":
            continue
        bad = good[:position] + flip(char) + good[position + 1:]
        r = app.test_client(cookies={"session": bad}).get("/get")
        assert r.status_code == 200 and r.json() == {}, (position, bad)
        tried += 1
    assert tried == len(good) - 2


def test_a_forged_payload_with_a_copied_signature_is_rejected() -> None:
    import base64

    good = signed({"user": "ada"})
    _, stamp, signature = good.split(".")
    forged = base64.urlsafe_b64encode(b'{"user":"admin"}').rstrip(b"=").decode() + f".{stamp}.{signature}"
    assert session_app().test_client(cookies={"session": forged}).get("/get").json() == {}


@pytest.mark.parametrize("value", ["garbage", "a.b.c", "..", "x.1.y", "%ff%fe", "a." * 500,
                                   "eyJ1c2VyIjoiYWRhIn0.99999999999999999999.sig"])
def test_a_malformed_cookie_is_an_empty_session(value: str) -> None:
    r = session_app().test_client(cookies={"session": value}).get("/get")
    assert r.status_code == 200 and r.json() == {}


def test_a_cookie_with_non_ascii_bytes_is_an_empty_session() -> None:
    out = raw_get(session_app(), "/get", extra="Cookie: session=\u00e9.1.\u00e9\r\n".encode("latin-1"))
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"{}")


def test_a_signed_payload_that_is_not_an_object_is_an_empty_session() -> None:
    interface = CookieSessionInterface()
    key = interface._derive(SECRET)
    not_a_dict = interface.sign(key, {"x": 1}, lambda value: "[1, 2]")
    assert session_app().test_client(cookies={"session": not_a_dict}).get("/get").json() == {}


def test_an_expired_cookie_is_an_empty_session() -> None:
    app = session_app(PERMANENT_SESSION_LIFETIME=datetime.timedelta(hours=1))
    fresh = signed({"user": "ada"}, now=time.time() - 3500)
    old = signed({"user": "ada"}, now=time.time() - 3700)
    future = signed({"user": "ada"}, now=time.time() + 3600)
    assert app.test_client(cookies={"session": fresh}).get("/get").json() == {"user": "ada"}
    assert app.test_client(cookies={"session": old}).get("/get").json() == {}
    assert app.test_client(cookies={"session": future}).get("/get").json() == {}
    app.config["PERMANENT_SESSION_LIFETIME"] = 60  # seconds as a number work too
    assert app.test_client(cookies={"session": fresh}).get("/get").json() == {}


def test_a_cookie_signed_with_another_key_is_an_empty_session() -> None:
    other = signed({"user": "ada"}, secret="some-other-secret")
    assert session_app().test_client(cookies={"session": other}).get("/get").json() == {}


def test_key_rotation_reads_old_cookies_and_resigns_them() -> None:
    old_cookie = signed({"user": "ada"}, secret="the-old-secret")
    app = session_app(SECRET_KEY_FALLBACKS=["the-old-secret"])
    c = app.test_client(cookies={"session": old_cookie})
    r = c.get("/get")
    assert r.json() == {"user": "ada"}
    header = session_cookie(r)
    assert header is not None  # re-signed with the new key
    new_cookie = cookie_value(header)
    assert new_cookie != old_cookie
    only_new = session_app()  # no fallbacks: the new cookie alone must verify
    assert only_new.test_client(cookies={"session": new_cookie}).get("/get").json() == {"user": "ada"}
    assert only_new.test_client(cookies={"session": old_cookie}).get("/get").json() == {}
    again = app.test_client(cookies={"session": new_cookie}).get("/get")
    assert session_cookie(again) is None  # once re-signed, nothing more to write


def test_without_a_secret_key_the_session_is_a_clear_runtime_error(caplog: pytest.LogCaptureFixture) -> None:
    app = App(template_folder=None, static_folder=None)

    @app.get("/")
    def index(request: Request) -> str:
        return str(request.session.get("x"))

    with caplog.at_level(logging.ERROR, logger="microweb"):
        r = app.test_client().get("/")
    assert r.status_code == 500
    assert "RuntimeError" in caplog.text and "SECRET_KEY" in caplog.text
    request = RequestParser(request_class=app.request_class).receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0]
    request.app = app
    with pytest.raises(RuntimeError, match=r"app.config\['SECRET_KEY'\]"):
        request.session
    assert request.get_flashed_messages() == []  # nothing can have been flashed


def test_an_oversize_cookie_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    c = session_app().test_client()
    with caplog.at_level(logging.WARNING, logger="microweb"):
        r = c.get("/set/small/" + "x" * 100)
    assert "too large" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="microweb"):
        r = c.get("/set/big/" + "x" * 4000)
    assert r.status_code == 200 and session_cookie(r) is not None  # still sent: the browser decides
    assert "'session' cookie is too large" in caplog.text and "limit is 4093 bytes" in caplog.text


def test_permanent_sessions_expire_and_refresh() -> None:
    c = session_app(PERMANENT_SESSION_LIFETIME=datetime.timedelta(days=2)).test_client()
    header = session_cookie(c.get("/permanent"))
    assert header is not None and "Max-Age=172800" in header and "Expires=" in header
    assert session_cookie(c.get("/get")) is not None  # SESSION_REFRESH_EACH_REQUEST: expiry moves on
    c2 = session_app(SESSION_REFRESH_EACH_REQUEST=False).test_client()
    c2.get("/permanent")
    assert session_cookie(c2.get("/get")) is None


def test_clear_deletes_the_cookie() -> None:
    c = session_app().test_client()
    c.get("/set/user/ada")
    r = c.get("/clear")
    header = session_cookie(r)
    assert header is not None and "Max-Age=0" in header
    assert c.get("/get").json() == {}
    assert session_cookie(session_app().test_client().get("/clear")) is None  # nothing to delete


def test_session_tracks_modification() -> None:
    s = Session({"a": [1]})
    assert not s.modified and not s.new
    s["a"].append(2)
    assert not s.modified  # changes inside values are not seen (as in Flask)
    for change in (lambda: s.__setitem__("b", 1), lambda: s.pop("b"), lambda: s.setdefault("c", 2),
                   lambda: s.update(d=1), lambda: s.__delitem__("d"), lambda: s.popitem(), s.clear):
        s.modified = False
        change()
        assert s.modified
    s.modified = False
    s.pop("missing", None)
    s.setdefault("a", 5)
    s.setdefault("a", 6)
    assert s["a"] == 5
    s.clear()
    s.modified = False
    s.clear()
    assert not s.modified  # clearing an empty session changes nothing
    s.permanent = True
    assert s.permanent and s.modified and s["_permanent"] is True
    s.permanent = False
    assert not s.permanent and "_permanent" not in s


def test_cookie_options_from_config() -> None:
    c = session_app(SESSION_COOKIE_NAME="sid", SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_HTTPONLY=False,
                    SESSION_COOKIE_DOMAIN="example.test", SESSION_COOKIE_PATH="/app").test_client()
    header = session_cookie(c.get("/set/a/b"), "sid")
    assert header is not None
    assert "SameSite=Strict" in header and "HttpOnly" not in header
    assert "Domain=example.test" in header and "Path=/app" in header
    forced = session_app(SESSION_COOKIE_SECURE=True).test_client()
    assert "Secure" in (session_cookie(forced.get("/set/a/b")) or "")


def test_secure_cookie_over_https() -> None:
    c = session_app().test_client(base_url="https://testserver")
    header = session_cookie(c.get("/set/a/b"))
    assert header is not None and "Secure" in header
    never = session_app(SESSION_COOKIE_SECURE=False).test_client(base_url="https://testserver")
    assert "Secure" not in (session_cookie(never.get("/set/a/b")) or "")


def test_secure_cookie_behind_a_trusted_proxy(live_server: Any) -> None:
    """``X-Forwarded-Proto: https`` from a trusted peer makes the cookie Secure; from others it is ignored."""
    app = session_app()
    trusted = live_server(app)  # --forwarded-allow-ips defaults to 127.0.0.1
    r = httpx.get(trusted.url + "/set/a/b", headers={"X-Forwarded-Proto": "https"}, timeout=5)
    assert "Secure" in (session_cookie(r) or "")
    r = httpx.get(trusted.url + "/set/a/b", timeout=5)
    assert "Secure" not in (session_cookie(r) or "")
    untrusted = live_server(app, forwarded_allow_ips="")
    r = httpx.get(untrusted.url + "/set/a/b", headers={"X-Forwarded-Proto": "https"}, timeout=5)
    assert session_cookie(r) is not None and "Secure" not in (session_cookie(r) or "")


def test_a_session_on_a_live_server_across_requests(live_server: Any) -> None:
    server = live_server(session_app())
    with httpx.Client(base_url=server.url, timeout=5) as c:
        c.get("/set/user/ada")
        assert c.get("/get").json() == {"user": "ada"}


def test_session_survives_an_error_page_and_after_request_hooks() -> None:
    app = session_app()

    @app.get("/fail")
    def fail(request: Request) -> str:
        request.session["seen"] = "yes"
        raise ValueError("boom")

    @app.after_request
    def hook(request: Request, response: Response) -> Response:
        if request.path == "/hooked":
            request.session["hook"] = "ran"
        return response

    @app.get("/hooked")
    def hooked(request: Request) -> str:
        return "x"

    c = app.test_client()
    assert c.get("/fail").status_code == 500
    c.get("/hooked")  # a hook can change the session: it is saved after the hooks
    assert c.get("/get").json() == {"seen": "yes", "hook": "ran"}


def test_a_session_value_json_cannot_hold_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    app = session_app()

    @app.get("/bad")
    def bad(request: Request) -> str:
        request.session["x"] = object()
        return "x"

    with caplog.at_level(logging.ERROR, logger="microweb"):
        r = app.test_client().get("/bad")
    assert r.status_code == 500 and "not JSON serializable" in caplog.text
    assert session_cookie(r) is None


def test_session_values_are_json_types() -> None:
    app = session_app()
    when = datetime.datetime(2026, 12, 2, 4, 0, tzinfo=datetime.timezone.utc)

    @app.get("/store")
    def store(request: Request) -> str:
        request.session.update(when=when, pair=(1, 2), n=1.5)
        return "ok"

    c = app.test_client()
    c.get("/store")
    assert c.get("/get").json() == {"when": "2026-12-02T04:00:00+00:00", "pair": [1, 2], "n": 1.5}


class MemorySessions(SessionInterface):
    """A server-side store: the cookie holds only a random id (the docs' example, tested)."""

    def __init__(self) -> None:
        self.store: dict[str, dict[str, Any]] = {}

    def open_session(self, app: Any, request: Any) -> Session:
        sid = request.cookies.get(self.cookie_name(app))
        data = self.store.get(sid or "")
        if data is None:
            return Session(new=True)
        return Session(data)

    def save_session(self, app: Any, request: Any, session: Session, response: Any) -> None:
        import secrets

        if not session.modified:
            return
        sid = request.cookies.get(self.cookie_name(app))
        if sid in self.store:
            del self.store[sid]
        if not session:
            self.delete_cookie(app, request, response)
            return
        sid = secrets.token_urlsafe(24)  # a new id on every change: no fixation
        self.store[sid] = dict(session)
        self.set_cookie(app, request, response, sid, session)


def test_a_server_side_session_interface() -> None:
    app = session_app(SECRET_KEY=None)  # a store of your own needs no signing key
    store = MemorySessions()
    app.session_interface = store
    c = app.test_client()
    r = c.get("/set/user/ada")
    header = session_cookie(r)
    assert header is not None and "HttpOnly" in header
    assert list(store.store.values()) == [{"user": "ada"}]
    assert cookie_value(header) in store.store
    assert c.get("/get").json() == {"user": "ada"}
    c.get("/clear")
    assert store.store == {}
    assert c.get("/get").json() == {}


# -- flash ------------------------------------------------------------------------------------

def flash_app() -> App:
    app = App(template_folder=None, static_folder=None)
    app.secret_key = SECRET

    @app.post("/save")
    def save(request: Request) -> Response:
        request.flash("Saved.")
        request.flash("Careful!", "warning")
        return redirect("/", 303)

    @app.get("/")
    def index(request: Request) -> dict[str, Any]:
        return {
            "all": request.get_flashed_messages(),
            "again": request.get_flashed_messages(),
            "categories": request.get_flashed_messages(with_categories=True),
            "warnings": request.get_flashed_messages(category_filter=["warning"]),
            "warning_pairs": request.get_flashed_messages(True, "warning"),
        }

    return app


def test_flash_survives_exactly_one_redirect() -> None:
    c = flash_app().test_client()
    r = c.post("/save")
    assert r.status_code == 303 and session_cookie(r) is not None
    r = c.get(r.headers["location"])
    assert r.json() == {
        "all": ["Saved.", "Careful!"],
        "again": ["Saved.", "Careful!"],  # the same within one request
        "categories": [["message", "Saved."], ["warning", "Careful!"]],
        "warnings": ["Careful!"],
        "warning_pairs": [["warning", "Careful!"]],
    }
    assert session_cookie(r) is not None  # the messages were taken out of the session
    assert c.get("/").json()["all"] == []  # shown once, then gone


def test_flash_follows_redirects_with_a_real_client(live_server: Any) -> None:
    server = live_server(flash_app())
    with httpx.Client(base_url=server.url, timeout=5, follow_redirects=True) as c:
        r = c.post("/save")
        assert r.url.path == "/" and r.json()["all"] == ["Saved.", "Careful!"]
        assert c.get("/").json()["all"] == []


# -- request.state ----------------------------------------------------------------------------

def test_state_set_in_before_request_is_seen_by_the_handler() -> None:
    app = App(template_folder=None, static_folder=None)

    @app.before_request
    def load(request: Request) -> None:
        request.state.user = {"name": "ada"}
        request.state.count = 1

    @app.get("/")
    def index(request: Request) -> dict[str, Any]:
        request.state.count += 1
        return {"user": request.state.user, "count": request.state.count, "has": "user" in request.state,
                "missing": getattr(request.state, "nope", None)}

    assert app.test_client().get("/").json() == {"user": {"name": "ada"}, "count": 2, "has": True, "missing": None}


def test_state_is_per_request() -> None:
    app = App(template_folder=None, static_folder=None)

    @app.get("/")
    def index(request: Request) -> str:
        first = not hasattr(request.state, "seen")
        request.state.seen = True
        return str(first)

    c = app.test_client()
    assert c.get("/").text == "True" and c.get("/").text == "True"


# -- app.config -------------------------------------------------------------------------------

def test_config_loaders(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = App(template_folder=None, static_folder=None)
    assert app.config["SESSION_COOKIE_NAME"] == "session" and app.config["SECRET_KEY"] is None
    assert app.config.from_mapping({"SECRET_KEY": "k", "lower": 1}, JSON_SORT_KEYS=True)
    assert app.secret_key == "k" and "lower" not in app.config and app.config["JSON_SORT_KEYS"] is True
    app.secret_key = "k2"
    assert app.config["SECRET_KEY"] == "k2"
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"SESSION_COOKIE_NAME": "sid", "ignored": True}))
    assert app.config.from_file(str(path), load=json.load)
    assert app.config["SESSION_COOKIE_NAME"] == "sid" and "ignored" not in app.config
    assert app.config.from_file(str(tmp_path / "missing.json"), load=json.load, silent=True) is False
    with pytest.raises(FileNotFoundError, match="Unable to load configuration file"):
        app.config.from_file(str(tmp_path / "missing.json"), load=json.load)
    monkeypatch.setenv("MICROWEB_SECRET_KEY", "from-env")
    monkeypatch.setenv("MICROWEB_CSRF_PROTECT", "true")
    monkeypatch.setenv("MICROWEB_MAX_COOKIE_SIZE", "4000")
    monkeypatch.setenv("MICROWEB_SESSION_COOKIE_SAMESITE", "Strict")  # not JSON: kept as a string
    monkeypatch.setenv("MICROWEB_DB__HOST", "db.local")
    monkeypatch.setenv("MICROWEB_DB__PORT", "5432")
    monkeypatch.setenv("OTHER_SECRET_KEY", "no")
    app.config.from_prefixed_env()
    assert app.config["SECRET_KEY"] == "from-env" and app.config["CSRF_PROTECT"] is True
    assert app.config["MAX_COOKIE_SIZE"] == 4000 and app.config["SESSION_COOKIE_SAMESITE"] == "Strict"
    assert app.config["DB"] == {"HOST": "db.local", "PORT": 5432}
    monkeypatch.setenv("MYAPP_SECRET_KEY", "mine")
    app.config.from_prefixed_env("MYAPP")
    assert app.secret_key == "mine"

    class Settings:
        SESSION_COOKIE_NAME = "obj"
        lower = "ignored"

    app.config.from_object(Settings)
    assert app.config["SESSION_COOKIE_NAME"] == "obj"
    tomllib = pytest.importorskip("tomllib")
    toml_path = tmp_path / "settings.toml"
    toml_path.write_text('SESSION_COOKIE_NAME = "toml"\n')
    app.config.from_file(str(toml_path), load=tomllib.load, text=False)
    assert app.config["SESSION_COOKIE_NAME"] == "toml"


def test_config_is_a_dict_whose_changes_the_app_sees() -> None:
    assert isinstance(App().config, dict) and isinstance(App().config, Config)
    a, b = App(), App()
    a.config["SECRET_KEY_FALLBACKS"].append("x")
    assert b.config["SECRET_KEY_FALLBACKS"] == []  # defaults are not shared
    seen: list[str] = []
    config = Config()
    config.watch(seen.append)
    config["A"] = 1
    config.update(B=2)
    config.setdefault("C", 3)
    config.setdefault("C", 4)
    config |= {"D": 4}
    del config["A"]
    config.pop("B")
    config.pop("missing", None)
    config.popitem()
    config.clear()
    assert seen == ["A", "B", "C", "D", "A", "B", "D", "C"]
