"""The one mapping from ca_core error categories to HTTP statuses, for both APIs.

Each API renders its own body (the CA Gateway `ErrorResponse`, ceg's `{"error": ...}`),
but the status a category gets is decided here only, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ca_core.errors import Category, CegError

STATUS_BY_CATEGORY: dict[Category, int] = {
    Category.BAD_REQUEST: 400,
    Category.UNAUTHORIZED: 401,
    Category.FORBIDDEN: 403,
    Category.NOT_FOUND: 404,
    Category.CONFLICT: 409,
    Category.POLICY: 422,  # well formed, refused by the profile or CA policy
    Category.RATE_LIMITED: 429,
    Category.INTERNAL: 500,
}


@dataclass(frozen=True)
class Failure:
    """What both APIs need to answer an error: status, stable code, message, and where."""

    status: int
    code: str
    message: str
    target: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    details: tuple[dict[str, Any], ...] = ()


class ApiError(Exception):
    """An error the API layer itself finds (bad JSON, a missing field, no such route)."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.failure = Failure(status, code, message, target)


def failure_of(exc: CegError) -> Failure:
    status = STATUS_BY_CATEGORY.get(exc.category, 500)
    headers: dict[str, str] = {}
    retry_after = exc.fields.get("retry_after")
    if isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, round(retry_after)))
    if status == 500:
        # Internal details stay in the log; the client gets the code only.
        return Failure(500, exc.code, "internal error", headers=headers)
    target = next((str(exc.fields[k]) for k in ("serial", "profile", "ca", "san") if k in exc.fields), None)
    return Failure(status, exc.code, exc.message, target, headers)


def bad_request(message: str, target: str | None = None, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message, target)
