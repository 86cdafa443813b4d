"""Form bodies: ``application/x-www-form-urlencoded`` (multipart lives in ``multipart.py``)."""
from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from .errors import HTTPError
from .requests import MultiDict

if TYPE_CHECKING:
    from .requests import Request


def parse_form(request: Request) -> tuple[MultiDict, MultiDict]:
    """Parse the request body as a form: (fields, files)."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(400, "Form body is not valid UTF-8") from None
        return MultiDict(parse_qsl(text, keep_blank_values=True)), MultiDict()
    return MultiDict(), MultiDict()
