"""CSRF protection: a secret per session, and masked tokens made from it.

With ``app.config["CSRF_PROTECT"] = True`` every POST, PUT, PATCH and DELETE to a route
that did not opt out (``@app.post(..., csrf=False)``) must carry a token from
``csrf_token()`` in the form field ``csrf_token`` or the header ``X-CSRF-Token`` (the
names are ``CSRF_FIELD_NAME`` and ``CSRF_HEADER_NAME``), else 403.

The session holds one random secret (32 bytes, under ``"_csrf_token"``), made on the first
``csrf_token()``. Each token is ``base64url(mask + (mask XOR secret))`` with a fresh random
mask, so no two pages carry the same bytes (nothing for a compression side channel such as
BREACH to learn), and any of them is valid for as long as the session. Checking unmasks
the token and compares it with the secret with ``hmac.compare_digest``.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from typing import Any

from .errors import HTTPError

__all__ = ["SESSION_KEY", "UNSAFE_METHODS", "new_token", "token_matches", "check_request"]

SESSION_KEY = "_csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SIZE = 32


def _session_secret(session: Any, create: bool) -> bytes | None:
    stored = session.get(SESSION_KEY)
    if isinstance(stored, str):
        try:
            raw = base64.urlsafe_b64decode(stored + "=" * (-len(stored) % 4))
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) == _SIZE:
            return raw
    if not create:
        return None
    raw = secrets.token_bytes(_SIZE)
    session[SESSION_KEY] = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return raw


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def new_token(session: Any) -> str:
    """A fresh masked token for the secret of ``session`` (made and stored there on first use)."""
    secret = _session_secret(session, create=True)
    assert secret is not None
    mask = os.urandom(_SIZE)
    return base64.urlsafe_b64encode(mask + _xor(mask, secret)).rstrip(b"=").decode("ascii")


def token_matches(session: Any, token: str) -> bool:
    """Whether ``token`` was made from the secret of ``session`` (constant-time comparison)."""
    secret = _session_secret(session, create=False)
    if secret is None:
        return False
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
    except (ValueError, binascii.Error, UnicodeError):
        return False
    if len(raw) != 2 * _SIZE:
        return False
    return hmac.compare_digest(_xor(raw[:_SIZE], raw[_SIZE:]), secret)


def check_request(request: Any, field_name: str = "csrf_token", header_name: str = "X-CSRF-Token") -> None:
    """Raise ``HTTPError(403)`` unless ``request`` carries a valid token (header first, then form field)."""
    token = request.headers.get(header_name)
    if not token:
        token = request.form.get(field_name)
    if not token or not isinstance(token, str):
        raise HTTPError(403, f"The CSRF token is missing: send the {field_name!r} form field "
                             f"or the {header_name} header (csrf_token() gives one).")
    session = request.session
    if _session_secret(session, create=False) is None:
        raise HTTPError(403, "The CSRF session token is missing (the session expired or was never started); "
                             "reload the form and try again.")
    if not token_matches(session, token):
        raise HTTPError(403, "The CSRF token is invalid; reload the form and try again.")
