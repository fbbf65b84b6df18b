"""Render a plan's conversation (server.plan) into Harmony prompt tokens.

Rules (see README "How requests become Harmony"):
- The Harmony system message is the server's: identity, knowledge cutoff, current date
  (pinnable), reasoning effort, valid channels.
- The plan's instructions (OpenAI ``system``/``developer`` messages, Responses ``instructions``,
  Anthropic ``system``) become the developer message's instructions, in order; function tools
  become the ``functions`` namespace.
- Reasoning (analysis) of a turn that ended in a final answer is dropped; reasoning inside the
  open tool loop (after the last final answer) is kept.
- Header order is OpenAI's (its Harmony guide, the gpt-oss chat template and the official
  openai-harmony renderer), not the oss-harmony fork's: a call is
  ``<|start|>assistant to=functions.X<|channel|>commentary <|constrain|>json<|message|>``, a tool
  result ``<|start|>functions.X to=assistant<|channel|>commentary<|message|>``.
- Message text is always encoded as plain text: ``<|start|>`` typed by a user stays text.
"""

from __future__ import annotations

import datetime as dt

from openai_harmony import (
    Author,
    DeveloperContent,
    ReasoningEffort,
    RenderConversationConfig,
    Role,
    SystemContent,
    ToolDescription,
)
from openai_harmony import Conversation as HarmonyConversation
from openai_harmony import Message as HarmonyMessage

from server.harmony.encoding import Harmony
from server.plan import ANALYSIS, ASSISTANT, FINAL, USER, Conversation, Message

_EFFORTS = {"low": ReasoningEffort.LOW, "medium": ReasoningEffort.MEDIUM,
            "high": ReasoningEffort.HIGH}
_CALL_CONTENT_TYPE = "<|constrain|>json"
_NO_AUTO_DROP = RenderConversationConfig(auto_drop_analysis=False)


def conversation_date(date: str | None) -> str:
    """The pinned date, else today (UTC): the system message's 'Current date'."""
    return date or dt.datetime.now(dt.UTC).date().isoformat()


def _system_message(effort: str, date: str | None) -> HarmonyMessage:
    date = conversation_date(date)
    content = (SystemContent.new().with_reasoning_effort(_EFFORTS[effort])
               .with_conversation_start_date(date))
    return HarmonyMessage.from_role_and_content(Role.SYSTEM, content)


def _developer_message(conversation: Conversation) -> HarmonyMessage | None:
    if not conversation.instructions and not conversation.tools:
        return None
    content = DeveloperContent.new()
    if conversation.instructions:
        content = content.with_instructions("\n\n".join(conversation.instructions))
    if conversation.tools:
        content = content.with_function_tools([
            ToolDescription.new(t.name, t.description, parameters=t.parameters or None)
            for t in conversation.tools])
    return HarmonyMessage.from_role_and_content(Role.DEVELOPER, content)


def _render_message(harmony: Harmony, message: Message) -> list[int]:
    encoding = harmony.encoding
    if message.author == USER:
        return encoding.render(HarmonyMessage.from_role_and_content(Role.USER, message.text))
    if message.author != ASSISTANT:  # a tool result; the recipient goes in the author header
        author = Author.new(Role.TOOL, f"{message.author} to={message.recipient}")
        return encoding.render(HarmonyMessage.from_author_and_content(author, message.text)
                               .with_channel(message.channel))
    rendered = HarmonyMessage.from_role_and_content(Role.ASSISTANT, message.text) \
        .with_channel(message.channel)
    if message.recipient is None:
        return encoding.render(rendered)
    # A call: render it without a recipient, then put ` to=functions.X` after the role (where
    # OpenAI's renderer writes it) and end with <|call|>.
    tokens = encoding.render(rendered.with_content_type(_CALL_CONTENT_TYPE))
    special = harmony.special
    return [special.start, tokens[1], *harmony.plain_tokens(f" to={message.recipient}"),
            *tokens[2:-1], special.call]


def _kept(messages: list[Message]) -> list[Message]:
    """Drop the reasoning of turns that ended in a final answer (Harmony's rule)."""
    last_final = max((i for i, m in enumerate(messages)
                      if m.author == ASSISTANT and m.channel == FINAL), default=-1)
    return [m for i, m in enumerate(messages)
            if i > last_final or not (m.author == ASSISTANT and m.channel == ANALYSIS)]


def render_head(harmony: Harmony, conversation: Conversation, date: str | None) -> list[int]:
    """The system and developer messages: what the effort, the date, the instructions and the
    tools decide (the messages do not enter it)."""
    head = [_system_message(conversation.effort, date)]
    developer = _developer_message(conversation)
    if developer is not None:
        head.append(developer)
    # together: the system message names the tools' channel when the developer declares tools
    return harmony.encoding.render_conversation(HarmonyConversation.from_messages(head),
                                                _NO_AUTO_DROP)


def render_conversation(harmony: Harmony, conversation: Conversation,
                        date: str | None) -> list[int]:
    """Prompt token ids, ending with ``<|start|>assistant`` for the model to continue.

    The reference rendering: server.harmony.render_cache assembles the same tokens from cached
    pieces (proven equal by tests/unit/test_render_cache.py)."""
    tokens = render_head(harmony, conversation, date)
    for message in _kept(conversation.messages):
        tokens += _render_message(harmony, message)
    tokens += (harmony.special.start, harmony.special.assistant)
    return tokens
