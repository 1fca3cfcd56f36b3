"""Pytest fixtures for the Gemini stand-in; `tests/conftest.py` registers them for every test.

`gemini_standin` is a started `GeminiStandIn` on its own loopback port, stopped after the test.
`sdk_client` builds a real `google.genai.Client` aimed at it, with the SDK's retries off unless a
test asks for them, so each fault reaches the caller exactly as Google would send it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import types

from tests.support.gemini import GeminiStandIn


@pytest.fixture
def gemini_standin() -> Iterator[GeminiStandIn]:
    """A running Gemini stand-in, fresh for each test."""
    with GeminiStandIn() as standin:
        yield standin


def sdk_client(
    standin: GeminiStandIn,
    *,
    api_key: str | None = None,
    api_version: str | None = "v1beta",
    timeout_ms: int | None = None,
    retry: types.HttpRetryOptions | None = None,
) -> genai.Client:
    """A real SDK client for `standin`: its key unless `api_key` says otherwise, no retries by default.

    `api_version=None` keeps the SDK's own default (`v1` in google-genai 3.x); `retry=None`
    means a single attempt.
    """
    return genai.Client(
        api_key=api_key if api_key is not None else standin.api_key,
        http_options=types.HttpOptions(
            base_url=standin.base_url,
            api_version=api_version,
            timeout=timeout_ms,
            retry_options=retry or types.HttpRetryOptions(attempts=1),
        ),
    )
