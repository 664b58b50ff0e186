"""EST's native failure: an HTTP status, a plain-text explanation and extra headers.

RFC 7030 4.2.3 (as clarified by RFC 8951 section 4): a refused request gets an HTTP 4xx
or 5xx; without a CMC body the response is a human-readable text/plain message. 401
carries WWW-Authenticate (RFC 7030 3.2.3), 202 and 429 carry Retry-After.
"""

from __future__ import annotations

from collections.abc import Mapping


class EstError(Exception):
    """A refusal the EST routes turn into `status` with `message` as text/plain."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        return f"{self.status} {self.message}"
