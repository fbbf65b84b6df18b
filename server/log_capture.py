"""Everything written to file descriptors 1 and 2, as records of the one log stream.

``OutputCapture`` makes fds 1 and 2 of this process, and so of every process it starts (vLLM's
engine processes inherit them), a pipe. A thread reads it: a line that is a JSON record (what
vLLM's processes write through server.logs.engine_handler) is rebuilt as a record; any other
line (a C++ warning, a child's traceback, a print) becomes a record of the logger ``output``.
Each goes to the server's handler, so filters, redaction and the chosen format apply to all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from datetime import datetime

STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                       "taskName"}
_WIRE_KEYS = {"time", "level", "logger", "message"}
_SENTINEL = b"\x00gpt-oss-server: end of output\x00"


def record_from_line(entry: dict) -> logging.LogRecord:
    """A record written as JSON by an engine process, rebuilt for this process's handler."""
    entry = dict(entry)
    levelno = logging.getLevelName(str(entry.pop("level")).upper())
    levelno = levelno if isinstance(levelno, int) else logging.INFO
    when = str(entry.pop("time"))
    try:
        created = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
    except ValueError:
        created = time.time()
    record = logging.makeLogRecord({
        "name": str(entry.pop("logger")), "msg": str(entry.pop("message")), "args": (),
        "levelno": levelno, "levelname": logging.getLevelName(levelno), "created": created,
        "msecs": created % 1 * 1000, "processName": str(entry.pop("process", "engine")),
        "exc_text": entry.pop("exception", None)})
    for key, value in entry.items():
        if key not in STANDARD:
            setattr(record, key, value)
    return record


def record_from_output(lines: list[str]) -> logging.LogRecord:
    """Lines written without logging (a C++ warning, a traceback), as one record."""
    text = "\n".join(lines)
    first = text.lstrip()
    level = (logging.ERROR if first.startswith(("[E", "Traceback", "Fatal", "ERROR"))
             else logging.INFO if first.startswith("[I") else logging.WARNING)
    return logging.makeLogRecord({"name": "output", "msg": text, "args": (), "levelno": level,
                                  "levelname": logging.getLevelName(level)})


class OutputCapture:
    """File descriptors 1 and 2 of this process, and so of every process it starts (vLLM's
    engine processes inherit them), become a pipe; a thread turns each line into a record
    (JSON from an engine process's handler, anything else as ``output``) for ``handler``."""

    def __init__(self, handler: logging.Handler) -> None:
        self.handler = handler
        self._write_fd: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for stream in (sys.stdout, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        self._write_fd = write_fd  # kept: stop() writes the sentinel through it
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), daemon=True,
                                        name="output-capture")
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Handle everything written so far, then stop (called at exit)."""
        if self._write_fd is None or self._thread is None:
            return
        for stream in (sys.stdout, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(OSError):
            os.write(self._write_fd, b"\n" + _SENTINEL + b"\n")
        self._thread.join(timeout)
        self._write_fd = None

    def _pump(self, fd: int) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if _SENTINEL in lines:
                self._handle(lines[:lines.index(_SENTINEL)])
                return
            self._handle(lines)
        if pending:
            self._handle([pending])

    def _handle(self, lines: list[bytes]) -> None:
        """Records from JSON lines; other lines one record each, but an indented line (a
        traceback's frames) continues the record before it, and a traceback takes its last
        line (the exception) too."""
        raw: list[list[str]] = []
        for line in lines:
            text = line.decode("utf-8", errors="replace").rsplit("\r", 1)[-1].rstrip()
            entry = _wire_entry(text)
            if entry is None:
                if not text.strip():
                    continue
                if raw and (text[:1].isspace() or _open_traceback(raw[-1])):
                    raw[-1].append(text)
                else:
                    raw.append([text])
                continue
            for group in raw:
                self._emit(record_from_output(group))
            raw = []
            self._emit(record_from_line(entry))
        for group in raw:
            self._emit(record_from_output(group))

    def _emit(self, record: logging.LogRecord) -> None:
        try:
            if record.levelno >= self.handler.level:
                self.handler.handle(record)
        except Exception:  # noqa: BLE001 - the pump must never stop: writers would block
            with contextlib.suppress(Exception):
                sys.stderr.write(record.getMessage() + "\n")


def _open_traceback(group: list[str]) -> bool:
    return group[0].startswith("Traceback") and group[-1][:1].isspace()


def _wire_entry(text: str) -> dict | None:
    if not text.startswith("{"):
        return None
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and _WIRE_KEYS <= entry.keys() else None
