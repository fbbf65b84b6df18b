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
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


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
