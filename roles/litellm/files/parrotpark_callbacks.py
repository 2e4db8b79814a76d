"""LiteLLM proxy callbacks of Parrotpark (the litellm role mounts this file next to config.yaml).

``waker_errors``: on demand, while the GPU is off, its route answers with the
waker's OpenAI-shaped 503 ("The model is starting, ready in about 4
minutes.") and ``Retry-After``. LiteLLM 1.102 wraps that message into its own
("litellm.ServiceUnavailableError: ... - {...}") and drops the upstream's
headers on the error path (they are kept only on the exception, as
``litellm_response_headers``). The failure hook below answers such an error
with the upstream's own error object and its ``Retry-After``, so that API
clients and LibreChat show the waker's sentence as it is. Any other error is
left to LiteLLM.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

UNAVAILABLE = 503


def upstream_error(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` that is an OpenAI error (``{"error": {"message": ...}}``), or None."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start >= 0:
        try:
            found, _end = decoder.raw_decode(text, start)
        except ValueError:
            found = None
        error = found.get("error") if isinstance(found, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error
        start = text.find("{", start + 1)
    return None


def retry_after(exception: Exception) -> str | None:
    """The upstream's Retry-After, where LiteLLM keeps it on the exception."""
    headers = getattr(exception, "litellm_response_headers", None) or {}
    for name, value in dict(headers).items():
        if str(name).lower() == "retry-after" and str(value).strip().isdigit():
            return str(value).strip()
    return None


class WakerErrors(CustomLogger):
    """Pass the upstream's 503 (message and Retry-After) to the caller as it is."""

    async def async_post_call_failure_hook(
        self, request_data: dict, original_exception: Exception, user_api_key_dict: Any, traceback_str: Any = None
    ) -> HTTPException | None:
        if getattr(original_exception, "status_code", None) != UNAVAILABLE:
            return None
        error = upstream_error(str(getattr(original_exception, "message", original_exception)))
        if error is None:
            return None
        seconds = retry_after(original_exception)
        return HTTPException(
            status_code=UNAVAILABLE,
            detail={"error": error},
            headers={"Retry-After": seconds} if seconds else None,
        )


waker_errors = WakerErrors()
