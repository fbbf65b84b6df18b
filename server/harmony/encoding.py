"""Load the Harmony encoding offline, and name the special tokens the server cares about.

openai_harmony downloads ``o200k_base.tiktoken`` unless ``TIKTOKEN_ENCODINGS_BASE`` names a
directory holding it. We resolve that directory at start-up, never at the first request:
1. ``TIKTOKEN_ENCODINGS_BASE`` if the operator set it (the Docker image bakes the file in);
2. else a copy extracted from the pinned ``bpe-openai`` package into a cache directory;
and check its SHA-256 either way. Any failure is a ``VocabularyError`` with a clear message.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

VOCAB_FILE = "o200k_base.tiktoken"
VOCAB_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
ENV_VAR = "TIKTOKEN_ENCODINGS_BASE"


class VocabularyError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gpt-oss-server" / "harmony-vocab"


def _extract_from_package() -> Path:
    """Gunzip the vocabulary shipped by bpe-openai into our cache dir (atomically)."""
    try:
        # Located, not imported: importing bpe_openai builds its tokenizers (seconds of CPU).
        spec = importlib.util.find_spec("bpe_openai")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("bpe_openai")
        packed = Path(spec.submodule_search_locations[0]) / "data" / f"{VOCAB_FILE}.gz"
        data = gzip.decompress(packed.read_bytes())
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise VocabularyError(
            f"{ENV_VAR} is not set and the bundled vocabulary (package bpe-openai) is missing: "
            f"{exc}. Install bpe-openai==0.1.4 or set {ENV_VAR} to a directory with {VOCAB_FILE}."
        ) from exc
    if hashlib.sha256(data).hexdigest() != VOCAB_SHA256:
        raise VocabularyError("the vocabulary in bpe-openai has an unexpected SHA-256")
    directory = _cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / VOCAB_FILE
    if not target.exists() or _sha256(target) != VOCAB_SHA256:
        partial = directory / f".{VOCAB_FILE}.{os.getpid()}"
        partial.write_bytes(data)
        partial.replace(target)
    return directory


def resolve_vocabulary() -> Path:
    """Make sure ``TIKTOKEN_ENCODINGS_BASE`` names a verified vocabulary; return the directory."""
    configured = os.environ.get(ENV_VAR)
    directory = Path(configured) if configured else _extract_from_package()
    path = directory / VOCAB_FILE
    if not path.is_file():
        raise VocabularyError(f"{ENV_VAR}={directory} has no {VOCAB_FILE}")
    if _sha256(path) != VOCAB_SHA256:
        raise VocabularyError(f"{path} has the wrong SHA-256 (expected {VOCAB_SHA256})")
    os.environ[ENV_VAR] = str(directory)
    return directory


@dataclass(frozen=True, slots=True)
class SpecialTokens:
    start: int
    channel: int
    message: int
    end: int
    call: int
    return_: int
    constrain: int
    assistant: int  # the role name "assistant" (an ordinary token), after <|start|>
    first: int  # the lowest special-token id: every id from here up is a control token

    @property
    def message_ends(self) -> frozenset[int]:
        return frozenset((self.end, self.call, self.return_))


@dataclass(frozen=True)
class Harmony:
    """The loaded encoding plus the token ids the decoder and the engine need."""

    encoding: object  # openai_harmony.HarmonyEncoding
    special: SpecialTokens
    stop_token_ids: tuple[int, ...]  # where an assistant turn ends: <|return|>, <|call|>
    vocab_end: int  # one past the highest token id (specials included)

    def encode_completion(self, text: str) -> list[int]:
        """Tokens of raw Harmony text with the special tokens written literally."""
        return self.encoding.encode(text, allowed_special="all")

    def plain_tokens(self, text: str) -> list[int]:
        """Tokens of ``text`` as ordinary text: ``<|start|>`` in it stays text, as in a message
        body (the encoding has no public call for that, so a user message is rendered and
        its body taken)."""
        from openai_harmony import Message, Role

        tokens = self.encoding.render(Message.from_role_and_content(Role.USER, text))
        return tokens[tokens.index(self.special.message) + 1: -1]

    @property
    def byte_table(self) -> list[bytes]:
        """Every token's bytes, by id (special tokens as their text)."""
        return _byte_table(self)

    def token_bytes(self, token: int) -> bytes:
        """The bytes of one token (logprobs report them); special tokens as their text."""
        table = _byte_table(self)
        return table[token] if token < len(table) else b""

    def decode_text(self, token_ids: list[int]) -> str:
        return self.encoding.decode_utf8(token_ids)


@functools.cache
def _byte_table(harmony: Harmony) -> list[bytes]:
    """Every token's bytes, read once from the verified vocabulary file (~0.2 s, when the
    encoding is loaded)."""
    table = [b""] * harmony.vocab_end
    path = Path(os.environ[ENV_VAR]) / VOCAB_FILE
    for line in path.read_bytes().splitlines():
        token, rank = line.split()
        table[int(rank)] = base64.b64decode(token)
    for text in harmony.encoding.special_tokens_set:
        (token,) = harmony.encoding.encode(text, allowed_special="all")
        table[token] = text.encode()
    return table


@functools.cache
def load_harmony() -> Harmony:
    """Resolve the vocabulary offline and load the gpt-oss Harmony encoding (once per process)."""
    resolve_vocabulary()
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    try:
        encoding = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    except Exception as exc:  # the Rust loader raises a bare HarmonyError
        raise VocabularyError(f"loading the Harmony encoding failed: {exc}") from exc

    def token(text: str) -> int:
        (token_id,) = encoding.encode(text, allowed_special="all")
        return token_id

    special = SpecialTokens(
        start=token("<|start|>"), channel=token("<|channel|>"), message=token("<|message|>"),
        end=token("<|end|>"), call=token("<|call|>"), return_=token("<|return|>"),
        constrain=token("<|constrain|>"), assistant=token("assistant"),
        first=min(token(text) for text in encoding.special_tokens_set),
    )
    harmony = Harmony(
        encoding=encoding,
        special=special,
        stop_token_ids=tuple(encoding.stop_tokens_for_assistant_actions()),
        vocab_end=max(token(text) for text in encoding.special_tokens_set) + 1,
    )
    _byte_table(harmony)  # the decoder reads message bodies through it: load it now
    return harmony
