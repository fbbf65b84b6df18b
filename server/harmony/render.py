"""Render an OpenAI Chat Completions request into Harmony prompt tokens.

Rules (see README "How requests become Harmony"):
- The Harmony system message is the server's: identity, knowledge cutoff, current date
  (pinnable), reasoning effort, valid channels.
- OpenAI ``system`` and ``developer`` messages become the Harmony developer message's
  instructions, in order, none dropped; function tools become the ``functions`` namespace.
- Assistant history: reasoning -> ``analysis``; content -> ``final`` (or ``commentary`` when it
  is a preamble before tool calls); tool calls -> ``commentary to=functions.NAME
  <|constrain|>json``; tool results -> ``functions.NAME to=assistant`` on commentary.
- Reasoning of a turn that ended in a final answer is dropped; reasoning inside the open tool
  loop (after the last final answer) is kept.
- Message text is always encoded as plain text: ``<|start|>`` typed by a user stays text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from openai_harmony import (
    Author,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    RenderConversationConfig,
    Role,
    SystemContent,
    ToolDescription,
)

from server.errors import InvalidRequestError
from server.harmony.encoding import Harmony
from server.schemas.chat_request import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionToolParam,
    Content,
)

_EFFORTS = {"low": ReasoningEffort.LOW, "medium": ReasoningEffort.MEDIUM,
            "high": ReasoningEffort.HIGH}
_NO_AUTO_DROP = RenderConversationConfig(auto_drop_analysis=False)


@dataclass(frozen=True, slots=True)
class RenderOptions:
    effort: str  # low | medium | high
    date: str | None  # YYYY-MM-DD; None: today (UTC)


def content_text(content: Content | None, param: str) -> str:
    """The text of a message's content; non-text parts are a 400 (gpt-oss reads text only)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for i, part in enumerate(content):
        if part.type != "text":
            raise InvalidRequestError(
                f"content part type '{part.type}' is not supported: gpt-oss reads text only",
                param=f"{param}.content.{i}.type")
        texts.append(part.text)
    return "".join(texts)


def _system_message(options: RenderOptions) -> Message:
    date = options.date or dt.datetime.now(dt.UTC).date().isoformat()
    content = (SystemContent.new().with_reasoning_effort(_EFFORTS[options.effort])
               .with_conversation_start_date(date))
    return Message.from_role_and_content(Role.SYSTEM, content)


def _developer_message(instructions: list[str],
                       tools: list[ChatCompletionToolParam]) -> Message | None:
    if not instructions and not tools:
        return None
    content = DeveloperContent.new()
    if instructions:
        content = content.with_instructions("\n\n".join(instructions))
    if tools:
        content = content.with_function_tools([
            ToolDescription.new(t.function.name, t.function.description or "",
                                parameters=t.function.parameters or None)
            for t in tools
        ])
    return Message.from_role_and_content(Role.DEVELOPER, content)


def _assistant_messages(msg: ChatCompletionAssistantMessageParam, param: str,
                        keep_reasoning: bool) -> list[Message]:
    out = []
    reasoning = msg.reasoning_content or msg.reasoning
    if reasoning and keep_reasoning:
        out.append(Message.from_role_and_content(Role.ASSISTANT, reasoning)
                   .with_channel("analysis"))
    text = content_text(msg.content, param)
    if text:
        channel = "commentary" if msg.tool_calls else "final"
        out.append(Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel))
    for call in msg.tool_calls or ():
        out.append(Message.from_role_and_content(Role.ASSISTANT, call.function.arguments)
                   .with_channel("commentary")
                   .with_recipient(f"functions.{call.function.name}")
                   .with_content_type("<|constrain|>json"))
    return out


def _tool_message(msg: ChatCompletionToolMessageParam, param: str,
                  call_names: dict[str, str]) -> Message:
    name = call_names.get(msg.tool_call_id) or msg.name
    if not name:
        raise InvalidRequestError(
            f"tool message refers to tool_call_id '{msg.tool_call_id}', which no earlier "
            "assistant message made", param=f"{param}.tool_call_id")
    author = Author.new(Role.TOOL, f"functions.{name}")
    return (Message.from_author_and_content(author, content_text(msg.content, param))
            .with_channel("commentary").with_recipient("assistant"))


def _last_final_answer(messages: list) -> int:
    """Index of the last assistant message that ended a turn with a final answer, or -1."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m.role == "assistant" and not m.tool_calls and content_text(m.content, f"messages.{i}"):
            return i
    return -1


def build_conversation(messages: list, tools: list[ChatCompletionToolParam],
                       options: RenderOptions) -> Conversation:
    instructions: list[str] = []
    history: list[Message] = []
    call_names: dict[str, str] = {}
    last_final = _last_final_answer(messages)
    for i, msg in enumerate(messages):
        param = f"messages.{i}"
        if msg.role in ("system", "developer"):
            instructions.append(content_text(msg.content, param))
        elif msg.role == "user":
            history.append(Message.from_role_and_content(Role.USER, content_text(msg.content, param)))
        elif msg.role == "assistant":
            for call in msg.tool_calls or ():
                call_names[call.id] = call.function.name
            history.extend(_assistant_messages(msg, param, keep_reasoning=i > last_final))
        else:
            history.append(_tool_message(msg, param, call_names))
    head = [_system_message(options)]
    developer = _developer_message(instructions, tools)
    if developer is not None:
        head.append(developer)
    return Conversation.from_messages(head + history)


def render_prompt(harmony: Harmony, messages: list, tools: list[ChatCompletionToolParam],
                  options: RenderOptions) -> list[int]:
    """Prompt token ids, ending with ``<|start|>assistant`` for the model to continue."""
    conversation = build_conversation(messages, tools, options)
    return harmony.encoding.render_conversation_for_completion(
        conversation, Role.ASSISTANT, _NO_AUTO_DROP)
