"""The old part of the site, still a Flask app: mounted under ``/legacy`` as it is. It sees
``SCRIPT_NAME=/legacy``, so its ``url_for`` and redirects carry the prefix without a change."""
from __future__ import annotations

from flask import Flask, redirect, request, url_for

legacy = Flask(__name__)


@legacy.route("/")
def home() -> str:
    return f'<h1>Legacy</h1><p><a href="{url_for("guestbook")}">Sign the guestbook</a></p>'


@legacy.route("/guestbook", methods=["GET", "POST"])
def guestbook() -> object:
    if request.method == "POST":
        return redirect(url_for("thanks", name=request.form.get("name", "")))
    return f'<form method="post" action="{url_for("guestbook")}"><input name="name"><button>Sign</button></form>'


@legacy.route("/thanks")
def thanks() -> str:
    return f"Thanks, {request.args.get('name', 'stranger')}!"
