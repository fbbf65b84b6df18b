"""Responses API input: items -> the plan's conversation, the items as they are stored, and
the request's checks and constraint.

Input items become Harmony messages: user text -> a user message; system and developer
messages -> developer instructions (after ``instructions``, in order); assistant messages -> a
final answer, or a preamble when a call follows it (or its ``phase`` says commentary);
``function_call`` -> a call; ``function_call_output`` -> the tool's result (its name found
through ``call_id``); ``reasoning`` -> analysis, which the renderer keeps inside an open tool
loop and drops once a final answer ended the turn.
"""

from __future__ import annotations

import secrets

from pydantic import ValidationError

from server import plan as p
from server.config import Settings
from server.constraint import Constraint, final_grammar, plan_constraint
from server.errors import InvalidRequestError
from server.schemas.responses import (
    ITEM_TYPES,
    EasyInputMessage,
    FunctionCallOutput,
    FunctionTool,
    InputItem,
    ResponseCreateParams,
    ResponseFunctionToolCall,
)

_ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco",
              "reasoning": "rs"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def _invalid(exc: ValidationError, param: str) -> InvalidRequestError:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-"))
    where = f"{param}.{loc}" if loc else param
    return InvalidRequestError(f"{where}: {first['msg']}", param=where)


def parse_items(raw: str | list[dict], param: str = "input") -> list[InputItem]:
    if isinstance(raw, str):
        return [EasyInputMessage(role="user", content=raw)]
    items = []
    for i, item in enumerate(raw):
        kind = item.get("type", "message" if "role" in item else None)
        model = ITEM_TYPES.get(kind) if isinstance(kind, str) else None
        if model is None:
            raise InvalidRequestError(
                f"input item type '{kind}' is not supported; use message, function_call, "
                "function_call_output or reasoning", param=f"{param}.{i}.type")
        try:
            items.append(model.model_validate(item))
        except ValidationError as exc:
            raise _invalid(exc, f"{param}.{i}") from None
    return items


def parse_tools(raw: list[dict] | None) -> list[FunctionTool]:
    tools = []
    for i, tool in enumerate(raw or ()):
        kind = tool.get("type")
        if kind != "function":
            raise InvalidRequestError(
                f"tool type '{kind}' is not supported: this server runs function tools only "
                "(built-in tools such as web_search, file_search or code_interpreter are "
                "hosted by OpenAI)", param=f"tools.{i}.type")
        try:
            tools.append(FunctionTool.model_validate(tool))
        except ValidationError as exc:
            raise _invalid(exc, f"tools.{i}") from None
    return tools


def _text(content: str | list, param: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for i, part in enumerate(content):
        if part.type in ("input_text", "output_text"):
            texts.append(part.text)
        elif part.type == "refusal":
            texts.append(part.refusal)
        else:
            raise InvalidRequestError(
                f"content part type '{part.type}' is not supported: gpt-oss reads text only",
                param=f"{param}.content.{i}.type")
    return "".join(texts)


def _calls_next(items: list[InputItem], i: int) -> bool:
    """Whether a function call follows item ``i`` before the next message (a preamble)."""
    for item in items[i + 1:]:
        if item.type == "function_call":
            return True
        if item.type != "reasoning":
            return False
    return False


def add_items(conversation: p.Conversation, items: list[InputItem], names: dict[str, str],
              param: str = "input") -> None:
    """Append ``items`` to ``conversation``; ``names`` maps call ids to function names."""
    for i, item in enumerate(items):
        where = f"{param}.{i}"
        if item.type == "message":
            text = _text(item.content, where)
            if item.role in ("system", "developer"):
                conversation.instructions.append(text)
            elif item.role == "user":
                conversation.messages.append(p.user(text))
            elif text:
                commentary = item.phase == "commentary" or _calls_next(items, i)
                conversation.messages.append(p.preamble(text) if commentary else p.answer(text))
        elif item.type == "function_call":
            names[item.call_id] = item.name
            conversation.messages.append(p.call(item.name, item.arguments))
        elif item.type == "function_call_output":
            conversation.messages.append(_tool_result(item, names, where))
        else:
            text = "".join(part.text for part in item.content or item.summary)
            if text:
                conversation.messages.append(p.reasoning(text))


def _tool_result(item: FunctionCallOutput, names: dict[str, str], where: str) -> p.Message:
    name = names.get(item.call_id)
    if name is None:
        raise InvalidRequestError(
            f"function_call_output refers to call_id '{item.call_id}', which no earlier "
            "function_call made", param=f"{where}.call_id")
    output = item.output if isinstance(item.output, str) else _text(item.output, where)
    return p.tool_result(name, output)


def stored_item(item: InputItem) -> dict:
    """An input item as it is stored and listed (``input_items``): typed, with an id."""
    body = item.model_dump(exclude_none=True)
    body["id"] = item.id or new_id(_ID_PREFIX[item.type])
    if isinstance(item, EasyInputMessage):
        kind = "output_text" if item.role == "assistant" else "input_text"
        if isinstance(item.content, str):
            body["content"] = [{"type": kind, "text": item.content}]
        body.setdefault("status", "completed")
    elif isinstance(item, ResponseFunctionToolCall | FunctionCallOutput):
        body.setdefault("status", "completed")
    return body


# `include` values: honoured (reasoning is always returned as plain reasoning_text content, which
# is what the encrypted form would carry back), or about tools this server does not run.
LOGPROBS = "message.output_text.logprobs"
_INCLUDE_OK = {LOGPROBS, "reasoning.encrypted_content", "file_search_call.results",
               "web_search_call.results", "web_search_call.action.sources",
               "code_interpreter_call.outputs", "computer_call_output.output.image_url",
               "message.input_image.image_url"}


def refuse_unsupported(request: ResponseCreateParams) -> None:
    if request.background:
        raise InvalidRequestError("background responses are not supported: send the request "
                                  "without background (stream it to see progress)",
                                  param="background")
    choice = request.tool_choice
    if isinstance(choice, dict) and choice.get("type") != "function":
        raise InvalidRequestError(f"tool_choice type '{choice.get('type')}' is not supported: "
                                  "use auto, none, required or a function",
                                  param="tool_choice.type")
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        raise InvalidRequestError(f"tool_choice '{choice}' is not one of auto, none, required",
                                  param="tool_choice")
    for i, value in enumerate(request.include or ()):
        if value not in _INCLUDE_OK:
            raise InvalidRequestError(f"include value '{value}' is not supported",
                                      param=f"include.{i}")


def constraint(request: ResponseCreateParams, tools: list[p.Tool],
               settings: Settings) -> Constraint | None:
    fmt = request.text.format if request.text else None
    final = final_grammar(fmt.type if fmt else None, fmt.schema_ if fmt else None,
                          fmt.strict if fmt else None, "text.format.schema", settings)
    choice = request.tool_choice
    named = choice.get("name") if isinstance(choice, dict) else None
    if isinstance(choice, dict) and not isinstance(named, str):
        raise InvalidRequestError("tool_choice.name must name a function", param="tool_choice.name")
    return plan_constraint(tools, settings, final=final, required=choice == "required",
                           named=named, named_param="tool_choice.name")
