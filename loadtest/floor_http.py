"""The floor of an HTTP server: the bare AsyncLLM consumer of loadtest/floor.py behind the least
ASGI app that speaks Chat's streaming shape, on uvicorn configured as ours is.

    python -m loadtest.floor_http --model DIR --port PORT -- <vLLM engine flags>

It answers ``POST`` on any path: the body is parsed (``orjson``) for ``max_tokens``,
``temperature``, ``logit_bias`` and ``stream``; the prompt is the benchmark question rendered
once at start (no per-request rendering, validation, Harmony parsing, routing, middleware,
disconnect watching or metrics). Streamed: one Chat-shaped frame per output that carries
message text (as floor.py ``--frames`` counts them), a last frame with the usage, then
``data: [DONE]``; with ``stream: false`` one JSON body with the usage. ``GET`` answers a model
list, for the benchmark's readiness probe.

What it spends per output token, beside the floor, is what HTTP/1.1, the ASGI server and the
frames cost any Python server on uvicorn before it does any work of its own: the benchmark reads
it as the least a uvicorn server can spend on a workload.

``--server granian`` serves the same app on granian (Rust HTTP, its embedded server in this
process; ``pip install granian``, not a dependency), to see what a compiled front end saves:
loadtest/RESULTS.md has what it measured.
"""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from loadtest.floor import _engine, _prompt, _visible, split_argv
from server.sse import DONE, choice_framer, data_frame

MODEL_LIST = orjson.dumps({"object": "list", "data": [{"id": "gpt-oss-tiny", "object": "model"}]})
JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"),
               (b"cache-control", b"no-cache")]


def make_app(llm, prompt: list[int], stop_token_ids: list[int]):
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    counter = iter(range(1 << 62))

    def params(body: dict):
        bias = body.get("logit_bias")
        return SamplingParams(
            max_tokens=body.get("max_tokens", 256), temperature=body.get("temperature", 1.0),
            logit_bias={int(k): v for k, v in bias.items()} if bias else None,
            stop_token_ids=stop_token_ids, detokenize=False, skip_special_tokens=False,
            output_kind=RequestOutputKind.DELTA)

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop: the engine is up already
            await receive()  # lifespan.startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 200, "headers": JSON_HEADERS})
            await send({"type": "http.response.body", "body": MODEL_LIST})
            return
        body = orjson.loads(b"".join(chunks))
        request_id = f"http-{next(counter)}"
        head = {"id": request_id, "object": "chat.completion.chunk", "created": 0,
                "model": "gpt-oss-tiny"}
        frame = choice_framer(head)  # ours' framing of Chat's chunks
        generations = llm.generate({"prompt_token_ids": prompt}, params(body), request_id)
        streamed = body.get("stream", False)
        if streamed:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        tokens, in_body = 0, False
        async for out in generations:
            ids = out.outputs[0].token_ids
            tokens += len(ids)
            text, in_body = _visible(ids, in_body)
            if text and streamed:
                choice = {"index": 0, "delta": {"content": "x" * len(ids)}, "finish_reason": None}
                await send({"type": "http.response.body", "body": frame(choice),
                            "more_body": True})
        usage = {"prompt_tokens": len(prompt), "completion_tokens": tokens,
                 "total_tokens": len(prompt) + tokens}
        if streamed:
            last = data_frame({**head, "choices": [], "usage": usage})
            await send({"type": "http.response.body", "body": last, "more_body": True})
            await send({"type": "http.response.body", "body": DONE})
            return
        whole = orjson.dumps({**head, "usage": usage})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*JSON_HEADERS, (b"content-length", b"%d" % len(whole))]})
        await send({"type": "http.response.body", "body": whole})

    return app


async def serve(args: argparse.Namespace, engine_flags: list[str]) -> None:
    import uvicorn

    from server.harmony.encoding import load_harmony

    llm = _engine(args.model, engine_flags)
    app = make_app(llm, _prompt(args.prompt, None), list(load_harmony().stop_token_ids))
    try:
        if args.server == "granian":
            from granian.constants import Interfaces
            from granian.server.embed import Server

            await Server(app, port=args.port, interface=Interfaces.ASGI).serve()
        else:
            # the same uvicorn settings as ours (server.__main__), on uvloop and httptools
            config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_config=None,
                                    access_log=False, timeout_keep_alive=30)
            await uvicorn.Server(config).serve()
    finally:
        llm.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser, argv, engine_flags = split_argv(argv, __doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--prompt", default="What is the capital of France?")
    args = parser.parse_args(argv)
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    from loadtest.client import run_on_uvloop

    run_on_uvloop(serve(args, engine_flags))
    return 0


if __name__ == "__main__":
    sys.exit(main())
