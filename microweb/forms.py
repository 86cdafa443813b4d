"""Form bodies: ``application/x-www-form-urlencoded`` here, ``multipart/form-data`` in ``multipart.py``."""
from __future__ import annotations

from urllib.parse import parse_qsl

from .datastructures import MultiDict
from .errors import HTTPError
from .http.request import HTTPRequest
from .multipart import form_limits_of, parse_multipart


def parse_form(request: HTTPRequest) -> tuple[MultiDict, MultiDict]:
    """Parse the request body as a form: (fields, files). Other content types give two empty dicts."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        limits = form_limits_of(request)
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(400, "Form body is not valid UTF-8") from None
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=limits.max_fields)
        except ValueError:
            raise HTTPError(413, f"Too many form fields (limit {limits.max_fields})") from None
        return MultiDict(pairs), MultiDict()
    if media == "multipart/form-data":
        return parse_multipart(request.body, content_type, form_limits_of(request))
    return MultiDict(), MultiDict()
