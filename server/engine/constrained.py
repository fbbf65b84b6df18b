"""Constrained decoding inside vLLM: a logits processor that follows Harmony-aware routes.

Loaded by vLLM in its EngineCore process (``logits_processors`` engine argument, see
engine/vllm.py); a request opts in with routes in ``SamplingParams.extra_args`` (built by
server.harmony.constrain, where the Harmony knowledge lives). Per request it tracks where the
generation is — writing a header (only tokens that continue some route's header), inside a free
body (any ordinary token, and the body's end), inside a constrained body (what xgrammar allows
for the JSON schema, its end once the JSON is complete), or done — and masks the logits.

Why our own processor rather than vLLM's structured outputs: those need a tokenizer inside the
engine (we run with ``skip_tokenizer_init``, rendering and parsing Harmony ourselves) and know
gpt-oss only through a reasoning parser that cannot express "reasoning free, then exactly one
call to one of these functions, in either header order". Here the grammar covers exactly the
body that must be valid; the vocabulary comes from the same verified o200k file as Harmony's.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
from pathlib import Path

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

log = logging.getLogger(__name__)

EXTRA_ARG = "gptoss_constraint"  # = server.harmony.constrain.EXTRA_ARG (no server import here)
_HEADER, _BODY, _DONE, _OFF = range(4)


@functools.cache
def _vocabulary(vocab_size: int) -> tuple[bytes, ...]:
    """Each token id's bytes in the o200k vocabulary (empty for special tokens)."""
    path = Path(os.environ["TIKTOKEN_ENCODINGS_BASE"]) / "o200k_base.tiktoken"
    vocab = [b""] * vocab_size
    for line in path.read_bytes().splitlines():
        token, rank = line.split()
        if int(rank) < vocab_size:
            vocab[int(rank)] = base64.b64decode(token)
    return tuple(vocab)


@functools.cache
def _compiler(vocab_size: int):
    """xgrammar's compiler over the o200k vocabulary (special tokens never match text)."""
    import xgrammar

    info = xgrammar.TokenizerInfo(list(_vocabulary(vocab_size)), xgrammar.VocabType.RAW,
                                  vocab_size=vocab_size, stop_token_ids=[])
    return xgrammar.GrammarCompiler(info, cache_enabled=True)


@functools.cache
def _control_tokens(vocab_size: int, device: torch.device) -> torch.Tensor:
    """Ids of the tokens holding a raw control character (bytes 0x00-0x1f). Compact JSON never
    contains one: whitespace is only the separators' spaces, and inside strings they must be
    escaped. xgrammar's grammar for a string with minLength/maxLength allows them (its class is
    [^"\\\r\n]), so they are banned in every JSON body on top of its mask."""
    return torch.tensor([token for token, text in enumerate(_vocabulary(vocab_size))
                         if any(byte < 0x20 for byte in text)], device=device)


class _Request:
    """One constrained generation: where it is in its routes, and what may come next."""

    def __init__(self, rules: dict, output_ids: list[int], vocab_size: int) -> None:
        self.routes = rules["routes"]
        self.again = rules["again"]
        self.specials = [t for t in rules["specials"] if t < vocab_size]
        self.blocked: dict[int, torch.Tensor] = {}  # per body end: the control tokens it bans
        self.bitmask = None  # xgrammar's allowed-token bits, allocated once per request
        self.output_ids = output_ids  # vLLM's live list of this request's generated tokens
        self.vocab_size = vocab_size
        self.seen = 0
        self.phase = _HEADER
        self.prefix: list[int] = []  # forced tokens before the next header
        self.candidates = list(range(len(self.routes)))
        self.position = 0
        self.route: dict | None = None
        self.matcher = None

    def catch_up(self) -> None:
        ids = self.output_ids
        while self.seen < len(ids):
            token = ids[self.seen]
            if token < 0:  # a placeholder vLLM has not filled in yet (see apply)
                return
            self.seen += 1
            self._advance(token)

    def _advance(self, token: int) -> None:
        if self.phase == _HEADER:
            if self.prefix:
                self._expect(token == self.prefix[0])
                self.prefix = self.prefix[1:]
                return
            at = self.position
            self.candidates = [r for r in self.candidates if self.routes[r]["header"][at] == token]
            self.position += 1
            self._expect(bool(self.candidates))
            done = [r for r in self.candidates if len(self.routes[r]["header"]) == self.position]
            if done:
                self._open(self.routes[done[0]])
        elif self.phase == _BODY:
            if self.matcher is not None and token != self.route["end"]:
                self._expect(self.matcher.accept_token(token))
            elif token == self.route["end"]:
                self._close()

    def _expect(self, ok: bool) -> None:
        if not ok:  # a token the mask did not allow: stop interfering rather than guess
            log.warning("constrained generation left its routes at output token %d (id %d, "
                        "phase %d); continuing unconstrained", self.seen - 1,
                        self.output_ids[self.seen - 1], self.phase)
            self.phase = _OFF

    def _open(self, route: dict) -> None:
        self.phase, self.route, self.matcher = _BODY, route, None
        if route["schema"] is not None:
            import xgrammar

            compiled = _compiler(self.vocab_size).compile_json_schema(
                route["schema"], any_whitespace=False, strict_mode=route["strict"])
            self.matcher = xgrammar.GrammarMatcher(compiled, override_stop_tokens=[route["end"]])

    def _close(self) -> None:
        if not self.route["continues"]:
            self.phase = _DONE
            return
        self.phase, self.prefix = _HEADER, list(self.again)
        self.candidates, self.position = list(range(len(self.routes))), 0

    def mask(self, row: torch.Tensor) -> None:
        """Allow only what may come next, in place."""
        if self.phase == _HEADER:
            allowed = ([self.prefix[0]] if self.prefix else
                       sorted({self.routes[r]["header"][self.position] for r in self.candidates}))
            keep = row[allowed].clone()
            row.fill_(float("-inf"))
            row[allowed] = keep
        elif self.phase == _BODY and self.matcher is None:
            end = self.route["end"]
            blocked = self.blocked.get(end)
            if blocked is None or blocked.device != row.device:
                blocked = self.blocked[end] = torch.tensor(
                    [t for t in self.specials if t != end], device=row.device)
            row.index_fill_(0, blocked, float("-inf"))
        elif self.phase == _BODY:
            import xgrammar

            if self.bitmask is None:
                self.bitmask = xgrammar.allocate_token_bitmask(1, self.vocab_size)
            self.matcher.fill_next_token_bitmask(self.bitmask, 0)
            xgrammar.apply_token_bitmask_inplace(row.unsqueeze(0),
                                                 self.bitmask.to(row.device, non_blocking=True),
                                                 vocab_size=self.vocab_size)
            row.index_fill_(0, _control_tokens(self.vocab_size, row.device), float("-inf"))


class HarmonyConstraints(LogitsProcessor):
    """vLLM logits processor: masks the logits of requests that carry Harmony routes."""

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
        self.vocab_size = vllm_config.model_config.get_vocab_size()
        self.requests: dict[int, _Request] = {}

    def is_argmax_invariant(self) -> bool:
        return False  # it changes what greedy decoding picks

    def _new(self, params, prompt_ids, output_ids) -> _Request | None:
        rules = (params.extra_args or {}).get(EXTRA_ARG)
        return None if rules is None else _Request(rules, output_ids, self.vocab_size)

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self.requests, batch_update, self._new)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        # Catch up here, not in update_state: with async scheduling (vLLM's default on GPUs)
        # the last sampled token is still a placeholder (-1) when update_state runs, and vLLM
        # fills it in only just before the sampler calls apply.
        for index, request in self.requests.items():
            request.catch_up()
            if request.phase in (_HEADER, _BODY):
                request.mask(logits[index])
        return logits
