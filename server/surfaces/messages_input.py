"""Anthropic Messages input: system, tools and messages -> the plan's conversation.

- ``system`` (a string or text blocks) becomes the developer instructions.
- A user message's text blocks become a user message (joined by newlines); each
  ``tool_result`` becomes the tool's result (its name found through ``tool_use_id``; with
  ``is_error`` the text is marked ``Error: ``, as gpt-oss has no error flag).
- An assistant message's ``thinking`` becomes analysis (the renderer keeps it inside an open
  tool loop and drops it once a final answer ended the turn); ``redacted_thinking`` cannot be
  read and is left out; text before a ``tool_use`` is a preamble, text after the last one a
  final answer; ``tool_use`` is a call with its ``input`` as JSON arguments.
- Custom tools become function tools; Anthropic's server tools (``web_search_*``, ``bash_*``,
  ``text_editor_*``, ``computer_*``, ``code_execution_*``...) and image or document blocks are
  a 400 naming them. ``tool_choice`` ``any`` / ``tool`` need constrained decoding: a 400 until
  then; ``none`` leaves the tools out of the prompt.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server import plan as p
from server.constraint import Constraint, plan_constraint
from server.errors import InvalidRequestError
from server.schemas.messages import MessageCountTokensParams, MessageParam


class CustomTool(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    input_schema: dict
    strict: bool | None = None


def _tools(raw: list[dict] | None) -> list[p.Tool]:
    tools = []
    for i, tool in enumerate(raw or ()):
        kind = tool.get("type", "custom")
        if kind != "custom":
            raise InvalidRequestError(
                f"tool type '{kind}' is not supported: Anthropic's server tools run on "
                "Anthropic's side; this server runs custom (client) tools only",
                param=f"tools.{i}.type")
        try:
            parsed = CustomTool.model_validate(tool)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join([f"tools.{i}", *(str(part) for part in first["loc"])])
            raise InvalidRequestError(f"{where}: {first['msg']}", param=where) from None
        tools.append(p.Tool(parsed.name, parsed.description or "", parsed.input_schema,
                            parsed.strict))
    return tools


def _refused(block_type: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(f"content block type '{block_type}' is not supported: gpt-oss "
                               "reads text only", param=f"{param}.type")


def _tool_result(block, param: str, names: dict[str, str]) -> p.Message:
    name = names.get(block.tool_use_id)
    if name is None:
        raise InvalidRequestError(
            f"tool_result refers to tool_use_id '{block.tool_use_id}', which no earlier "
            "tool_use made", param=f"{param}.tool_use_id")
    if isinstance(block.content, str):
        text = block.content
    else:
        parts = []
        for j, part in enumerate(block.content):
            if part.type != "text":
                raise _refused(part.type, f"{param}.content.{j}")
            parts.append(part.text)
        text = "\n".join(parts)
    return p.tool_result(name, f"Error: {text}" if block.is_error else text)


def _user(message: MessageParam, param: str, names: dict[str, str]) -> list[p.Message]:
    if isinstance(message.content, str):
        return [p.user(message.content)]
    out: list[p.Message] = []
    texts: list[str] = []
    for j, block in enumerate(message.content):
        where = f"{param}.content.{j}"
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_result":
            out.append(_tool_result(block, where, names))
        elif block.type in ("thinking", "redacted_thinking", "tool_use"):
            raise InvalidRequestError(f"a user message cannot hold a '{block.type}' block",
                                      param=f"{where}.type")
        else:
            raise _refused(block.type, where)
    if texts:
        out.append(p.user("\n".join(texts)))
    return out


def _assistant(message: MessageParam, param: str, names: dict[str, str]) -> list[p.Message]:
    if isinstance(message.content, str):
        return [p.answer(message.content)] if message.content else []
    out: list[p.Message] = []
    texts: list[str] = []
    for j, block in enumerate(message.content):
        where = f"{param}.content.{j}"
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "thinking":
            if block.thinking:
                out.append(p.reasoning(block.thinking))
        elif block.type == "tool_use":
            if texts:
                out.append(p.preamble("\n".join(texts)))
                texts = []
            names[block.id] = block.name
            out.append(p.call(block.name, json.dumps(block.input, ensure_ascii=False)))
        elif block.type == "tool_result":
            raise InvalidRequestError("an assistant message cannot hold a 'tool_result' block",
                                      param=f"{where}.type")
        elif block.type != "redacted_thinking":
            raise _refused(block.type, where)
    if "".join(texts):
        out.append(p.answer("\n".join(texts)))
    return out


def constraint(request: MessageCountTokensParams, tools: list[p.Tool],
               settings) -> Constraint | None:
    """``tool_choice`` any -> a call is required, tool -> that one; strict tools' input is
    constrained whenever they are called. ``disable_parallel_tool_use`` holds anyway: gpt-oss
    makes one call per turn."""
    choice = request.tool_choice
    if choice is None or choice.type in ("auto", "none"):
        return plan_constraint(tools, settings, tool_param=lambda i: f"tools.{i}.input_schema")
    if choice.type == "tool" and not choice.name:
        raise InvalidRequestError("tool_choice of type tool needs a name",
                                  param="tool_choice.name")
    return plan_constraint(tools, settings, required=choice.type == "any",
                           named=choice.name if choice.type == "tool" else None,
                           named_param="tool_choice.name",
                           tool_param=lambda i: f"tools.{i}.input_schema")


def conversation(request: MessageCountTokensParams, effort: str) -> p.Conversation:
    choice = request.tool_choice
    tools = _tools(request.tools)
    result = p.Conversation(effort, tools=[] if choice is not None and choice.type == "none"
                            else tools)
    system = request.system
    if system:
        result.instructions.append(system if isinstance(system, str)
                                   else "\n".join(block.text for block in system))
    names: dict[str, str] = {}
    for i, message in enumerate(request.messages):
        read = _user if message.role == "user" else _assistant
        result.messages += read(message, f"messages.{i}", names)
    return result
