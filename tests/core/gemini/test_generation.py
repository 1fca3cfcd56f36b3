"""Generation through the real google-genai SDK against the Gemini stand-in: the wire and every failure."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.gemini.client import GeminiClient
from core.gemini.failures import (
    AnswerStopped,
    BadResponse,
    EmptyAnswer,
    GeminiNotConfigured,
    GeminiRejected,
    GeminiUnavailable,
    ModelNotFound,
    PromptBlocked,
    QuotaExhausted,
    RateLimited,
)
from core.gemini.generation import Turn, generate
from core.gemini.images import prepare_image
from core.settings import Settings
from tests.support.gemini import GeminiStandIn
from tests.support.gemini_support import gemini_client, image_bytes

NO_DOTENV = Path("/nonexistent/.env")


def statuses(standin: GeminiStandIn, kind: str = "generate") -> list[int]:
    return [r.status for r in standin.requests(kind)]


# --------------------------------------------------------------------------- the wire


def test_prompt_goes_to_the_default_model_with_the_key_header(gemini_standin: GeminiStandIn) -> None:
    answer = generate(gemini_client(gemini_standin), "Which label fits this message?")

    assert answer.text == "echo: Which label fits this message?"
    assert (answer.model, answer.finish_reason, answer.truncated) == ("gemini-2.5-flash", "STOP", False)
    assert answer.usage.prompt == 5 and answer.usage.answer == 6 and answer.usage.total == 11
    sent = gemini_standin.last()
    assert (sent.method, sent.path) == ("POST", "/v1beta/models/gemini-2.5-flash:generateContent")
    assert sent.headers["x-goog-api-key"] == gemini_standin.api_key
    assert "key" not in sent.query  # the key travels in the header, never in a URL that gets logged
    assert sent.json["contents"] == [{"parts": [{"text": "Which label fits this message?"}], "role": "user"}]
    assert "systemInstruction" not in sent.json


def test_settings_from_the_environment_reach_the_base_url(gemini_standin: GeminiStandIn) -> None:
    for key_name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        settings = Settings.from_env(
            {
                key_name: gemini_standin.api_key,
                "GEMINI_BASE_URL": gemini_standin.base_url,
                "GEMBOT_GENERATION_MODEL": "gemini-2.5-flash-lite",
            },
            dotenv=NO_DOTENV,
        )
        assert generate(GeminiClient.from_settings(settings), "hi").text == "echo: hi"
        assert gemini_standin.last().path == "/v1beta/models/gemini-2.5-flash-lite:generateContent"
        assert gemini_standin.last().api_key == gemini_standin.api_key


def test_model_by_name_and_system_instruction(gemini_standin: GeminiStandIn) -> None:
    answer = generate(
        gemini_client(gemini_standin),
        "Summarise the thread.",
        model="gemini-2.5-pro",
        system_instruction="You answer in one sentence.",
        max_output_tokens=300,
        temperature=0.2,
    )

    assert answer.model == "gemini-2.5-pro"
    sent = gemini_standin.last()
    assert sent.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert sent.json["systemInstruction"]["parts"] == [{"text": "You answer in one sentence."}]
    assert sent.json["generationConfig"] == {"maxOutputTokens": 300, "temperature": 0.2}


def test_a_conversation_sends_every_turn_in_order(gemini_standin: GeminiStandIn) -> None:
    png = prepare_image(image_bytes("PNG"))
    turns = [
        Turn("user", "What is in this picture?", images=(png,)),
        Turn("model", "A gradient."),
        Turn("user", "Which colour dominates?"),
    ]
    answer = generate(gemini_client(gemini_standin), turns)

    assert answer.text == "echo: Which colour dominates?"
    contents = gemini_standin.last().json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert [p.get("text") for c in contents for p in c["parts"]] == [
        None,
        "What is in this picture?",
        "A gradient.",
        "Which colour dominates?",
    ]
    assert contents[0]["parts"][0]["inlineData"]["mime_type"] == "image/png"


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("   ", "the prompt is empty"),
        ([], "the conversation is empty"),
        ([Turn("user", "hi"), Turn("model", "hello")], "must end with the user's turn"),
        ([Turn("user", "")], "turn 1 is empty"),
    ],
)
def test_bad_prompts_are_refused_before_any_request(
    gemini_standin: GeminiStandIn, prompt: str | list[Turn], words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        generate(gemini_client(gemini_standin), prompt)
    assert gemini_standin.requests() == []


# --------------------------------------------------------------------------- keys


def test_no_key_is_not_configured() -> None:
    settings = Settings.from_env({"GEMINI_BASE_URL": "http://127.0.0.1:9"}, dotenv=NO_DOTENV)
    with pytest.raises(GeminiNotConfigured, match="GEMINI_API_KEY"):
        GeminiClient.from_settings(settings)


def test_a_wrong_key_is_rejected_once_without_echoing_it(gemini_standin: GeminiStandIn) -> None:
    wrong = "AIzaSy-wrong-key-do-not-print-0123"
    client = GeminiClient.from_settings(
        Settings.from_env(
            {
                "GEMINI_API_KEY": wrong,
                "GEMINI_BASE_URL": gemini_standin.base_url,
                "GEMBOT_GEMINI_RETRY_DELAY": "0",
            },
            dotenv=NO_DOTENV,
        )
    )
    with pytest.raises(GeminiRejected) as caught:
        generate(client, "x")

    assert "GEMINI_API_KEY" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert wrong not in repr(client)
    assert statuses(gemini_standin) == [400]


def test_google_text_passed_on_has_the_key_blanked(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(status=400, message=f"Request with key {gemini_standin.api_key} is malformed.")
    with pytest.raises(GeminiRejected) as caught:
        generate(gemini_client(gemini_standin), "x")

    assert "Request with key *** is malformed." in str(caught.value)
    assert gemini_standin.api_key not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "words"), [(400, "refused the request"), (401, "credentials"), (403, "permission")]
)
def test_client_errors_are_not_retried(gemini_standin: GeminiStandIn, status: int, words: str) -> None:
    gemini_standin.fail_next(status=status)
    with pytest.raises(GeminiRejected, match=words) as caught:
        generate(gemini_client(gemini_standin), "x")
    assert caught.value.code == status
    assert statuses(gemini_standin) == [status]


def test_an_unknown_model_is_named(gemini_standin: GeminiStandIn) -> None:
    with pytest.raises(ModelNotFound, match=r"'gemini-9-ultra'.*gembot models"):
        generate(gemini_client(gemini_standin), "x", model="gemini-9-ultra")
    assert statuses(gemini_standin) == [404]


# --------------------------------------------------------------------------- quota


def test_per_minute_429_waits_its_retry_delay_then_succeeds(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(status=429, quota="per_minute", retry_delay="0.4s")
    answer = generate(gemini_client(gemini_standin, gemini_retry_delay=0.0), "x")

    assert answer.text == "echo: x"
    first, second = gemini_standin.requests("generate")
    assert (first.status, second.status) == (429, 200)
    # RetryInfo said 0.4 s: not the SDK's backoff (0 s here), and not much more than asked.
    assert 0.4 <= second.timestamp - first.timestamp < 0.8


def test_per_minute_429_without_retry_info_backs_off(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(2, status=429, retry_delay=None)
    answer = generate(gemini_client(gemini_standin, gemini_retry_delay=0.1), "x")

    assert answer.text == "echo: x"
    first, second, third = gemini_standin.requests("generate")
    assert second.timestamp - first.timestamp >= 0.1
    assert third.timestamp - second.timestamp >= 0.2


def test_per_minute_429_gives_up_after_the_retries(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(10, status=429, retry_delay="0.01s")
    with pytest.raises(RateLimited, match="per-minute quota is exceeded even after 3 attempts") as caught:
        generate(gemini_client(gemini_standin, gemini_retries=2), "x")
    assert caught.value.code == 429
    assert statuses(gemini_standin) == [429, 429, 429]


def test_a_retry_delay_longer_than_allowed_fails_at_once(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(status=429, retry_delay="45s")
    started = time.monotonic()
    with pytest.raises(RateLimited, match="try again in 45 s"):
        generate(gemini_client(gemini_standin, gemini_max_retry_wait=10.0), "x")
    assert time.monotonic() - started < 2
    assert statuses(gemini_standin) == [429]


def test_per_day_429_fails_at_once(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(status=429, quota="per_day", retry_delay="30s")
    started = time.monotonic()
    with pytest.raises(QuotaExhausted, match="the daily Gemini quota is used up"):
        generate(gemini_client(gemini_standin), "x")
    assert time.monotonic() - started < 2
    assert statuses(gemini_standin) == [429]


# --------------------------------------------------------------------------- server faults


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_then_succeed(gemini_standin: GeminiStandIn, status: int) -> None:
    gemini_standin.fail_next(2, status=status)
    assert generate(gemini_client(gemini_standin, gemini_retries=2), "x").text == "echo: x"
    assert statuses(gemini_standin) == [status, status, 200]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_a_bounded_number_of_times(
    gemini_standin: GeminiStandIn, status: int
) -> None:
    gemini_standin.fail_next(10, status=status)
    with pytest.raises(GeminiUnavailable, match=f"Gemini is unavailable right now \\({status}.*3 attempts"):
        generate(gemini_client(gemini_standin, gemini_retries=2), "x")
    assert statuses(gemini_standin) == [status] * 3


def test_a_timeout_is_retried_then_reported(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.latency(3.0, on="generate")
    started = time.monotonic()
    with pytest.raises(
        GeminiUnavailable, match=r"did not answer within 0.2 s \(2 attempts\).*GEMBOT_GEMINI_TIMEOUT"
    ):
        generate(gemini_client(gemini_standin, gemini_timeout=0.2, gemini_retries=1), "x")
    assert time.monotonic() - started < 2
    assert len(gemini_standin.requests("generate")) == 2


def test_no_server_is_reported_as_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings.from_env(
        {
            "GEMINI_API_KEY": "k",
            "GEMINI_BASE_URL": f"http://127.0.0.1:{port}",
            "GEMBOT_GEMINI_RETRY_DELAY": "0",
        },
        dotenv=NO_DOTENV,
    )
    with pytest.raises(GeminiUnavailable, match=f"could not reach Gemini at http://127.0.0.1:{port}"):
        generate(GeminiClient.from_settings(settings), "x")


def test_malformed_json_is_a_clear_error(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.malformed_json_next()
    with pytest.raises(BadResponse, match="not valid JSON"):
        generate(gemini_client(gemini_standin), "x")
    assert statuses(gemini_standin) == [200]


# --------------------------------------------------------------------------- answers that are not answers


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("SAFETY", "it was judged unsafe"),
        ("PROHIBITED_CONTENT", "it touches on prohibited content"),
        ("OTHER", "of a policy Gemini did not name"),
    ],
)
def test_a_blocked_prompt_says_why(gemini_standin: GeminiStandIn, reason: str, words: str) -> None:
    gemini_standin.block_prompt(reason)
    with pytest.raises(PromptBlocked, match=f"refused the prompt because {words} \\({reason}") as caught:
        generate(gemini_client(gemini_standin), "x")
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("reason", "text", "words"),
    [
        ("SAFETY", None, "judged unsafe"),
        ("SAFETY", "the start of a", "judged unsafe"),
        ("RECITATION", None, "published material"),
        ("PROHIBITED_CONTENT", None, "prohibited content"),
        ("SPII", None, "personal information"),
    ],
)
def test_a_stopped_answer_says_why(
    gemini_standin: GeminiStandIn, reason: str, text: str | None, words: str
) -> None:
    gemini_standin.finish(reason, text=text)
    with pytest.raises(
        AnswerStopped, match=f"stopped its answer because .*{words}.*\\({reason}\\)"
    ) as caught:
        generate(gemini_client(gemini_standin), "x")
    assert caught.value.reason == reason


def test_max_tokens_with_no_text_is_an_empty_answer(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.finish("MAX_TOKENS")
    with pytest.raises(EmptyAnswer, match="output limit before writing any answer"):
        generate(gemini_client(gemini_standin), "x")


def test_max_tokens_with_text_is_a_truncated_answer(gemini_standin: GeminiStandIn) -> None:
    answer = generate(gemini_client(gemini_standin), "one two three four five", max_output_tokens=3)
    assert (answer.text, answer.finish_reason, answer.truncated) == ("echo: one two", "MAX_TOKENS", True)


def test_an_empty_text_is_never_handed_back(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.reply("   ")
    with pytest.raises(EmptyAnswer, match="empty answer"):
        generate(gemini_client(gemini_standin), "x")


def test_thoughts_are_not_part_of_the_answer(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.reply(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"text": "Let me think.", "thought": True}, {"text": "Forty-two."}],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "thoughtsTokenCount": 3},
        }
    )
    answer = generate(gemini_client(gemini_standin), "x")
    assert answer.text == "Forty-two."
    assert answer.usage.thinking == 3
