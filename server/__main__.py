"""Start-up: settings -> vocabulary -> engine -> app -> uvicorn, with drain on SIGTERM."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import sys
from typing import NoReturn

import uvicorn

from server.app import create_app
from server.config import Settings, parse_settings
from server.engine.scripted import ScriptError
from server.harmony.encoding import Harmony, VocabularyError, load_harmony
from server.logs import configure_logging

log = logging.getLogger("server")


def build_engine(settings: Settings, harmony: Harmony):
    if settings.engine == "scripted":
        from server.engine.scripted import ScriptedEngine, load_script

        return ScriptedEngine(
            harmony, load_script(settings.script), chunk_size=settings.script_chunk_size,
            stream_interval=settings.stream_interval,
            token_delay=settings.script_token_delay, vocab_size=settings.script_vocab_size,
            max_model_len=settings.script_max_model_len)
    from server.engine.vllm import VLLMEngine

    return VLLMEngine.from_settings(settings)


class Server(uvicorn.Server):
    """uvicorn, with SIGTERM draining in-flight requests first and a fatal exit code."""

    def __init__(self, config: uvicorn.Config, app) -> None:
        super().__init__(config)
        self.app = app
        self.exit_code = 0
        self._draining = False

    def handle_exit(self, sig, frame) -> None:
        if self._draining or sig not in (signal.SIGTERM, signal.SIGINT):
            self.force_exit = self._draining
            self.should_exit = True
            return
        self._draining = True
        asyncio.get_event_loop().call_soon_threadsafe(
            lambda: asyncio.ensure_future(self._drain()))

    async def _drain(self) -> None:
        state = self.app.state
        if not await state.lifecycle.drain():
            log.warning("drain timeout: aborting %d request(s)", len(state.pipeline.active))
            for request_id in list(state.pipeline.active):
                await state.engine.abort(request_id)
            await asyncio.sleep(0.5)  # let the error frames go out
        self.should_exit = True

    def fatal(self, reason: str) -> None:
        self.exit_code = 1
        loop = asyncio.get_event_loop()
        loop.call_later(0.5, setattr, self, "should_exit", True)


def exit_now(code: int) -> NoReturn:
    """Exit like ``sys.exit`` (atexit handlers run, logs flushed), minus the interpreter's
    teardown: with torch and vLLM loaded, clearing the modules and the final full GC pass took
    2-3 s of CPU after the server had finished, on top of the drain timeout and engine shutdown
    (the SIGTERM contract allows 5 s for all of it). Nothing is left to clean up by then: the
    engine processes are gone (VLLMEngine.shutdown) and the OS frees the rest."""
    atexit._run_exitfuncs()  # server.logs: the last lines of the engine processes, then flush
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv)
    configure_logging(settings.log_level, settings.api_key, settings.log_format)
    try:
        harmony = load_harmony()
    except VocabularyError as exc:
        log.error("cannot load the Harmony vocabulary: %s", exc)
        return 2
    try:
        engine = build_engine(settings, harmony)
    except ScriptError as exc:
        log.error("cannot load the script: %s", exc)
        return 2
    holder: list[Server] = []
    app = create_app(settings, engine, harmony=harmony,
                     on_fatal=lambda reason: holder[0].fatal(reason))
    # After SIGTERM, uvicorn stops only once _drain is over: generation has finished or been
    # aborted, so its graceful wait only covers writing the last frames. 1 s for that, the
    # engine's exit (VLLMEngine.shutdown, <= 2 s) and the process exit (exit_now) keep SIGTERM
    # -> exit within drain timeout + 5 s.
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None,
                            access_log=False, timeout_graceful_shutdown=1,
                            timeout_keep_alive=30)
    server = Server(config, app)
    holder.append(server)
    server.run()
    log.info("stopped: exit status %d", server.exit_code,
             extra={"state": "stopped", "exit_status": server.exit_code})
    exit_now(server.exit_code)


if __name__ == "__main__":
    sys.exit(main())
