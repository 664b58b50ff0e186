"""Reading JSON request bodies and their fields, with errors that name the field.

Hostile-input limits: a body over `MAX_BODY` bytes is refused before it is parsed, and
only a JSON object is accepted at the top level.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.api.errors import ApiError, bad_request
from protocols._shared.web import read_body

MAX_BODY = 256 * 1024


async def read_json(request: web.Request, limit: int = MAX_BODY) -> Fields:
    """The request's JSON object, or a 400 naming what is wrong with it."""
    try:
        raw = await read_body(request, limit)
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "too_large", f"the request body is over {limit} bytes") from None
    if not raw.strip():
        raise bad_request("the request needs a JSON body", code="bad_json")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"the body is not valid JSON: {exc}", code="bad_json") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object", code="bad_json")
    return Fields(data)


class Fields:
    """Typed access to a JSON object's members; `where` prefixes field names in errors."""

    def __init__(self, data: Mapping[str, Any], where: str = "") -> None:
        self.data = data
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise bad_request(f"{self._name(key)} is required", self._name(key))
        return value

    def text(self, key: str, required: bool = False, max_len: int = 4096, default: Any = None) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise bad_request(f"{self._name(key)} must be a string", self._name(key))
        if len(value) > max_len:
            raise bad_request(f"{self._name(key)} is longer than {max_len} characters", self._name(key))
        if required and not value.strip():
            raise bad_request(f"{self._name(key)} must not be empty", self._name(key))
        return value

    def choice(self, key: str, choices: tuple[str, ...], required: bool = False, default: Any = None) -> Any:
        value = self.text(key, required, default=default)
        if value is not None and value not in choices:
            raise bad_request(f"{self._name(key)} must be one of {', '.join(choices)}", self._name(key))
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        """A boolean; the strings "true"/"false" are accepted (Entrust's own scripts send them)."""
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise bad_request(f"{self._name(key)} must be true or false", self._name(key))

    def integer(self, key: str, minimum: int, maximum: int, default: Any = None) -> Any:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f"{self._name(key)} must be an integer", self._name(key))
        if not minimum <= value <= maximum:
            raise bad_request(f"{self._name(key)} must be between {minimum} and {maximum}", self._name(key))
        return value

    def texts(self, key: str, required: bool = False, max_items: int = 100) -> Any:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad_request(f"{self._name(key)} must be a list of strings", self._name(key))
        if len(value) > max_items:
            raise bad_request(f"{self._name(key)} has more than {max_items} items", self._name(key))
        return list(value)

    def obj(self, key: str, required: bool = False) -> Fields | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise bad_request(f"{self._name(key)} must be an object", self._name(key))
        return Fields(value, self._name(key))

    def objs(self, key: str, max_items: int = 100) -> list[Fields]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise bad_request(f"{self._name(key)} must be a list of objects", self._name(key))
        if len(value) > max_items:
            raise bad_request(f"{self._name(key)} has more than {max_items} items", self._name(key))
        return [Fields(v, f"{self._name(key)}[{i}]") for i, v in enumerate(value)]

    def b64(self, key: str, required: bool = False, max_len: int = 128 * 1024) -> bytes | None:
        text = self.text(key, required, max_len=max_len)
        if text is None or not text.strip():
            return None
        return decode_base64(text, self._name(key))

    def when(self, key: str) -> dt.datetime | None:
        text = self.text(key, max_len=64)
        return parse_datetime(text, self._name(key)) if text else None


def decode_base64(text: str, name: str) -> bytes:
    """Standard or URL-safe base64, with or without padding and line breaks."""
    cleaned = "".join(text.split())
    cleaned = cleaned.replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{name} is not valid base64", name) from None


def parse_datetime(text: str, name: str) -> dt.datetime:
    """ISO 8601 date or date-time; a missing zone means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{name} is not an ISO 8601 date-time: {text!r}", name) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
