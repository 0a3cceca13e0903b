"""langchain-openai (ChatOpenAI / OpenAIEmbeddings) + openinference-instrumentation-langchain.

Only the LangChain instrumentor is installed (no OpenAI instrumentor), so the LLM spans come from
LangChain callbacks (span kind LLM, name `ChatOpenAI`). LangChain embeddings emit no callbacks, so
openinference-langchain makes no span for OpenAIEmbeddings: the `embeddings` flow exists (HARNESS_FLOWS=embeddings
runs it) but is not in the default set, so that every ground-truth line of this client has a span.
"""
import os
import sys

from _common import (OPENAI_CHAT, OPENAI_EMBED, OPENAI_REASONING, OPENAI_STREAM, WEATHER_TOOL_OPENAI, Runner,
                     get_weather, openai_base_url, setup_tracing)

FLOWS = ("chat", "reasoning", "stream", "tool", "error")


def main() -> int:
    provider = setup_tracing()
    from openinference.instrumentation.langchain import LangChainInstrumentor
    LangChainInstrumentor().instrument(tracer_provider=provider)
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    def llm(flow, model, fail=None, **kw):
        return ChatOpenAI(model=model, base_url=openai_base_url(flow, fail), api_key="sk-fake-harness",
                          max_retries=0, **kw)

    def chat():
        return llm("chat", OPENAI_CHAT).invoke("Say hello.").content

    def reasoning():
        return llm("reasoning", OPENAI_REASONING).invoke("Think, then say hello.").content

    def stream():
        text = ""
        for chunk in llm("stream", OPENAI_STREAM, stream_usage=True).stream("Stream a hello."):
            text += chunk.content
        assert text
        return text

    def tool():
        model = llm("tool", OPENAI_CHAT).bind_tools([WEATHER_TOOL_OPENAI])
        msgs = [HumanMessage("What is the weather in Paris?")]
        ai = model.invoke(msgs)
        assert ai.tool_calls, ai
        msgs.append(ai)
        for tc in ai.tool_calls:
            msgs.append(ToolMessage(get_weather(**tc["args"]), tool_call_id=tc["id"]))
        return model.invoke(msgs).content

    def error():
        return llm("error", OPENAI_CHAT, fail=429).invoke("This one is rate limited.")

    def embeddings():
        emb = OpenAIEmbeddings(model=OPENAI_EMBED, base_url=openai_base_url("embeddings"), api_key="sk-fake-harness",
                               max_retries=0, check_embedding_ctx_length=False)
        return len(emb.embed_query("The quick brown fox."))

    runner = Runner(provider)
    fns = {"chat": chat, "reasoning": reasoning, "stream": stream, "tool": tool, "error": error,
           "embeddings": embeddings}
    for name in (FLOWS + ("embeddings",) if "embeddings" in os.environ.get("HARNESS_FLOWS", "") else FLOWS):
        runner.flow(name, fns[name], expect_error=(name == "error"))
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
