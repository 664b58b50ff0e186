"""The certificate-events feed's opaque `nextPageIndex`.

It carries the audit sequence number to resume after, the `startDate` and the page size
of the first call, so a client that sends only the index (Keyfactor) and one that sends both (the
Entrust shell utility) read the same pages. Sequence order is commit order
(ca_core/status/events.py), so paging never skips or repeats an event.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json

from gateway.api.errors import bad_request

MAX_PAGE = 50  # PKIaaS's cap, which clients are written for
DEFAULT_PAGE = 50


def encode_index(after_seq: int, start: dt.datetime | None, size: int) -> str:
    data: dict[str, object] = {"v": 1, "after": after_seq, "size": size}
    if start is not None:
        data["start"] = start.isoformat()
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_index(text: str) -> tuple[int, dt.datetime | None, int]:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
        data = json.loads(raw)
        after = data["after"]
        if data.get("v") != 1 or isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValueError
        start = dt.datetime.fromisoformat(data["start"]) if data.get("start") else None
        size = data.get("size", DEFAULT_PAGE)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE:
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise bad_request("nextPageIndex is not an index this gateway handed out", "nextPageIndex") from None
    return after, start, size


def page_size(text: str | None, default: int = DEFAULT_PAGE) -> int:
    if text is None or not text.strip():
        return default
    try:
        size = int(text)
    except ValueError:
        raise bad_request("preferredPageSize must be a whole number", "preferredPageSize") from None
    if size < 1:
        raise bad_request("preferredPageSize must be at least 1", "preferredPageSize")
    return min(size, MAX_PAGE)
