"""The typed error hierarchy and the one OpenAI error envelope.

Every error a client sees is ``{"error": {"message", "type", "param", "code"}}`` with a string
``code``; the HTTP status picks the openai SDK's exception class (400 BadRequestError,
401 AuthenticationError, 404 NotFoundError, 413 APIStatusError, 5xx InternalServerError).
"""

from __future__ import annotations


class APIError(Exception):
    status = 500
    type = "server_error"
    code = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


class InvalidRequestError(APIError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request_error"


class ContextLengthExceededError(InvalidRequestError):
    code = "context_length_exceeded"


class AuthenticationError(APIError):
    """401 with ``WWW-Authenticate: Bearer`` (RFC 6750): the scheme the key goes in."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"

    def __init__(self, message: str, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.headers = {"WWW-Authenticate": "Bearer", **self.headers}


class NotFoundError(APIError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class MethodNotAllowedError(APIError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLargeError(APIError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class ServerError(APIError):
    pass


class ServiceUnavailableError(APIError):
    """Overloaded, draining, loading or a dead engine: retry elsewhere or later. Codes:
    ``server_overloaded``, ``server_draining``, else ``server_unavailable``."""

    status = 503
    code = "server_unavailable"


class RequestTimeoutError(APIError):
    status = 504
    code = "timeout"


# -- Anthropic's envelope (on /v1/messages routes) ---------------------------------------------

_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error"}
ANTHROPIC_PREFIX = "/v1/messages"


def anthropic_body(error: APIError) -> dict:
    """``{"type": "error", "error": {"type", "message"}}`` with Anthropic's error types."""
    kind = _ANTHROPIC_TYPES.get(error.status,
                                "api_error" if error.status >= 500 else "invalid_request_error")
    message = error.message  # no `param` field here: the message names the field instead
    if error.param and not message.startswith(error.param):
        message = f"{error.param}: {message}"
    return {"type": "error", "error": {"type": kind, "message": message}}


def is_anthropic(path: str) -> bool:
    return path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/")


def error_body(error: APIError, path: str) -> dict:
    """The error envelope of the surface that owns ``path``: Anthropic's or OpenAI's."""
    return anthropic_body(error) if is_anthropic(path) else error.body()
