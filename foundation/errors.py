"""Errors the domain raises; the web layer turns them into JSON or pages in the user's language.

Messages are gettext msgids marked with N_ and %(name)s parameters, translated when shown.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from foundation.i18n import N_


@dataclass
class FieldError:
    field: str
    code: str
    message: str  # msgid, translated when rendered
    params: dict[str, object] = dataclasses.field(default_factory=dict)  # bare `field` is the attribute above


class WarncastError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


class ValidationFailed(WarncastError):
    status = 422
    code = "validation_failed"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(N_("The request has invalid fields."))
        self.errors = errors


class NotFound(WarncastError):
    status = 404
    code = "not_found"


class Forbidden(WarncastError):
    status = 403
    code = "forbidden"


class Unauthorized(WarncastError):
    status = 401
    code = "unauthorized"


class Conflict(WarncastError):
    status = 409
    code = "conflict"


class TooManyRequests(WarncastError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int | None = None, **params: object) -> None:
        super().__init__(message, **params)
        self.retry_after = retry_after  # seconds, sent as the Retry-After header


class Unavailable(WarncastError):
    """Something the request needs (Redis) cannot be reached right now: 503 with Retry-After."""

    status = 503
    code = "unavailable"
    retry_after: int = 5  # seconds, sent as the Retry-After header

    def __init__(
        self,
        message: str = N_("The service is briefly unavailable. Please try again in a moment."),
        *,
        retry_after: int | None = None,
        **params: object,
    ) -> None:
        super().__init__(message, **params)
        if retry_after is not None:
            self.retry_after = retry_after
