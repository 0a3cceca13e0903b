"""pydantic-ai agents (OpenAI chat model and Anthropic model) with pydantic-ai's own OTel instrumentation
(Agent.instrument_all). Each flow is one agent run: an `invoke_agent` span around `chat <model>` spans
(and, for the tool flow, a `running tools` / `execute_tool` span between the two model requests).

The anthropic SDK 2.x used by the Anthropic model also emits its own spans (duplicates), unless
ANTHROPIC_OPEN_TELEMETRY=false.
"""
import asyncio
import sys

from _common import (ANTHROPIC_CHAT, ANTHROPIC_STREAM, OPENAI_CHAT, OPENAI_REASONING, OPENAI_STREAM, Runner,
                     anthropic_base_url, get_weather, openai_base_url, setup_tracing)

FLOWS = ("chat", "reasoning", "stream", "tool", "error",
         "anthropic_chat", "anthropic_stream", "anthropic_tool", "anthropic_error")


def main() -> int:
    provider = setup_tracing()
    import anthropic
    import openai
    from pydantic_ai import Agent
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.anthropic import AnthropicProvider
    from pydantic_ai.providers.openai import OpenAIProvider

    Agent.instrument_all(InstrumentationSettings(tracer_provider=provider))

    def oa(flow, model, fail=None):
        client = openai.AsyncOpenAI(base_url=openai_base_url(flow, fail), api_key="sk-fake-harness", max_retries=0)
        return OpenAIChatModel(model, provider=OpenAIProvider(openai_client=client))

    def an(flow, model, fail=None):
        client = anthropic.AsyncAnthropic(base_url=anthropic_base_url(flow, fail), api_key="sk-ant-fake-harness",
                                          max_retries=0)
        return AnthropicModel(model, provider=AnthropicProvider(anthropic_client=client))

    def weather_agent(model):
        agent = Agent(model, name="weather_agent")

        @agent.tool_plain
        def get_weather_tool(city: str) -> str:
            """Current weather for a city."""
            return get_weather(city)
        return agent

    def run(model, prompt="Say hello."):
        return Agent(model, name="hello_agent").run_sync(prompt).output

    def run_stream(model):
        async def go():
            async with Agent(model, name="stream_agent").run_stream("Stream a hello.") as r:
                return await r.get_output()
        return asyncio.run(go())

    flows = {
        "chat": lambda: run(oa("chat", OPENAI_CHAT)),
        "reasoning": lambda: run(oa("reasoning", OPENAI_REASONING)),
        "stream": lambda: run_stream(oa("stream", OPENAI_STREAM)),
        "tool": lambda: weather_agent(oa("tool", OPENAI_CHAT)).run_sync("Weather in Paris?").output,
        "error": lambda: run(oa("error", OPENAI_CHAT, fail=429)),
        "anthropic_chat": lambda: run(an("anthropic_chat", ANTHROPIC_CHAT)),
        "anthropic_stream": lambda: run_stream(an("anthropic_stream", ANTHROPIC_STREAM)),
        "anthropic_tool": lambda: weather_agent(an("anthropic_tool", ANTHROPIC_CHAT)).run_sync(
            "Weather in Paris?").output,
        "anthropic_error": lambda: run(an("anthropic_error", ANTHROPIC_CHAT, fail=529)),
    }
    runner = Runner(provider)
    for name in FLOWS:
        runner.flow(name, flows[name], expect_error=name.endswith("error"))
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
