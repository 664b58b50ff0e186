"""One error hierarchy for the CA core.

Each error knows its category, never an HTTP status: every protocol maps the category
(and, where useful, the concrete class) to its own native failure in its `translate.py`.
Errors carry structured fields so a front-end can name the offending identifier or OID.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Category(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    POLICY = "policy"
    INTERNAL = "internal"


class CegError(Exception):
    """Base of every error the core raises on purpose."""

    category: Category = Category.INTERNAL
    code: str = "internal"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def __str__(self) -> str:
        return self.message


class BadRequest(CegError):
    category = Category.BAD_REQUEST
    code = "bad_request"


class BadCsr(BadRequest):
    """The PKCS#10 does not parse or its signature (proof of possession) does not verify."""

    code = "bad_csr"


class UnsupportedKey(BadRequest):
    """A subscriber or CA key outside the six supported types."""

    code = "unsupported_key"


class BadSubjectAltName(BadRequest):
    code = "bad_san"


class Unauthorized(CegError):
    category = Category.UNAUTHORIZED
    code = "unauthorized"


class Forbidden(CegError):
    category = Category.FORBIDDEN
    code = "forbidden"


class NotFound(CegError):
    category = Category.NOT_FOUND
    code = "not_found"


class Conflict(CegError):
    category = Category.CONFLICT
    code = "conflict"


class InvalidState(Conflict):
    """An action that the object's current state does not allow (CA not active, cert revoked)."""

    code = "invalid_state"


class RateLimited(CegError):
    category = Category.RATE_LIMITED
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float, **fields: Any) -> None:
        super().__init__(message, retry_after=retry_after, **fields)
        self.retry_after = retry_after


class PolicyViolation(CegError):
    """The request is well formed but the profile or CA policy refuses it."""

    category = Category.POLICY
    code = "policy"


class ProfileNotEnabled(PolicyViolation):
    code = "profile_not_enabled"


class ExtensionNotAllowed(PolicyViolation):
    code = "extension_not_allowed"


class ConfigurationError(CegError):
    """Raised while loading data the core owns (catalogue, key material)."""

    code = "configuration"


class KeyBackendError(CegError):
    code = "key_backend"
