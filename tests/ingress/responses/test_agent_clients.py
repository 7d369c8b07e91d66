"""Agent frameworks that speak the Responses API by default, unchanged, through the gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import agents
import langchain_openai
import litellm
from openai import AsyncOpenAI

from tests.servers import RunningServer
from tests.tool_upstream import ToolUpstream

agents.set_tracing_disabled(True)  # it would export traces to OpenAI's servers


def weather_agent(gateway: RunningServer, weather: str) -> Any:
    """An Agents SDK agent on its default Responses model, pointed at the gateway."""

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"{weather} in {city}"

    client = AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)
    model = agents.OpenAIResponsesModel(model="gpt-test", openai_client=client)
    return agents.Agent(name="weather", instructions="Use tools.", tools=[get_weather], model=model)


def test_agents_sdk_run_completes_the_tool_loop(
    responses_gateway: RunningServer, tool_upstream: ToolUpstream
) -> None:
    agent = weather_agent(responses_gateway, "sunny")
    result = asyncio.run(agents.Runner.run(agent, "What is the weather in Paris?"))
    assert result.final_output == "The tool said: sunny in Paris"
    assert tool_upstream.requests[-1]["messages"][-1]["role"] == "tool"


def test_agents_sdk_run_streamed_completes_the_tool_loop(responses_gateway: RunningServer) -> None:
    agent = weather_agent(responses_gateway, "rainy")

    async def run() -> tuple[str, list[str]]:
        result = agents.Runner.run_streamed(agent, "Weather in Oslo?")
        kinds = [event.type async for event in result.stream_events()]
        return result.final_output, kinds

    final, kinds = asyncio.run(run())
    assert final == "The tool said: rainy in Paris"
    assert "run_item_stream_event" in kinds


def test_langchain_invoke_and_stream(responses_gateway: RunningServer) -> None:
    chat = langchain_openai.ChatOpenAI(
        model="gpt-test",
        base_url=f"{responses_gateway.url}/v1",
        api_key="x",
        use_responses_api=True,
        max_retries=0,
    )
    reply = chat.invoke("hello langchain")
    assert reply.text() == "You said: hello langchain (messages: 1)"
    streamed = "".join(chunk.text() for chunk in chat.stream("stream langchain"))
    assert streamed == "You said: stream langchain (messages: 1)"


def test_litellm_responses(responses_gateway: RunningServer) -> None:
    response = litellm.responses(
        model="openai/gpt-test",
        input="hello litellm",
        api_base=f"{responses_gateway.url}/v1",
        api_key="x",
    )
    texts = [part.text for item in response.output for part in getattr(item, "content", [])]
    assert texts == ["You said: hello litellm (messages: 1)"]
