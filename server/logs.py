"""One log stream on stderr: ours, uvicorn's, Python warnings, and vLLM's from every process.

- **Format.** ``--log-format json`` (one JSON object per line: ``time``, ``level``, ``logger``,
  ``message``, then the record's fields such as ``request_id``; what Kubernetes log pipelines
  parse) or ``text`` (the same fields, readable at a terminal); ``auto`` picks text when stderr
  is a terminal and JSON otherwise.
- **vLLM's processes.** vLLM logs from its engine processes (EngineCore, workers) with handlers
  of its own, on stdout. ``engine_logging_config`` writes a logging config that vLLM applies in
  each of them instead (engine/vllm.py passes it as vLLM's ``pylogging_config_file``): their
  records go, as JSON, to stderr, which the server's process reads (``OutputCapture``,
  server/log_capture.py) and writes through its own handler, so filters, redaction and the
  chosen format apply to every line.
- **Everything else.** What any process of ours writes to file descriptors 1 and 2 without
  logging (C++ warnings, a dying child's traceback) is read by ``OutputCapture`` too and
  becomes a record of the logger ``output``: no line on stderr is outside the format.
- **Known noise.** The vLLM CPU build's harmless start-up warnings (``KNOWN_NOISE``, each with
  why) are logged at debug level instead of their own: ``--log-level debug`` shows them.
- **Names.** Secrets are redacted wherever they appear; the directory a built-in model was
  expanded into is written as the model's name (``name_path``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
from typing import Literal

import orjson

from server.log_capture import STANDARD, OutputCapture

_HIDDEN = {"color_message", "vllm_process_name"}  # uvicorn's ANSI copy; vLLM's process name
_SECRET = re.compile(r"(?i)(bearer\s+|api[_-]?key[\"'=:\s]+|hf_)[A-Za-z0-9._~+/=-]{4,}")

# What vLLM's CPU build says at every start that needs no action (README: "Logs"). Each entry:
# (logger, start of the message, why it is harmless). Logged at debug level, not at their own.
KNOWN_NOISE: list[tuple[str, str, str]] = [
    ("vllm.triton_utils.importing", "Triton is installed, but doesn't include CPU backend",
     "torch brings the GPU build of Triton; vLLM's CPU build runs its own CPU kernels instead"),
    ("output", "Triton is installed, but doesn't include CPU backend",
     "the same line from each engine process, printed before vLLM sets up its logging there"),
    ("vllm.triton_utils.importing", "Triton is installed but 0 active driver(s)",
     "the same: no GPU, so Triton has no driver and vLLM turns it off"),
    ("vllm.triton_utils.importing", "Triton not installed or not compatible",
     "the same, third time"),
    ("vllm.platforms.cpu", "Triton is not installed. triton-cpu is expected",
     "contradicts the lines above only in words: it means the triton-cpu fork, an optional "
     "speed-up that vLLM's CPU build works without"),
    ("vllm.config.vllm", "Model Runner V2 requires Triton",
     "without Triton vLLM uses its V1 model runner, the one its CPU build is tested with"),
    ("vllm.config.vllm", "Inductor compilation was disabled by user settings",
     "the CPU build itself switches vLLM's compilation mode to one whole-model torch.compile "
     "(or --enforce-eager turned it off): no user setting is wrong"),
    ("vllm.platforms.cpu", "Reset SSM cache type to float32",
     "a setting for state-space (Mamba) layers; gpt-oss has none"),
    ("vllm.v1.worker.cpu_worker", "libtcmalloc is not found in LD_PRELOAD",
     "a performance hint for large CPU deployments; the CPU engine here serves tests and demos"),
    ("vllm.v1.worker.cpu_worker", "libiomp is not found in LD_PRELOAD", "the same"),
    ("py.warnings", "`torch.distributed.reduce_op` is deprecated",
     "vLLM's Triton shim looks at every torch.distributed attribute, this deprecated one too"),
    ("output", "Warning: NUMA binding: Using MEMBIND policy",
     "vLLM's CPU worker binds its memory to its NUMA node, as intended (a C++ notice)"),
    ("vllm.v1.engine.input_processor", "Passing raw prompts to InputProcessor is deprecated",
     "vLLM's notice to in-process users: the server hands it token ids rendered by Harmony, "
     "which is what its own renderer would produce"),
    ("vllm.renderers.base", "Using None for EOS token id because tokenizer is not initialized",
     "by design (no vLLM tokenizer): Harmony's stop tokens are passed as stop_token_ids"),
    ("vllm.compilation.decorators", "Compiling model again due to a load failure",
     "on later starts: vLLM 0.32's CPU build cannot load the torch.compile cache it saved (the "
     "loaded function lacks finalize_loading), so it compiles again, as on the first start"),
    ("vllm.v1.utils", "[shutdown] Process manager: force killing remaining process",
     "the server gives the engine 2 s to exit (engine/vllm.py: the SIGTERM contract); on CPU "
     "its worker takes longer, and no request is left by then"),
    ("vllm.utils.system_utils", "[shutdown] force killing sub process", "the same"),
]

_rewrites: list[tuple[str, str]] = []  # (text, replacement) in every message
_handler: logging.Handler | None = None  # the server process's handler (None in vLLM's)


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(1) + "[REDACTED]", text)


def name_path(path: str, name: str) -> None:
    """Write ``path`` as ``name`` in every message (a built-in model's cache directory)."""
    if path and path != name and (path, name) not in _rewrites:
        _rewrites.append((path, name))


def _timestamp(created: float) -> str:
    seconds, millis = divmod(round(created * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class JSONFormatter(logging.Formatter):
    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self._secrets = [s for s in secrets or [] if s]

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[REDACTED]")
        for path, name in _rewrites:
            text = text.replace(path, name)
        return redact(text)

    def fields(self, record: logging.LogRecord) -> dict:
        entry = {"time": _timestamp(record.created), "level": record.levelname.lower(),
                 "logger": record.name, "message": self._clean(record.getMessage()).rstrip()}
        process = getattr(record, "vllm_process_name", None)
        process = process if process and process != "MainProcess" else record.processName
        if process and process != "MainProcess":
            entry["process"] = process
        entry.update({k: v for k, v in vars(record).items()
                      if k not in STANDARD and k not in _HIDDEN})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = self._clean(record.exc_text)
        return entry

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(self.fields(record), default=str).decode()


class TextFormatter(JSONFormatter):
    """The same fields, readable: ``time LEVEL logger: message key=value ...``. A message of
    several lines (a traceback) repeats the prefix on each, so every line says what it is."""

    def format(self, record: logging.LogRecord) -> str:
        entry = self.fields(record)
        prefix = f"{entry.pop('time')} {entry.pop('level').upper():<7} {entry.pop('logger')}: "
        text = entry.pop("message")
        exception = entry.pop("exception", None)
        rest = " ".join(f"{k}={v}" for k, v in entry.items())
        first, *more = text.split("\n") if text else [""]
        lines = [f"{first} {rest}" if rest else first, *more]
        if exception:
            lines += exception.split("\n")
        return "\n".join(prefix + line for line in lines)


class KnownNoise(logging.Filter):
    """Demote the KNOWN_NOISE records to debug; drop them below the handler's level."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and self._known(record):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.level

    @staticmethod
    def _known(record: logging.LogRecord) -> bool:
        message = None
        for logger, start, _ in KNOWN_NOISE:
            if record.name == logger:
                message = message if message is not None else record.getMessage()
                if start in message:
                    return True
        return False


def resolve_format(log_format: str, stream=None) -> Literal["json", "text"]:
    if log_format in ("json", "text"):
        return log_format  # type: ignore[return-value]
    stream = stream or sys.stderr
    return "text" if hasattr(stream, "isatty") and stream.isatty() else "json"


def configure_logging(level: str, secrets: list[str], log_format: str = "auto",
                      capture_output: bool = True) -> str:
    """Log every record of this process through one handler on stderr; with ``capture_output``
    also everything written to file descriptors 1 and 2 (see OutputCapture). Returns the
    format used."""
    global _handler
    chosen = resolve_format(log_format)
    stream = _own_stderr() if capture_output else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter(secrets) if chosen == "text" else JSONFormatter(secrets))
    handler.addFilter(KnownNoise(logging.getLevelName(level.upper())))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "vllm"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log is server.access
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value,
                                                      args.exc_traceback)
    _handler = handler
    if capture_output:
        # multiprocessing's resource tracker (vLLM's engine processes use it) outlives this
        # process; started now, before the capture, its warnings at exit (leaked shared memory
        # or semaphores: a bug) reach the real stderr instead of a pipe nobody reads any more.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
        capture = OutputCapture(handler)
        capture.start()
        atexit.register(capture.stop)
    return chosen


def _own_stderr():
    """A stream on a copy of file descriptor 2, taken before OutputCapture redirects 2."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.stderr
    stream = open(os.dup(fd), "w", encoding="utf-8", errors="backslashreplace",  # noqa: SIM115
                  buffering=1)
    sys.stderr = stream  # Python-level writes (tracebacks at exit) keep reaching the terminal
    return stream


def _log_uncaught(exc_type, exc_value, exc_traceback) -> None:
    if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
        return
    logging.getLogger("server").critical(
        "uncaught exception", exc_info=(exc_type, exc_value, exc_traceback))


# -- vLLM's processes -----------------------------------------------------------------------
def engine_logging_config(level: str) -> str:
    """Write the logging config vLLM applies in each of its processes; return its path."""
    config = {
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"server": {"()": "server.logs.engine_handler"}},
        "root": {"handlers": ["server"], "level": level.upper()},
        "loggers": {"vllm": {"handlers": [], "propagate": True}},
    }
    fd, path = tempfile.mkstemp(prefix="gpt-oss-server-vllm-logging-", suffix=".json")
    with os.fdopen(fd, "w") as file:
        json.dump(config, file)
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def engine_handler() -> logging.Handler:
    """The handler vLLM's logging config names. In the server's process: its own handler. In
    vLLM's engine processes: JSON on stderr, which the server's OutputCapture reads back."""
    if _handler is not None:
        return _handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    logging.captureWarnings(True)
    return handler
