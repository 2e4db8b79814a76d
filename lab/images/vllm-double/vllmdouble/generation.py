"""The double's "model" for chat and text completions: it echoes the prompt.

Also the request fields of those APIs it reads (messages, prompt, max_tokens,
stop, tools, tool_choice) and the usage block it answers. Tokens are the double's own: words and
punctuation for prompts, words with their leading whitespace for output.
"""

from __future__ import annotations

import json
import re
import uuid

from .errors import ApiError

PROMPT_TOKEN = re.compile(r"\w+|[^\w\s]")
OUTPUT_TOKEN = re.compile(r"\s*\S+")


def count_tokens(text):
    return len(PROMPT_TOKEN.findall(text))


def split_output(text):
    """Generated "tokens": words with their leading whitespace, so that the
    concatenation of the tokens is the text."""
    return OUTPUT_TOKEN.findall(text)


def echo(model, text):
    """What the double answers to `text`."""
    return f"[vllm-double {model}] echo: {text}"


def generate(text, max_tokens, stops):
    """The double's "model": the tokens it answers, and why it stopped."""
    tokens = split_output(text)
    reason = "stop"
    if len(tokens) > max_tokens:
        tokens, reason = tokens[:max_tokens], "length"
    produced = "".join(tokens)
    cut = min((i for i in (produced.find(s) for s in stops) if i >= 0), default=-1)
    if cut >= 0:
        tokens, reason = split_output(produced[:cut]), "stop"
    return tokens, reason


def message_text(content):
    """The text of a chat message's content (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in ("text", "input_text"):
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    raise ApiError(400, "messages: content must be a string or a list of content parts", param="messages")


def chat_prompt(messages):
    """(the text to echo: the last user message, the prompt's token count) of a chat request's messages."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages: a non-empty list of messages is required", param="messages")
    texts = []
    last_user = None
    for message in messages:
        if not isinstance(message, dict) or "role" not in message:
            raise ApiError(400, "messages: every message needs a role", param="messages")
        text = message_text(message.get("content"))
        texts.append(f"{message['role']}: {text}")
        if message["role"] == "user":
            last_user = text
    if last_user is None:
        last_user = message_text(messages[-1].get("content"))
    return last_user, count_tokens("\n".join(texts)) + 3 * len(messages)


AUTO_TOOLS_REFUSED = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'


def tool_call(request, last_user, auto_tools):
    """The tool call a chat request gets, or None for an answer in text, as vLLM decides it.

    vLLM's tool_choice is "auto" when the request has tools and names none
    ("none" without tools). "auto" needs the server's --enable-auto-tool-choice
    and --tool-call-parser, else the request is refused (400); with them the
    model decides, and the double, which runs no model, always answers in text.
    "required" and a named function get a call (guided decoding in vLLM, no
    parser needed): the named tool, else the first, with every required string
    parameter set to the last user message (the double's echo).
    """
    tools = request.get("tools") or []
    if not isinstance(tools, list) or not all(
        isinstance(tool, dict) and isinstance(tool.get("function"), dict) and tool["function"].get("name")
        for tool in tools
    ):
        raise ApiError(400, "tools: a list of {type: function, function: {name, parameters}}", param="tools")
    choice = request.get("tool_choice", "auto" if tools else "none")
    if choice == "none":
        return None
    if choice == "auto":
        if tools and not auto_tools:
            raise ApiError(400, AUTO_TOOLS_REFUSED)
        return None
    if not tools:
        raise ApiError(400, "When using `tool_choice`, `tools` must be set.", param="tool_choice")
    if choice == "required":
        function = tools[0]["function"]
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        named = [tool["function"] for tool in tools if tool["function"]["name"] == name]
        if not named:
            raise ApiError(400, f"Tool '{name}' has not been passed in `tools`.", param="tool_choice")
        function = named[0]
    else:
        raise ApiError(400, "tool_choice must be none, auto, required or a named function", param="tool_choice")
    parameters = function.get("parameters") or {}
    properties = parameters.get("properties") or {}
    arguments = {
        name: last_user
        for name in parameters.get("required") or []
        if (properties.get(name) or {}).get("type") == "string"
    }
    return {
        "id": f"chatcmpl-tool-{uuid.uuid4().hex}",
        "type": "function",
        "function": {"name": function["name"], "arguments": json.dumps(arguments)},
    }


def completion_prompts(prompt):
    """The prompts of a completions request: a string, a list of strings, or one list of token ids."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        return [" ".join(map(str, prompt))]
    raise ApiError(400, "prompt must be a string, a list of strings or a list of token ids", param="prompt")


def max_tokens(request, prompt_tokens, default, max_model_len):
    """The request's max_completion_tokens or max_tokens (else default, else what the context leaves)."""
    value = request.get("max_completion_tokens")
    if value is None:
        value = request.get("max_tokens")
    if value is None:
        value = default if default is not None else max_model_len - prompt_tokens
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, "max_tokens must be an integer", param="max_tokens")
    if value < 1:
        raise ApiError(400, f"max_tokens must be at least 1, got {value}.", param="max_tokens")
    if prompt_tokens + value > max_model_len:
        raise ApiError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, you requested "
            f"{prompt_tokens + value} tokens ({prompt_tokens} in the messages, {value} in the completion). "
            "Please reduce the length of the messages or completion.",
            param="max_tokens",
        )
    return value


def stops(request):
    """The request's stop strings."""
    stop = request.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return [s for s in stop if s]
    raise ApiError(400, "stop must be a string or a list of strings", param="stop")


def usage(prompt_tokens, completion_tokens):
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": None,
    }
