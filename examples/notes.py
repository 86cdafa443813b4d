"""A small notes site: log in and out with a session, flash messages after a redirect, the
current user in the layout through a context processor, CSRF tokens on every form, and a JSON
view of real types (dataclasses, datetimes).

    MICROWEB_SECRET_KEY=change-me microweb run examples/notes.py

then open http://127.0.0.1:8000/ and log in as ``ada`` / ``lovelace`` (or ``grace`` / ``hopper``).
Without ``MICROWEB_SECRET_KEY`` a random key is made at start-up, so a restart logs everyone out.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import itertools
import os
import secrets
from typing import Any

from microweb import App, Request, Response, abort, redirect

HERE = os.path.dirname(os.path.abspath(__file__))

app = App(template_folder=os.path.join(HERE, "templates", "notes"), static_folder=None)
app.config.from_mapping(CSRF_PROTECT=True, PERMANENT_SESSION_LIFETIME=datetime.timedelta(days=7))
app.config.from_prefixed_env()  # MICROWEB_SECRET_KEY=..., MICROWEB_SESSION_COOKIE_SECURE=true, ...
if not app.secret_key:
    app.secret_key = secrets.token_hex(32)


# -- data (in memory: a real site has a database) ----------------------------------

@dataclasses.dataclass
class User:
    name: str
    display_name: str
    salt: bytes
    password_hash: bytes

    def check_password(self, password: str) -> bool:
        return hmac.compare_digest(_hash(password, self.salt), self.password_hash)


@dataclasses.dataclass
class Note:
    id: int
    text: str
    created: datetime.datetime


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 50_000)


def _user(name: str, display_name: str, password: str) -> User:
    salt = os.urandom(16)
    return User(name, display_name, salt, _hash(password, salt))


USERS = {u.name: u for u in (_user("ada", "Ada Lovelace", "lovelace"), _user("grace", "Grace Hopper", "hopper"))}
NOTES: dict[str, list[Note]] = {name: [] for name in USERS}
_ids = itertools.count(1)


# -- the current user: a hook puts it on request.state, a context processor into every page ----

@app.before_request
def load_user(request: Request) -> None:
    name = request.session.get("user")
    request.state.user = USERS.get(name) if name else None  # a user deleted since is logged out


@app.context_processor
def inject_user(request: Request) -> dict[str, Any]:
    return {"user": getattr(request.state, "user", None)}


@app.template_filter()
def ago(when: datetime.datetime) -> str:
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds())
    return "just now" if seconds < 60 else f"{seconds // 60} min ago"


def login_required(request: Request) -> User:
    user: User | None = request.state.user
    if user is None:
        abort(401, "Log in first.")
    return user


@app.errorhandler(401)
def unauthorized(request: Request, error: Any) -> Any:
    if request.path.startswith("/api/"):
        return {"error": error.description}, 401
    request.flash(error.description or "Log in first.", "error")
    return redirect(app.url_for("login", next=request.path), 303)


# -- pages ---------------------------------------------------------------------------

@app.get("/")
def index(request: Request) -> str:
    user = login_required(request)
    return request.render_template("index.html", notes=NOTES[user.name])


@app.get("/login")
def login(request: Request) -> str | Response:
    if request.state.user is not None:
        return redirect(app.url_for("index"), 303)
    return request.render_template("login.html", next=request.args.get("next", ""))


@app.post("/login", name="login_post")
def login_post(request: Request) -> str | Response:
    name = request.form.get("username", "").strip().lower()
    user = USERS.get(name)
    if user is None or not user.check_password(request.form.get("password", "")):
        request.flash("Wrong user name or password.", "error")
        return Response(request.render_template("login.html", next=request.form.get("next", "")), 400)
    request.session.clear()  # a fresh session (and CSRF secret) for the logged-in user
    request.session["user"] = user.name
    request.session.permanent = request.form.get("remember") == "on"
    request.flash(f"Welcome back, {user.display_name}.", "success")
    target = request.form.get("next", "")
    return redirect(target if target.startswith("/") and not target.startswith("//") else app.url_for("index"), 303)


@app.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    request.flash("You have been logged out.", "info")
    return redirect(app.url_for("login"), 303)


@app.post("/notes")
def add_note(request: Request) -> Response:
    user = login_required(request)
    text = request.form.get("text", "").strip()
    if not text:
        request.flash("A note needs some text.", "error")
    else:
        NOTES[user.name].insert(0, Note(next(_ids), text[:1000], datetime.datetime.now(datetime.timezone.utc)))
        request.flash("Note saved.", "success")
    return redirect(app.url_for("index"), 303)


@app.post("/notes/<int:note_id>/delete")
def delete_note(request: Request, note_id: int) -> Response:
    user = login_required(request)
    NOTES[user.name] = [n for n in NOTES[user.name] if n.id != note_id]
    request.flash("Note deleted.", "info")
    return redirect(app.url_for("index"), 303)


@app.get("/api/notes")
def api_notes(request: Request) -> dict[str, Any]:
    """Dataclasses and datetimes straight into JSON."""
    user = login_required(request)
    return {"user": user.name, "notes": NOTES[user.name]}


if __name__ == "__main__":
    app.run()
