"""The real engine: vLLM's in-process ``AsyncLLM`` (vllm.v1), the same code on GPUs and on CPU.

Decisions (see also the README):

- **Engine flags.** ``--engine vllm`` hands every flag our parser does not know to vLLM's own
  parser (``AsyncEngineArgs.add_cli_args``), so every vLLM engine flag works unchanged
  (``--tensor-parallel-size``, ``--gpu-memory-utilization``, ``--max-num-seqs``,
  ``--kv-cache-dtype``, ``--load-format``, ``--enforce-eager`` ...). The command line vLLM sees is
  ``--model <resolved> <built-in defaults> [--max-model-len N] <user flags>``: later flags win, so
  user flags override the defaults of built-in models (server.models.builtin). A flag that is
  neither ours nor a vLLM engine flag stops start-up with exit status 2 and a clear message.
- **No vLLM tokenizer** (``skip_tokenizer_init=True`` unless the user passes
  ``--no-skip-tokenizer-init``). Prompts are rendered by Harmony to token ids
  (``TokensPrompt``) and output is read as token ids (``detokenize=False``); the Harmony decoder
  turns them into text. So models that ship no tokenizer (the tiny ones) work, real checkpoints
  work the same, and no text is detokenized twice.
- **Context.** ``max_model_len`` and ``vocab_size`` (the model's ``hf_config.vocab_size``) come
  from vLLM's model config once the engine has started. The pipeline rejects prompts that do not
  fit (400 ``context_length_exceeded``) or hold an id outside the vocabulary (such an id would
  kill vLLM's engine), and caps ``max_tokens`` to the context left (finish_reason ``length``).
- **Stream interval.** The server's ``--stream-interval N`` is also vLLM's (its output processor
  then emits a request's first token at once and then one delta per N tokens, logprobs
  included), so at N > 1 the per-token work on this side of the engine's queue (a
  ``RequestOutput``, a queue hand-over, a step of the generator below) is done once per N tokens.
  The pipeline still groups deltas by N for engines that hand over fewer tokens at a time.
- **Start.** ``AsyncLLM`` is built in a worker thread, so the event loop keeps answering
  ``/health`` and ``/ready`` (503) while the model loads.
- **Cancellation.** Closing or cancelling ``generate()`` aborts the request in vLLM (vLLM's own
  generator aborts on cancellation; we abort again by id if the request had not finished).
- **Death.** vLLM's ``EngineDeadError`` (and any failure while the engine is ``errored``) becomes
  ``server.engine.protocol.EngineDeadError``; ``is_dead`` is vLLM's ``errored`` flag.
- **Logs.** vLLM's records, from this process and from its engine processes, go through the
  server's handler (server/logs.py: a logging config vLLM applies in each of its processes,
  unless the user gives vLLM one, by ``--logging-config`` or ``VLLM_LOGGING_CONFIG_PATH``, or
  sets ``VLLM_CONFIGURE_LOGGING=0``). vLLM is told the served name (``--served-model-name``),
  so its logs and the ``model_name`` label of its metrics say ``gpt-oss-tiny``, not the
  directory a built-in model was expanded into (server.logs writes that directory as the name
  where vLLM still prints it). No progress bars (``--no-use-tqdm-on-load`` by default: they
  are not log lines).
- **Shutdown.** vLLM kills engine processes that outlive the exit grace; shared-memory
  segments they created then stay behind, and multiprocessing's resource tracker warns about
  them when the server exits. ``shutdown`` notes the segments the engine processes map, and
  after they are gone unlinks what is left and tells the tracker.
- **Stats.** running/waiting come from the scheduler stats of the last engine step (a stat logger
  we register), bounded by the requests vLLM still tracks; vLLM's own ``vllm:*`` Prometheus series
  land in the default registry, so they show on our ``/metrics``.
- **vLLM's environment variables are read once.** ``vllm.envs`` evaluates a variable (an
  ``os.getenv`` and a conversion) on every read, and vLLM's output processing reads some for
  every output of every step; its engine processes cache them once started
  (``enable_envs_cache``), its API server does not. We cache them in this process too once the
  engine has started (~6% of py-spy's samples of this process on a long generation; measured
  73 -> 63 us of CPU per token on the benchmark's random workload). So, as in the
  engine processes, a ``VLLM_*`` variable changed after start-up has no effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from server import logs
from server.config import Settings
from server.engine.processes import release_shared_memory, running, shared_memory
from server.engine.protocol import EngineDeadError, EngineStats, GenerationRequest, TokenDelta
from server.models.builtin import resolve_model

log = logging.getLogger("server.engine.vllm")

EXTRA_ARG = "gptoss_constraint"  # = server.harmony.constrain.EXTRA_ARG
CONSTRAINTS_PROCESSOR = "server.engine.constrained:HarmonyConstraints"

# How long the engine processes get to exit on their own at shutdown before vLLM kills their
# process tree (EngineCore and its workers). By then our requests are finished or aborted, so
# nothing is lost; without it vLLM waits 5 s, which the EngineCore on CPU always used up (its
# worker takes 3-5 s to tear down), and the SIGTERM contract (exit within drain timeout + 5 s)
# has no room for that. vLLM's own server passes --shutdown-timeout here (0 by default: kill at
# once); a short grace instead still lets an engine that can exit quickly do so cleanly.
ENGINE_EXIT_GRACE_SECONDS = 2.0

_FINISH_REASONS = {"stop": "stop", "length": "length", "abort": "abort"}


def _logging_config(level: str):
    """A vLLM logging config that routes every vLLM process's records through the server's
    handler (server.logs), unless the environment configures vLLM's logging itself."""
    from vllm.config.logging import LoggingConfig

    if os.environ.get("VLLM_LOGGING_CONFIG_PATH") or not LoggingConfig().configure_logging:
        return None
    return LoggingConfig(pylogging_config_file=logs.engine_logging_config(level))


def _logprobs(tokens: list[int], positions, top: int):
    """Each new token's logprob and the top ``top`` (by vLLM's rank), or None."""
    if not positions:
        return None
    out = []
    for token, position in zip(tokens, list(positions)[-len(tokens):], strict=True):
        ranked = sorted(position.items(), key=lambda item: item[1].rank or 0)
        out.append((position[token].logprob,
                    tuple((i, p.logprob) for i, p in ranked if (p.rank or 0) <= top)[:top]))
    return out


def cache_vllm_environment() -> None:
    """Read vLLM's environment variables once from now on (see the module's docstring)."""
    from vllm import envs

    envs.enable_envs_cache()


class EngineArgsError(ValueError):
    """A flag that neither the server nor vLLM's engine knows."""


def build_engine_args(settings: Settings):
    """vLLM's ``AsyncEngineArgs`` from the settings, parsed by vLLM's own argument parser."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    started = time.monotonic()
    model, defaults = resolve_model(settings.model)
    if time.monotonic() - started > 0.5:  # a built-in model unpacked into the cache
        log.info("unpacked the built-in model %s in %.1f s (first start; kept for the next)",
                 settings.model, time.monotonic() - started)
    logs.name_path(model, settings.model)
    argv = ["--model", model, "--served-model-name", *settings.served_model_name, *defaults]
    if settings.max_model_len is not None:
        argv += ["--max-model-len", str(settings.max_model_len)]
    # vLLM's output processor batches each request's tokens by the same interval, so that the
    # queue, our adapter and the pipeline handle one delta per N tokens, not one per token
    argv += ["--stream-interval", str(settings.stream_interval), *settings.engine_args]
    parser = FlexibleArgumentParser(prog="gpt-oss-server (vLLM engine flags)")
    parser = AsyncEngineArgs.add_cli_args(parser)
    if "--skip-tokenizer-init" not in parser._option_string_actions:  # pragma: no cover
        raise RuntimeError("this vLLM has no --skip-tokenizer-init")
    parser.set_defaults(skip_tokenizer_init=True, use_tqdm_on_load=False)
    namespace, unknown = parser.parse_known_args(argv)
    # constrained decoding: our Harmony-aware processor (server/engine/constrained.py), beside
    # any the user names; vLLM refuses custom processors with speculative decoding
    if not namespace.speculative_config:
        namespace.logits_processors = [*(namespace.logits_processors or ()),
                                       CONSTRAINTS_PROCESSOR]
    if unknown:
        raise EngineArgsError(
            f"unrecognized arguments: {' '.join(unknown)} (neither a server flag, see "
            "`python -m server --help`, nor a vLLM engine flag)")
    engine_args = AsyncEngineArgs.from_cli_args(namespace)
    if engine_args.logging_config is None and engine_args.log_config_file is None:
        engine_args.logging_config = _logging_config(settings.log_level)
    return engine_args


class _SchedulerStatsLogger:
    """A vLLM stat logger that only keeps the latest running/waiting counts."""

    running = 0
    waiting = 0

    def __init__(self, vllm_config: Any = None, engine_index: int = 0) -> None:
        pass

    def record(self, scheduler_stats, iteration_stats, mm_cache_stats=None,
               engine_idx: int = 0) -> None:
        if scheduler_stats is not None:
            type(self).running = scheduler_stats.num_running_reqs
            type(self).waiting = scheduler_stats.num_waiting_reqs

    def log_engine_initialized(self) -> None:
        pass

    def log(self) -> None:
        pass

    def record_sleep_state(self, is_awake: int, level: int) -> None:
        pass


class VLLMEngine:
    def __init__(self, engine_args: Any) -> None:
        self._engine_args = engine_args
        # why constrained decoding cannot be served (None: it can)
        self.constraints_unavailable = ("vLLM runs custom logits processors only without "
                                        "speculative decoding"
                                        if engine_args.speculative_config else None)
        self._llm: Any = None
        self._max_model_len = 0
        self._vocab_size = 0
        self._stats = type("_Stats", (_SchedulerStatsLogger,), {})  # per-engine counters

    @classmethod
    def from_settings(cls, settings: Settings) -> VLLMEngine:
        log.info("preparing the vLLM engine for %s (importing vLLM and torch takes a few "
                 "seconds)", settings.model)
        try:
            engine_args = build_engine_args(settings)
        except EngineArgsError as exc:
            print(f"gpt-oss-server: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        return cls(engine_args)

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def is_dead(self) -> bool:
        return self._llm is not None and bool(self._llm.errored)

    async def start(self) -> None:
        from vllm.v1.engine.async_llm import AsyncLLM

        def build() -> Any:
            from vllm.usage.usage_lib import UsageContext

            vllm_config = self._engine_args.create_engine_config(UsageContext.OPENAI_API_SERVER)
            from vllm.v1.executor import Executor

            return AsyncLLM(
                vllm_config=vllm_config,
                executor_class=Executor.get_class(vllm_config),
                log_requests=self._engine_args.enable_log_requests,
                log_stats=not self._engine_args.disable_log_stats,
                usage_context=UsageContext.OPENAI_API_SERVER,
                stat_loggers=[self._stats],
            )

        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
        self._llm = await asyncio.to_thread(build)
        cache_vllm_environment()
        model_config = self._llm.model_config
        self._max_model_len = int(model_config.max_model_len)
        self._vocab_size = int(model_config.get_vocab_size())

    def _engine_processes(self) -> list:
        """The engine's process trees (EngineCore and its workers), as psutil processes."""
        import psutil

        manager = getattr(getattr(self._llm.engine_core, "resources", None), "engine_manager", None)
        found = []
        for proc in getattr(manager, "processes", None) or []:
            try:
                root = psutil.Process(proc.pid)
                found += [root, *root.children(recursive=True)]
            except (psutil.Error, TypeError):  # already gone, or never started (pid None)
                continue
        return found

    async def shutdown(self) -> None:
        if self._llm is None:
            return
        import psutil

        engine_processes = self._engine_processes()
        segments = shared_memory(engine_processes)
        self._llm.shutdown(timeout=ENGINE_EXIT_GRACE_SECONDS)
        # vLLM SIGKILLs what outlived the grace but does not wait for it: wait (briefly), so that
        # no engine process outlives the server's own.
        deadline = asyncio.get_running_loop().time() + 1.0
        while engine_processes:
            engine_processes = [p for p in engine_processes if running(p)]
            if asyncio.get_running_loop().time() > deadline:
                for process in engine_processes:
                    with contextlib.suppress(psutil.Error):
                        process.kill()
                break
            await asyncio.sleep(0.02)
        release_shared_memory(segments)

    def stats(self) -> EngineStats:
        if self._llm is None:
            return EngineStats(0, 0)
        tracked = self._llm.output_processor.get_num_unfinished_requests()
        if tracked == 0:
            return EngineStats(0, 0)
        running = min(self._stats.running, tracked)
        waiting = min(self._stats.waiting, tracked - running)
        return EngineStats(running, waiting)

    async def abort(self, request_id: str) -> None:
        if self._llm is not None and not self._llm.errored:
            await self._llm.abort(request_id)

    def _sampling_params(self, request: GenerationRequest):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        o = request.options
        return SamplingParams(
            n=1,
            max_tokens=o.max_tokens,
            temperature=o.temperature,
            top_p=o.top_p,
            top_k=o.top_k,
            min_p=o.min_p,
            presence_penalty=o.presence_penalty,
            frequency_penalty=o.frequency_penalty,
            seed=o.seed,
            logit_bias=dict(o.logit_bias) or None,
            stop_token_ids=list(o.stop_token_ids),
            detokenize=False,
            skip_special_tokens=False,
            output_kind=RequestOutputKind.DELTA,
            extra_args={EXTRA_ARG: o.constraint} if o.constraint else None,
            logprobs=o.logprobs,
        )

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        from vllm.v1.engine.exceptions import EngineDeadError as VLLMEngineDeadError

        if self._llm is None:
            raise EngineDeadError("the engine has not started")
        prompt: dict[str, Any] = {"prompt_token_ids": list(request.prompt_token_ids)}
        if request.options.cache_salt:
            prompt["cache_salt"] = request.options.cache_salt
        finished = False
        top = request.options.logprobs
        outputs = self._llm.generate(prompt, self._sampling_params(request), request.request_id)
        try:
            async for output in outputs:
                completion = output.outputs[0]
                reason = None
                if output.finished:
                    finished = True
                    reason = _FINISH_REASONS.get(completion.finish_reason or "abort", "abort")
                tokens = list(completion.token_ids)
                yield TokenDelta(tokens, reason, output.num_cached_tokens if finished else None,
                                 None if top is None else
                                 _logprobs(tokens, completion.logprobs, top))
                if finished:
                    return
        except VLLMEngineDeadError as exc:
            finished = True
            raise EngineDeadError(f"vLLM engine died: {exc}") from exc
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            if self._llm.errored:
                finished = True
                raise EngineDeadError(f"vLLM engine died: {exc!r}") from exc
            raise
        finally:
            await outputs.aclose()  # vLLM aborts a request whose generator is closed early
            if not finished and not self._llm.errored:
                try:
                    await self._llm.abort(request.request_id)
                except Exception:  # noqa: BLE001 - best effort; vLLM already aborted it
                    log.debug("abort of %s failed", request.request_id, exc_info=True)
