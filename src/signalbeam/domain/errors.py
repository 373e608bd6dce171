"""Domain errors: named failures that the HTTP layer maps to problem+json in one place."""

from __future__ import annotations


class DomainError(Exception):
    """A failure a person can act on; `detail` says what happened and what to do next."""

    title = "Request failed"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidInput(DomainError):
    """The request is well-formed but a value in it is not acceptable."""

    title = "Invalid input"


class NotFound(DomainError):
    """The named thing does not exist in this tenant."""

    title = "Not found"


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate name, say)."""

    title = "Conflict"


class Unauthenticated(DomainError):
    """No valid credential was presented."""

    title = "Unauthenticated"


class Forbidden(DomainError):
    """The credential is valid but does not allow this."""

    title = "Forbidden"


class Malformed(DomainError):
    """The request body could not be decoded at all (a JSON or YAML syntax error)."""

    title = "Malformed request body"
