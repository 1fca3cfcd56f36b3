"""The Gemini stand-in, driven by the real `google-genai` SDK over loopback HTTP.

These tests pin down two things at once: that the stand-in answers like the Gemini API (so the
SDK parses its answers and raises its usual errors), and what the SDK actually puts on the wire,
which is what Gembot's Gemini client has to live with.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import urllib.error
import urllib.request

import httpx2
import numpy as np
import pytest
from google.genai import errors, types

from tests.support.gemini import EMBEDDING_SIZE, MODELS, GeminiStandIn, Prompt, bag_of_words_vector
from tests.support.gemini_fixtures import sdk_client

FLASH = "gemini-2.5-flash"
EMBEDDING = "gemini-embedding-001"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
FAST_RETRY = types.HttpRetryOptions(attempts=3, initial_delay=0.05, max_delay=0.1, jitter=0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def error_detail(error: errors.APIError, type_suffix: str) -> dict:
    return next(d for d in error.details["error"]["details"] if d["@type"].endswith(type_suffix))


# --------------------------------------------------------------------------- generateContent


def test_generate_text_echoes_and_sends_camel_case(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    response = client.models.generate_content(
        model=FLASH,
        contents="Which label fits this message?",
        config=types.GenerateContentConfig(
            system_instruction="You classify Slack messages.", temperature=0.0, max_output_tokens=200
        ),
    )

    assert response.text == "echo: Which label fits this message?"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == FLASH
    assert response.usage_metadata.prompt_token_count == 9
    sent = gemini_standin.last("generate")
    assert (sent.method, sent.path) == ("POST", f"/v1beta/models/{FLASH}:generateContent")
    assert sent.headers["x-goog-api-key"] == gemini_standin.api_key
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "contents": [{"parts": [{"text": "Which label fits this message?"}], "role": "user"}],
        "systemInstruction": {"parts": [{"text": "You classify Slack messages."}], "role": "user"},
        "generationConfig": {"temperature": 0.0, "maxOutputTokens": 200},
    }


def test_sdk_default_api_version_is_v1(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin, api_version=None)
    assert client.models.generate_content(model=FLASH, contents="hi").text == "echo: hi"
    assert gemini_standin.last().path == f"/v1/models/{FLASH}:generateContent"


def test_multi_turn_answers_the_last_user_turn(gemini_standin: GeminiStandIn) -> None:
    history = [
        types.Content(role="user", parts=[types.Part(text="first question")]),
        types.Content(role="model", parts=[types.Part(text="first answer")]),
        types.Content(role="user", parts=[types.Part(text="second question")]),
    ]
    client = sdk_client(gemini_standin)
    response = client.models.generate_content(model=FLASH, contents=history)

    assert response.text == "echo: second question"
    assert [c["role"] for c in gemini_standin.last().json["contents"]] == ["user", "model", "user"]


def test_scripted_replies_come_first_then_the_default(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    seen: list[Prompt] = []

    def shout(prompt: Prompt) -> str:
        seen.append(prompt)
        return prompt.last_user_text.upper()

    gemini_standin.reply("bug")
    gemini_standin.reply(shout)
    assert client.models.generate_content(model=FLASH, contents="one").text == "bug"
    assert client.models.generate_content(model=FLASH, contents="two").text == "TWO"
    assert client.models.generate_content(model=FLASH, contents="three").text == "echo: three"
    gemini_standin.answer_with(lambda prompt: f"{prompt.model} says {prompt.system_instruction}")
    answer = client.models.generate_content(
        model=FLASH, contents="x", config=types.GenerateContentConfig(system_instruction="hi")
    )
    assert answer.text == f"{FLASH} says hi"
    assert seen[0].model == FLASH


def test_inline_image_travels_as_base64_with_its_mime_type(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    response = client.models.generate_content(
        model=FLASH,
        contents=[types.Part.from_bytes(data=PNG, mime_type="image/png"), "What is in this picture?"],
    )

    digest = hashlib.sha256(PNG).hexdigest()[:12]
    assert (
        response.text == f"echo: What is in this picture? [image image/png {len(PNG)} bytes sha256:{digest}]"
    )
    part = gemini_standin.last().json["contents"][0]["parts"][0]
    # google-genai 3.x writes the blob's inner fields in snake_case; the API accepts both spellings.
    assert part == {"inlineData": {"data": base64.b64encode(PNG).decode(), "mime_type": "image/png"}}


def test_json_mode_answers_json(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    response = client.models.generate_content(
        model=FLASH,
        contents="label?",
        config=types.GenerateContentConfig(response_mime_type="application/json"),
    )
    assert json.loads(response.text) == {"echo": "label?", "media": []}
    assert gemini_standin.last().json["generationConfig"] == {"responseMimeType": "application/json"}


def test_streaming_arrives_in_pieces(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.reply("one two three four")
    client = sdk_client(gemini_standin)
    chunks = list(client.models.generate_content_stream(model=FLASH, contents="go"))

    assert len(chunks) == 2
    assert "".join(c.text for c in chunks) == "one two three four"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert gemini_standin.last().query == {"alt": ["sse"]}


def test_wrong_api_key_is_refused_like_google(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin, api_key="not-the-key")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=FLASH, contents="x")

    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert caught.value.message == "API key not valid. Please pass a valid API key."
    assert error_detail(caught.value, "ErrorInfo")["reason"] == "API_KEY_INVALID"


def test_missing_api_key_is_forbidden(gemini_standin: GeminiStandIn) -> None:
    request = urllib.request.Request(f"{gemini_standin.base_url}/v1beta/models", method="GET")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 403
    assert json.loads(caught.value.read())["error"]["status"] == "PERMISSION_DENIED"


def test_unknown_model_and_wrong_method_are_not_found(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    with pytest.raises(errors.ClientError) as unknown:
        client.models.generate_content(model="gemini-9-ultra", contents="x")
    with pytest.raises(errors.ClientError) as wrong:
        client.models.embed_content(model=FLASH, contents=["x"])

    assert (unknown.value.code, unknown.value.status) == (404, "NOT_FOUND")
    assert "not supported for batchEmbedContents" in wrong.value.message


# --------------------------------------------------------------------------- embeddings


def test_embed_sends_one_batch_with_task_type_and_dimensionality(gemini_standin: GeminiStandIn) -> None:
    texts = ["the printer is jammed again", "printer jammed on floor two", "lunch menu for friday"]
    client = sdk_client(gemini_standin)
    response = client.models.embed_content(
        model=EMBEDDING,
        contents=texts,
        config=types.EmbedContentConfig(task_type="CLASSIFICATION", output_dimensionality=768),
    )

    sent = gemini_standin.last("embed")
    assert sent.path == f"/v1beta/models/{EMBEDDING}:batchEmbedContents"
    assert [r["taskType"] for r in sent.json["requests"]] == ["CLASSIFICATION"] * 3
    assert [r["outputDimensionality"] for r in sent.json["requests"]] == [768] * 3
    assert [r["model"] for r in sent.json["requests"]] == [f"models/{EMBEDDING}"] * 3
    assert gemini_standin.embedded_texts() == texts
    assert gemini_standin.embed_batch_sizes() == [3]
    vectors = np.array([e.values for e in response.embeddings])
    assert vectors.shape == (3, 768)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3
    # Only the full-size vector comes normalised; a truncated one is just its prefix.
    assert np.linalg.norm(vectors[0]) < 0.99
    full = bag_of_words_vector(texts[0], task_type="CLASSIFICATION")
    assert np.linalg.norm(full) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(vectors[0], full[:768], atol=1e-6)


def test_embed_full_size_and_task_types_differ(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    query = client.models.embed_content(
        model=EMBEDDING, contents=["reset my password"], config={"task_type": "RETRIEVAL_QUERY"}
    )
    again = client.models.embed_content(
        model=EMBEDDING, contents=["reset my password"], config={"task_type": "RETRIEVAL_QUERY"}
    )
    document = client.models.embed_content(
        model=EMBEDDING, contents=["reset my password"], config={"task_type": "RETRIEVAL_DOCUMENT"}
    )

    assert len(query.embeddings[0].values) == EMBEDDING_SIZE
    assert query.embeddings[0].values == again.embeddings[0].values
    assert query.embeddings[0].values != document.embeddings[0].values
    assert "outputDimensionality" not in gemini_standin.requests("embed")[0].json["requests"][0]


def test_more_than_100_texts_in_one_call_is_a_400(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    with pytest.raises(errors.ClientError) as caught:
        client.models.embed_content(model=EMBEDDING, contents=[f"text {i}" for i in range(101)])

    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert "at most 100 requests can be in one batch" in caught.value.message
    assert gemini_standin.embed_batch_sizes() == [101]  # the SDK does not split batches itself


# --------------------------------------------------------------------------- models


def test_models_list_pages_through_everything(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    names = [m.name for m in client.models.list(config={"page_size": 2})]

    assert names == [f"models/{m.name}" for m in MODELS]
    assert {"models/gemini-2.5-flash", "models/gemini-2.5-pro", "models/gemini-embedding-001"} <= set(names)
    pages = gemini_standin.requests("models")
    assert len(pages) == -(-len(MODELS) // 2)
    assert all(p.query["pageSize"] == ["2"] for p in pages)
    assert "pageToken" not in pages[0].query and all("pageToken" in p.query for p in pages[1:])
    model = client.models.get(model=EMBEDDING)
    assert (model.input_token_limit, model.supported_actions[0]) == (2048, "embedContent")
    assert gemini_standin.last().path == f"/v1beta/models/{EMBEDDING}"


# --------------------------------------------------------------------------- files


def test_upload_then_poll_until_active_then_use_in_a_prompt(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.processing(gets=2)
    client = sdk_client(gemini_standin)
    uploaded = client.files.upload(
        file=io.BytesIO(PNG), config={"mime_type": "image/png", "display_name": "p"}
    )

    assert uploaded.state == types.FileState.PROCESSING
    assert (uploaded.size_bytes, uploaded.mime_type, uploaded.display_name) == (len(PNG), "image/png", "p")
    assert gemini_standin.file(uploaded.name).data == PNG
    with pytest.raises(errors.ClientError) as early:
        client.models.generate_content(
            model=FLASH, contents=[types.Part.from_uri(file_uri=uploaded.uri, mime_type="image/png"), "x"]
        )
    assert early.value.status == "FAILED_PRECONDITION"
    states = [client.files.get(name=uploaded.name).state for _ in range(3)]
    assert states == [types.FileState.PROCESSING, types.FileState.PROCESSING, types.FileState.ACTIVE]

    response = client.models.generate_content(
        model=FLASH, contents=[types.Part.from_uri(file_uri=uploaded.uri, mime_type="image/png"), "and this?"]
    )
    assert response.text.startswith(f"echo: and this? [image image/png {len(PNG)} bytes sha256:")
    start, chunk = gemini_standin.requests("files")[:2]
    assert start.path == "/upload/v1beta/files"
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-command"] == "start"
    assert start.headers["x-goog-upload-header-content-length"] == str(len(PNG))
    assert chunk.headers["x-goog-upload-command"] == "upload, finalize"
    assert "x-goog-api-key" not in chunk.headers  # the upload URL is the credential
    assert chunk.body == PNG


def test_processing_can_fail(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.processing(gets=0)
    gemini_standin.fail_processing()
    client = sdk_client(gemini_standin)
    uploaded = client.files.upload(file=io.BytesIO(b"%PDF-1.4"), config={"mime_type": "application/pdf"})

    assert uploaded.state == types.FileState.FAILED
    assert client.files.get(name=uploaded.name).error.message
    with pytest.raises(errors.ClientError) as missing:
        client.files.get(name="files/doesnotexist")
    assert missing.value.code == 403


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(("quota", "quota_id"), [("per_minute", "PerMinute"), ("per_day", "PerDay")])
def test_quota_429_surfaces_with_its_details(
    gemini_standin: GeminiStandIn, quota: str, quota_id: str
) -> None:
    gemini_standin.fail_next(status=429, quota=quota, retry_delay="2s")
    client = sdk_client(gemini_standin)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=FLASH, contents="x")

    error = caught.value
    assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
    violation = error_detail(error, "QuotaFailure")["violations"][0]
    assert quota_id in violation["quotaId"] and violation["quotaId"].startswith("GenerateRequests")
    assert error_detail(error, "RetryInfo")["retryDelay"] == "2s"


def test_503_is_a_server_error(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(status=503)
    client = sdk_client(gemini_standin)
    with pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(model=FLASH, contents="x")
    assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")


def test_sdk_retry_gets_past_a_503(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(status=503)
    client = sdk_client(gemini_standin, retry=FAST_RETRY)
    response = client.models.generate_content(model=FLASH, contents="x")

    assert response.text == "echo: x"
    assert [r.status for r in gemini_standin.requests()] == [503, 200]


def test_sdk_retry_ignores_retry_info_on_429(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(status=429, retry_delay="30s")
    started = time.monotonic()
    client = sdk_client(gemini_standin, retry=FAST_RETRY)
    client.models.generate_content(model=FLASH, contents="x")

    assert time.monotonic() - started < 5
    assert [r.status for r in gemini_standin.requests()] == [429, 200]


def test_faults_can_be_scoped_to_one_kind(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(status=500, on="embed")
    client = sdk_client(gemini_standin)
    assert client.models.generate_content(model=FLASH, contents="fine").text == "echo: fine"
    with pytest.raises(errors.ServerError):
        client.models.embed_content(model=EMBEDDING, contents=["boom"])


def test_blocked_prompt_has_feedback_and_no_candidates(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.block_prompt("PROHIBITED_CONTENT")
    client = sdk_client(gemini_standin)
    response = client.models.generate_content(model=FLASH, contents="x")

    assert response.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT
    assert response.candidates is None
    assert response.text is None


@pytest.mark.parametrize(("reason", "text"), [("SAFETY", None), ("RECITATION", None), ("MAX_TOKENS", "par")])
def test_finish_reasons_without_a_full_answer(
    gemini_standin: GeminiStandIn, reason: str, text: str | None
) -> None:
    gemini_standin.finish(reason, text=text)
    client = sdk_client(gemini_standin)
    response = client.models.generate_content(model=FLASH, contents="x")

    assert response.candidates[0].finish_reason == types.FinishReason(reason)
    assert response.text == text


def test_malformed_json_escapes_the_sdk_as_a_value_error(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.malformed_json_next()
    gemini_standin.malformed_json_next(status=502)
    client = sdk_client(gemini_standin)
    with pytest.raises(json.JSONDecodeError):
        client.models.generate_content(model=FLASH, contents="x")
    with pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(model=FLASH, contents="x")
    assert (caught.value.code, caught.value.status) == (502, "Bad Gateway")


def test_latency_past_the_client_timeout_raises_the_transport_timeout(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.latency(2.0, on="generate")
    client = sdk_client(gemini_standin, timeout_ms=150)
    started = time.monotonic()
    with pytest.raises(httpx2.TimeoutException):
        client.models.generate_content(model=FLASH, contents="x")

    assert time.monotonic() - started < 1.5
    assert gemini_standin.last().headers["x-server-timeout"] == "1"
    assert client.models.list(config={"page_size": 50}).page  # other kinds are not held


def test_sdk_retry_also_retries_timeouts(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.latency(1.0)
    client = sdk_client(
        gemini_standin, timeout_ms=100, retry=types.HttpRetryOptions(attempts=2, initial_delay=0.05, jitter=0)
    )
    with pytest.raises(httpx2.ReadTimeout):
        client.models.embed_content(model=EMBEDDING, contents="x")
    assert len(gemini_standin.requests("embed")) == 2


def test_quota_enforcer_uses_a_sliding_window(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.quota(rpm=2, window=0.5, on="generate")
    client = sdk_client(gemini_standin)
    client.models.generate_content(model=FLASH, contents="1")
    client.models.generate_content(model=FLASH, contents="2")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=FLASH, contents="3")
    assert caught.value.code == 429
    assert "PerMinute" in error_detail(caught.value, "QuotaFailure")["violations"][0]["quotaId"]
    assert error_detail(caught.value, "RetryInfo")["retryDelay"] == "1s"
    client.models.generate_content(model="gemini-2.5-pro", contents="other model, other window")

    time.sleep(0.55)
    assert client.models.generate_content(model=FLASH, contents="4").text == "echo: 4"
    assert [r.status for r in gemini_standin.requests("generate")] == [200, 200, 429, 200, 200]


def test_stop_does_not_wait_for_held_requests() -> None:
    standin = GeminiStandIn().start()
    standin.latency(30)
    client = sdk_client(standin, timeout_ms=100)
    with pytest.raises(httpx2.TimeoutException):
        client.models.generate_content(model=FLASH, contents="x")
    started = time.monotonic()
    standin.stop()
    assert time.monotonic() - started < 1
