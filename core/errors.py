"""Domain errors, raised anywhere below the web layer and mapped to HTTP once.

Each error carries a stable machine `code` (the `error.code` of the public
error body) and a message written for the person who reads it.
"""

from __future__ import annotations


class AbrError(Exception):
    """Base class: `code` is the public error code, `status` its HTTP status."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(AbrError):
    code = "bad_request"
    status = 400


class Unauthorized(AbrError):
    code = "unauthorized"
    status = 401


class Forbidden(AbrError):
    code = "forbidden"
    status = 403


class NotFound(AbrError):
    code = "not_found"
    status = 404


class MissingObject(NotFound):
    """A storage object that is not there. Its key names asset ids and the storage
    layout, so it stays in `key` (for logs) and out of the public message."""

    def __init__(self, key: str) -> None:
        super().__init__("no such file")
        self.key = key


class Conflict(AbrError):
    code = "conflict"
    status = 409


class TooLarge(AbrError):
    code = "too_large"
    status = 413


class InvalidMedia(AbrError):
    """The input is not media we can use (not a container, no streams...)."""

    code = "invalid_media"
    status = 415


class Unprocessable(AbrError):
    """Syntactically fine, but the values cannot be honoured."""

    code = "unprocessable"
    status = 422


class StorageError(AbrError):
    code = "storage_error"
    status = 503


class FFmpegError(AbrError):
    """ffmpeg failed; `message` is the reason in words, `stderr_tail` the raw end of its log."""

    code = "encode_failed"
    status = 500

    def __init__(self, message: str, *, stderr_tail: str = "", returncode: int | None = None) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail
        self.returncode = returncode


class Cancelled(AbrError):
    """A running job was cancelled (its asset was deleted)."""

    code = "cancelled"
    status = 409


class RateLimited(AbrError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
