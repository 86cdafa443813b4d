"""Sessions: one dict per request, kept in a signed cookie (or in a store of your own).

Theory of operation
-------------------
Nothing happens for a request that never reads ``request.session``. On first use the
request asks ``app.session_interface.open_session(app, request)`` for a ``Session`` and
keeps it in a slot; after the handler (and the ``after_request`` hooks) ``App`` calls
``save_session(app, request, session, response)``, for that request only. The default
interface, ``CookieSessionInterface``, keeps the whole session in one cookie::

    PAYLOAD.TIMESTAMP.SIGNATURE

- ``PAYLOAD``: the session as compact JSON (the app's ``json_dumps``), base64url, no padding;
- ``TIMESTAMP``: when it was signed, in whole seconds since the epoch, in decimal;
- ``SIGNATURE``: base64url of HMAC-SHA256 over ``PAYLOAD.TIMESTAMP``, keyed with
  HMAC-SHA256(``SECRET_KEY``, ``"microweb.session"``): the secret itself signs nothing,
  so another use of the same secret cannot produce a valid session cookie.

Reading checks the signature against ``SECRET_KEY`` and then each of
``SECRET_KEY_FALLBACKS`` (``hmac.compare_digest``), then the age against
``PERMANENT_SESSION_LIFETIME``, then that the payload is a JSON object. Any failure gives a
new, empty session, never an error. A cookie that only an old key verifies is marked
modified, so the response re-signs it with the current key (key rotation). Writing
happens only when the session was modified, or when it is permanent and
``SESSION_REFRESH_EACH_REQUEST`` is on (the expiry moves forward); a session emptied by
``clear()`` deletes its cookie. Any response for which the session was read gets
``Vary: Cookie``.

Values are stored as JSON: what comes back is JSON types (a ``datetime`` stored comes back
as its ISO 8601 string, a tuple as a list).
"""
from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import json
import logging
import time
from typing import Any, Iterator

from .config import DEFAULT_CONFIG

__all__ = ["Session", "SessionInterface", "CookieSessionInterface", "TemplateSession", "add_vary"]

log = logging.getLogger("microweb")

NO_SECRET_KEY = (
    "The session is unavailable because no secret key was set: set app.config['SECRET_KEY'] "
    "(or app.secret_key) to a long random string, e.g. the output of "
    "python3 -c 'import secrets; print(secrets.token_hex(32))'."
)


class Session(dict):  # type: ignore[type-arg]
    """``request.session``: a dict that knows whether it was changed.

    ``modified`` is set by every method that changes the dict itself; a change inside a
    value (``session["cart"].append(x)``) is not seen: set ``session.modified = True``.
    ``permanent`` (stored under ``"_permanent"``) makes the cookie outlive the browser
    session, for ``PERMANENT_SESSION_LIFETIME``. ``new`` is True when the request brought
    no valid session.
    """

    __slots__ = ("modified", "new")

    def __init__(self, initial: Any = (), new: bool = False) -> None:
        super().__init__(initial)
        self.modified = False
        self.new = new

    @property
    def permanent(self) -> bool:
        return bool(self.get("_permanent", False))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        if value:
            self["_permanent"] = True
        else:
            self.pop("_permanent", None)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.modified = True

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.modified = True

    def clear(self) -> None:
        if self:
            self.modified = True
        super().clear()

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self.modified = True
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self.modified = True
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self.modified = True

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __repr__(self) -> str:
        return f"<Session {dict.__repr__(self)}{' modified' if self.modified else ''}>"


def _setting(app: Any, key: str) -> Any:
    return app.config.get(key, DEFAULT_CONFIG.get(key))


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)


def add_vary(headers: Any, field: str) -> None:
    """Add ``field`` to the ``Vary`` header of ``headers`` unless it is there already."""
    current = headers.get("vary")
    if not current:
        headers["Vary"] = field
    elif field.lower() not in (part.strip().lower() for part in current.split(",")) and current.strip() != "*":
        headers["Vary"] = f"{current}, {field}"


class SessionInterface:
    """How sessions are opened and saved; set ``app.session_interface`` to your own subclass.

    Implement ``open_session(app, request) -> Session`` (return an empty ``Session(new=True)``
    for a request without a valid one; never raise for bad client input) and
    ``save_session(app, request, session, response)`` (set or delete the cookie on
    ``response``; ``cookie_options`` and ``should_set_cookie`` give the configured
    behaviour). ``is_configured(app)`` says whether sessions can work at all.
    """

    session_class = Session

    def open_session(self, app: Any, request: Any) -> Session:
        raise NotImplementedError

    def save_session(self, app: Any, request: Any, session: Session, response: Any) -> None:
        raise NotImplementedError

    def is_configured(self, app: Any) -> bool:
        """False when sessions cannot work (then ``get_flashed_messages()`` is empty)."""
        return True

    def cookie_name(self, app: Any) -> str:
        return str(_setting(app, "SESSION_COOKIE_NAME"))

    def cookie_options(self, app: Any, request: Any) -> dict[str, Any]:
        """``path``, ``domain``, ``secure``, ``httponly`` and ``samesite`` for ``set_cookie``;
        ``Secure`` follows the request's scheme (proxy-aware) when ``SESSION_COOKIE_SECURE`` is None."""
        secure = _setting(app, "SESSION_COOKIE_SECURE")
        if secure is None:
            secure = request.scheme == "https"
        return {
            "path": _setting(app, "SESSION_COOKIE_PATH") or "/",
            "domain": _setting(app, "SESSION_COOKIE_DOMAIN"),
            "secure": bool(secure),
            "httponly": bool(_setting(app, "SESSION_COOKIE_HTTPONLY")),
            "samesite": _setting(app, "SESSION_COOKIE_SAMESITE"),
        }

    def lifetime(self, app: Any) -> float:
        """``PERMANENT_SESSION_LIFETIME`` in seconds."""
        return _seconds(_setting(app, "PERMANENT_SESSION_LIFETIME"))

    def expires(self, app: Any, session: Session) -> float | None:
        """When the cookie of ``session`` expires (epoch seconds), or None for a browser-session cookie."""
        return time.time() + self.lifetime(app) if session.permanent else None

    def should_set_cookie(self, app: Any, session: Session) -> bool:
        return session.modified or (session.permanent and bool(_setting(app, "SESSION_REFRESH_EACH_REQUEST")))

    def set_cookie(self, app: Any, request: Any, response: Any, value: str, session: Session) -> None:
        """Set the session cookie to ``value`` with the configured options, and warn when
        it is larger than browsers keep (``MAX_COOKIE_SIZE``, 4093 bytes as in Flask)."""
        name = self.cookie_name(app)
        expires = self.expires(app, session)
        max_age = int(self.lifetime(app)) if expires is not None else None
        response.set_cookie(name, value, max_age=max_age, expires=expires, **self.cookie_options(app, request))
        limit = _setting(app, "MAX_COOKIE_SIZE")
        header = response.headers.getlist("set-cookie")[-1]
        if limit and len(header) > limit:
            log.warning(
                "The %r cookie is too large: the value was %d bytes but the header required %d extra bytes. "
                "The final size was %d bytes but the limit is %d bytes. Browsers may silently ignore "
                "cookies larger than this.", name, len(value), len(header) - len(value), len(header), limit)

    def delete_cookie(self, app: Any, request: Any, response: Any) -> None:
        options = self.cookie_options(app, request)
        response.delete_cookie(self.cookie_name(app), **options)  # the same attributes as when it was set


class CookieSessionInterface(SessionInterface):
    """The default: the whole session in a cookie signed with HMAC-SHA256 (see the module's
    theory of operation). Needs ``SECRET_KEY``; using the session without one raises
    ``RuntimeError``."""

    salt = b"microweb.session"

    def __init__(self) -> None:
        self._derived: dict[bytes, bytes] = {}

    def is_configured(self, app: Any) -> bool:
        return bool(_setting(app, "SECRET_KEY"))

    def signing_keys(self, app: Any) -> list[bytes]:
        """The derived keys: the current one first, then the fallbacks'. ``RuntimeError`` without a key."""
        secret = _setting(app, "SECRET_KEY")
        if not secret:
            raise RuntimeError(NO_SECRET_KEY)
        fallbacks = _setting(app, "SECRET_KEY_FALLBACKS") or ()
        if isinstance(fallbacks, (str, bytes)):
            fallbacks = [fallbacks]
        return [self._derive(key) for key in (secret, *fallbacks) if key]

    def _derive(self, secret: str | bytes) -> bytes:
        if isinstance(secret, str):
            raw = secret.encode("utf-8")
        elif isinstance(secret, (bytes, bytearray)):
            raw = bytes(secret)
        else:  # bytes(8675309) would be 8 MB of NUL bytes: a key anyone can forge with
            raise RuntimeError(f"SECRET_KEY (and each of SECRET_KEY_FALLBACKS) must be a str or bytes, not "
                               f"{type(secret).__name__}; from the environment, quote it so it is not read "
                               "as JSON (MICROWEB_SECRET_KEY='\"...\"')")
        key = self._derived.get(raw)
        if key is None:
            if len(self._derived) > 64:  # keys are few; never let a changing one grow this
                self._derived.clear()
            key = self._derived[raw] = hmac.digest(raw, self.salt, "sha256")
        return key

    def sign(self, key: bytes, data: dict[str, Any], dumps: Any, now: float | None = None) -> str:
        payload = _b64encode(dumps(data).encode("utf-8"))
        signed = f"{payload}.{int(time.time() if now is None else now)}"
        return f"{signed}.{_b64encode(hmac.digest(key, signed.encode('ascii'), 'sha256'))}"

    def unsign(self, keys: list[bytes], value: str, max_age: float,
               now: float | None = None) -> tuple[dict[str, Any], int] | None:
        """The session data in ``value`` and the index of the key that verified it, or None."""
        try:
            signed, _, signature = value.rpartition(".")
            payload, _, stamp = signed.partition(".")
            if not payload or not stamp.isdigit() or len(stamp) > 12 or not signature:
                return None
            given = signature.encode("ascii")
            message = signed.encode("ascii")
        except (UnicodeError, ValueError):
            return None
        for index, key in enumerate(keys):
            if hmac.compare_digest(_b64encode(hmac.digest(key, message, "sha256")).encode("ascii"), given):
                break
        else:
            return None
        age = (time.time() if now is None else now) - int(stamp)
        if age > max_age or age < -60:  # expired, or signed in the future (beyond clock skew)
            return None
        try:
            data = json.loads(_b64decode(payload))
        except (ValueError, binascii.Error, UnicodeError):
            return None
        if not isinstance(data, dict):
            return None
        return data, index

    def open_session(self, app: Any, request: Any) -> Session:
        keys = self.signing_keys(app)
        value = request.cookies.get(self.cookie_name(app))
        if not value:
            return self.session_class(new=True)
        found = self.unsign(keys, value, self.lifetime(app))
        if found is None:
            return self.session_class(new=True)
        data, key_index = found
        session = self.session_class(data)
        if key_index:
            session.modified = True  # verified by an old key: re-sign with the current one
        return session

    def save_session(self, app: Any, request: Any, session: Session, response: Any) -> None:
        add_vary(response.headers, "Cookie")
        if not session:
            if session.modified:
                self.delete_cookie(app, request, response)
            return
        if not self.should_set_cookie(app, session):
            return
        value = self.sign(self.signing_keys(app)[0], dict(session), app.json_dumps)
        self.set_cookie(app, request, response, value, session)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TemplateSession:
    """``session`` in a template: the request's session, opened only if the template uses it
    (a page that never shows it pays nothing, and gets no ``Vary: Cookie``)."""

    __slots__ = ("_request",)

    def __init__(self, request: Any) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # protocol probes (``__html__``, copy, pickle) do not open the session
            raise AttributeError(name)
        return getattr(self._request.session, name)

    def __getitem__(self, key: str) -> Any:
        return self._request.session[key]

    def __contains__(self, key: object) -> bool:
        return key in self._request.session

    def __iter__(self) -> Iterator[str]:
        return iter(self._request.session)

    def __len__(self) -> int:
        return len(self._request.session)

    def __bool__(self) -> bool:
        return bool(self._request.session)

    def __repr__(self) -> str:
        return repr(self._request.session)
