"""Run a chat completion through the openai SDK in either mode and fold it to one shape."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Folded:
    reasoning_content: str = ""
    reasoning: str = ""
    content: str = ""
    tool_calls: list[dict] = field(default_factory=list)
    finish_reason: str | None = None


def _extra(obj, name: str) -> str:
    return (obj.model_extra or {}).get(name) or ""


def fold_message(choice) -> Folded:
    m = choice.message
    calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
             for c in m.tool_calls or []]
    return Folded(_extra(m, "reasoning_content"), _extra(m, "reasoning"), m.content or "",
                  calls, choice.finish_reason)


def fold_chunks(chunks) -> tuple[dict[int, Folded], object, set, set]:
    choices: dict[int, Folded] = {}
    usage, ids, created = None, set(), set()
    for chunk in chunks:
        ids.add(chunk.id)
        created.add(chunk.created)
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            f = choices.setdefault(c.index, Folded())
            d = c.delta
            f.reasoning_content += _extra(d, "reasoning_content")
            f.reasoning += _extra(d, "reasoning")
            f.content += d.content or ""
            for call in d.tool_calls or []:
                if call.id:
                    assert call.index == len(f.tool_calls), "tool call indexes must count up"
                    f.tool_calls.append({"id": call.id, "name": call.function.name,
                                         "arguments": call.function.arguments or ""})
                else:
                    f.tool_calls[call.index]["arguments"] += call.function.arguments or ""
            if c.finish_reason:
                f.finish_reason = c.finish_reason
    return choices, usage, ids, created


def complete(client, stream: bool, **kwargs) -> tuple[list[Folded], object]:
    """Choices (folded) and usage, via the sync SDK."""
    if not stream:
        response = client.chat.completions.create(**kwargs)
        return [fold_message(c) for c in response.choices], response.usage
    kwargs.setdefault("stream_options", {"include_usage": True})
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    choices, usage, ids, created = fold_chunks(chunks)
    assert len(ids) == 1 and len(created) == 1, "one id and one created per completion"
    return [choices[i] for i in sorted(choices)], usage


async def acomplete(client, stream: bool, **kwargs) -> tuple[list[Folded], object]:
    """The same through the async SDK."""
    if not stream:
        response = await client.chat.completions.create(**kwargs)
        return [fold_message(c) for c in response.choices], response.usage
    kwargs.setdefault("stream_options", {"include_usage": True})
    chunks = [c async for c in await client.chat.completions.create(stream=True, **kwargs)]
    choices, usage, _, _ = fold_chunks(chunks)
    return [choices[i] for i in sorted(choices)], usage
