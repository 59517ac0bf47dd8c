"""Domain errors carry their HTTP status, so services can raise them and every front end (API, UI, apply) reports
them the same way."""


class DomainError(Exception):
    status = 400

    def __init__(self, detail: str, *, field: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def __str__(self):
        return f"{self.field}: {self.detail}" if self.field else self.detail


class Invalid(DomainError):
    status = 422


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class Unavailable(DomainError):
    status = 503
