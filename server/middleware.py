"""The edge of every request, as plain ASGI: request id, body limit, auth, metrics, access log.

Auth is decided on the raw path before routing: only the exact paths ``/health``, ``/ready``
(and ``/metrics`` unless protected) are open, so no variant (``//v1/...``, ``%2F``, case,
trailing slash) reaches a protected handler without a key. Keys are compared as SHA-256
digests with ``hmac.compare_digest`` against every configured key, so timing depends neither
on which key matched nor on the length of what was sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time

import orjson

from server import metrics
from server.config import Settings
from server.errors import (
    APIError,
    AuthenticationError,
    InvalidRequestError,
    PayloadTooLargeError,
    ServerError,
)

log = logging.getLogger("server.access")
app_log = logging.getLogger("server.app")

_QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class KeyChecker:
    def __init__(self, keys: list[str]) -> None:
        self._digests = [_digest(k.encode()) for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def check(self, authorization: bytes | None) -> str | None:
        """The matching key (for per-key cache salts), or None."""
        if not authorization or not authorization[:7].lower() == b"bearer ":
            return None
        sent = authorization[7:].strip()
        digest = _digest(sent)
        matched = False
        for known in self._digests:  # no early exit: time does not tell which key matched
            matched |= hmac.compare_digest(digest, known)
        return sent.decode("latin-1") if matched else None


async def send_error(send, error: APIError, request_id: str) -> None:
    body = orjson.dumps(error.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"x-request-id", request_id.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class EdgeMiddleware:
    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.keys = KeyChecker(settings.api_key)
        self.max_body = settings.max_request_bytes
        self.open_paths = {b"/health", b"/ready"} | (
            set() if settings.protect_metrics else {b"/metrics"})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        headers = dict(scope["headers"])
        sent_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = sent_id if _REQUEST_ID.match(sent_id) else secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        responded = False

        async def send_with_id(message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.body":  # the hot path of streams
                return await send(message)
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            error = self._refusal(scope, headers)
            if error is not None:
                await send_error(send, error, request_id)
                status = error.status
                return
            body = await self._read_body(receive)
            error = (PayloadTooLargeError(f"the request body exceeds {self.max_body} bytes")
                     if body is None else lone_surrogate_error(body))
            if error is not None:
                await send_error(send, error, request_id)
                status = error.status
                return
            try:
                await self.app(scope, self._replay(body, receive), send_with_id)
            except Exception:  # a bug: answer in the envelope, keep the connection usable
                app_log.exception("unhandled error", extra={"request_id": request_id})
                if not responded:  # else a stream was under way: it just ends here
                    await send_error(send, ServerError("internal server error"), request_id)
                    status = 500
        finally:
            self._record(scope, status, started, request_id)

    def _refusal(self, scope, headers: dict) -> APIError | None:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw_path.split(b"?", 1)[0]
        if self.keys.enabled and raw_path not in self.open_paths:
            key = self.keys.check(headers.get(b"authorization"))
            if key is None:
                metrics.AUTH_FAILURES.inc()
                return AuthenticationError(
                    "missing or invalid API key: send 'Authorization: Bearer <key>'")
            scope["state"]["api_key"] = key
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return PayloadTooLargeError(f"the request body exceeds {self.max_body} bytes")
        return None

    async def _read_body(self, receive) -> bytes | None:
        """The whole body, or None once it passes the limit (chunked uploads included)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # disconnected: the app will see it
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return None
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive):
        """Hand the buffered body to the app, then pass on later messages (disconnects)."""
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    @staticmethod
    def _record(scope, status: int, started: float, request_id: str) -> None:
        route = scope.get("route")
        route_path = getattr(route, "path", None) or "unmatched"
        elapsed = time.monotonic() - started
        metrics.REQUESTS.labels(route_path, str(status)).inc()
        metrics.REQUEST_LATENCY.labels(route_path).observe(elapsed)
        state = scope["state"]
        # Probes and scrapes arrive every few seconds: keep them out of the info-level log.
        level = logging.DEBUG if route_path in _QUIET_ROUTES and status < 400 else logging.INFO
        log.log(level, "request", extra={
            "request_id": request_id, "method": scope["method"], "route": route_path,
            "status": status, "duration_ms": round(elapsed * 1000, 2),
            **{k: state[k] for k in ("prompt_tokens", "completion_tokens") if k in state}})


def lone_surrogate_error(body: bytes) -> InvalidRequestError | None:
    """JSON can escape a lone UTF-16 surrogate ("\\ud800"), which is no Unicode character: the
    Harmony renderer cannot encode it. Refuse it here, naming the field. The regex keeps the
    parse off the hot path: only bodies with a surrogate escape (emoji from ASCII-only JSON
    encoders, as valid pairs) are parsed again."""
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        path = _lone_surrogate_path(json.loads(body))
    except (ValueError, RecursionError):
        return None  # not JSON, or too deep: the app's own parsing reports it
    if path is None:
        return None
    param = ".".join(path) or None
    return InvalidRequestError(
        f"{param or 'the body'} contains a lone UTF-16 surrogate escape (\\ud800-\\udfff "
        "without its pair): strings must be valid Unicode", param=param)


def _lone_surrogate_path(value, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and _lone_surrogate_path(key) is not None:
            return (*path, key)
        found = _lone_surrogate_path(item, (*path, str(key)))
        if found is not None:
            return found
    return None
