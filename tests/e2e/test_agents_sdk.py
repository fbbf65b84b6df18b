"""End-to-end: OpenAI's Agents SDK (``openai-agents``) against gpt-oss-tiny on the real engine.

The SDK on its default model path, the Responses API (``OpenAIResponsesModel``), set up as a user
would (README, "Agents SDK"): ``set_default_openai_client`` with our base URL, the ``responses``
API, tracing off. An agent with a ``get_weather`` function tool that returns a fixed result runs
the weather tool loop with ``Runner.run`` and ``Runner.run_streamed``: the tool is called with the
held-out city of the question, and the final output is the model's answer from the tool's result.
"""

from __future__ import annotations

import json

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from agents.models.multi_provider import MultiProvider

from training.train import weather_answer, weather_arguments, weather_result

pytestmark = pytest.mark.engine

MODEL = "gpt-oss-tiny"
# What the tool returns for every city (fixed), and cities held out of the weather training.
TEMPERATURE, CONDITION = 24, "windy"
CITIES = ["Madrid", "Amsterdam"]
# The items of one tool loop: reasoning and a call, the tool's output, reasoning and the answer.
LOOP_ITEMS = ["reasoning_item", "tool_call_item", "tool_call_output_item", "reasoning_item",
              "message_output_item"]


@pytest.fixture
async def weather_agent(trained_server):
    """An Agent on the SDK's default (Responses) model path, and the cities its tool was asked for."""
    client = trained_server.async_client()
    set_default_openai_client(client)
    set_default_openai_api("responses")
    set_tracing_disabled(True)
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        calls.append(city)
        return weather_result(TEMPERATURE, CONDITION)

    agent = Agent(name="Weather", instructions="You are a helpful assistant.", model=MODEL,
                  tools=[get_weather], model_settings=ModelSettings(temperature=0))
    assert isinstance(MultiProvider().get_model(MODEL), OpenAIResponsesModel)
    yield agent, calls
    await client.close()


def assert_tool_loop(result, calls: list[str], city: str) -> None:
    assert calls == [city]
    assert result.final_output == weather_answer(city, TEMPERATURE, CONDITION)
    assert [item.type for item in result.new_items] == LOOP_ITEMS
    call = result.new_items[1].raw_item
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": city}
    assert call.arguments == weather_arguments(city)
    assert result.new_items[2].output == weather_result(TEMPERATURE, CONDITION)
    for reasoning in (result.new_items[0], result.new_items[3]):
        assert reasoning.raw_item.content[0].text.strip()
    # Two model calls, both through /v1/responses (Chat Completions responses have no id here).
    assert len(result.raw_responses) == 2
    assert all(r.response_id and r.response_id.startswith("resp_") for r in result.raw_responses)


@pytest.mark.parametrize("city", CITIES)
async def test_runner_run(weather_agent, city):
    agent, calls = weather_agent
    result = await Runner.run(agent, f"What is the weather in {city}?")
    assert_tool_loop(result, calls, city)


@pytest.mark.parametrize("city", CITIES)
async def test_runner_run_streamed(weather_agent, city):
    agent, calls = weather_agent
    result = Runner.run_streamed(agent, f"What is the weather in {city}?")
    raw_types: list[str] = []
    item_events: list[str] = []
    text = ""
    async for event in result.stream_events():
        if event.type == "raw_response_event":
            raw_types.append(event.data.type)
            if event.data.type == "response.output_text.delta":
                text += event.data.delta
        elif event.type == "run_item_stream_event":
            item_events.append(event.name)
    assert result.is_complete
    assert_tool_loop(result, calls, city)
    assert item_events == ["reasoning_item_created", "tool_called", "tool_output",
                           "reasoning_item_created", "message_output_created"]
    # Two streamed responses, each from response.created to response.completed; the answer's
    # text deltas add up to the final output.
    assert raw_types.count("response.created") == raw_types.count("response.completed") == 2
    assert raw_types[0] == "response.created" and raw_types[-1] == "response.completed"
    assert text == result.final_output
