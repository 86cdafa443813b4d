"""Deprecated: the old home of the protocol, now ``microweb.http`` (kept for one release).

``RequestParser`` here builds the framework's ``Request`` by default, as it did.
"""
from __future__ import annotations

from typing import Any

from .http.encode import (CONTINUE_RESPONSE, LAST_CHUNK, encode_chunk, encode_head, encode_simple_head,
                          reason_phrase, refresh_date)
from .http.parser import HeaderBlock, Limits, ProtocolError
from .http.parser import RequestParser as _RequestParser
from .http.values import http_date
from .requests import Request

__all__ = ["ProtocolError", "RequestParser", "HeaderBlock", "Limits", "encode_head", "encode_simple_head",
           "encode_chunk", "LAST_CHUNK", "CONTINUE_RESPONSE", "refresh_date", "reason_phrase", "http_date"]


class RequestParser(_RequestParser):
    """``microweb.http.RequestParser`` building ``microweb.Request``s unless told otherwise."""

    __slots__ = ()

    def __init__(self, limits: Limits | None = None, remote_addr: str = "", scheme: str = "http",
                 request_class: Any = Request) -> None:
        super().__init__(limits or Limits(), remote_addr, scheme, request_class)
