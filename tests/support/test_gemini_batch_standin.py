"""The stand-in's Batch API, driven by the real `google-genai` SDK over loopback HTTP: the wire
format of a batch job (a long-running operation), the states it goes through, its inline and file
results, and the knobs that end it otherwise."""

from __future__ import annotations

import io
import json
import urllib.request
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from tests.support.gemini import GeminiStandIn
from tests.support.gemini_fixtures import sdk_client

FLASH = "gemini-2.5-flash"


def inline(text: str, key: str, **config: Any) -> types.InlinedRequest:
    return types.InlinedRequest(
        contents=text, metadata={"key": key}, config=types.GenerateContentConfig(**config) if config else None
    )


def create(client: genai.Client, *requests: types.InlinedRequest) -> types.BatchJob:
    return client.batches.create(model=FLASH, src=list(requests), config={"display_name": "standin test"})


def poll(client: genai.Client, job: types.BatchJob, times: int) -> list[str]:
    """The states `times` GETs read, in order."""
    seen = []
    for _ in range(times):
        job = client.batches.get(name=job.name or "")
        seen.append(str(job.state.value if job.state else None))
    return seen


def raw_get(standin: GeminiStandIn, path: str) -> dict[str, Any]:
    request = urllib.request.Request(standin.base_url + path, headers={"x-goog-api-key": standin.api_key})
    with urllib.request.urlopen(request) as answer:
        return dict(json.loads(answer.read()))


def upload_jsonl(client: genai.Client, lines: list[dict[str, Any]]) -> str:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    file = client.files.upload(file=io.BytesIO(data), config={"mime_type": "application/jsonl"})
    while file.state == types.FileState.PROCESSING:
        file = client.files.get(name=file.name or "")
    return file.name or ""


def test_an_inline_batch_goes_pending_running_succeeded_and_answers_each_request(
    gemini_standin: GeminiStandIn,
) -> None:
    client = sdk_client(gemini_standin)
    job = create(client, inline("first question", "a", system_instruction="be brief"), inline("second", "b"))

    assert job.state == types.JobState.JOB_STATE_PENDING and job.name and job.name.startswith("batches/")
    sent = gemini_standin.last("batch", action="batches.create")
    assert (sent.method, sent.path) == ("POST", f"/v1beta/models/{FLASH}:batchGenerateContent")
    assert sent.json["batch"]["displayName"] == "standin test"
    first = sent.json["batch"]["inputConfig"]["requests"]["requests"][0]
    assert first["metadata"] == {"key": "a"}
    assert first["request"]["systemInstruction"]["parts"] == [{"text": "be brief"}]
    assert poll(client, job, 3) == ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]

    done = client.batches.get(name=job.name)
    assert done.dest is not None and done.dest.inlined_responses is not None
    answers = {(r.metadata or {})["key"]: r.response for r in done.dest.inlined_responses}
    assert answers["a"] is not None and answers["a"].text == "echo: first question"
    assert answers["b"] is not None and answers["b"].text == "echo: second"
    assert answers["a"].usage_metadata is not None and answers["a"].usage_metadata.prompt_token_count == 4
    assert done.end_time is not None and done.create_time is not None
    assert [key for key, _ in gemini_standin.batch(job.name).requests] == ["a", "b"]


def test_the_wire_shows_a_long_running_operation_with_the_api_state_names(
    gemini_standin: GeminiStandIn,
) -> None:
    client = sdk_client(gemini_standin)
    gemini_standin.batch_progress(pending_gets=0, running_gets=1)
    job = create(client, inline("hello", "k"))
    batch_id = (job.name or "").removeprefix("batches/")

    running = raw_get(gemini_standin, f"/v1beta/batches/{batch_id}")
    assert running["metadata"]["state"] == "BATCH_STATE_RUNNING" and "done" not in running
    assert running["metadata"]["batchStats"] == {"requestCount": "1", "pendingRequestCount": "1"}
    done = raw_get(gemini_standin, f"/v1beta/batches/{batch_id}")
    assert done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED" and done["done"] is True
    assert done["response"]["inlinedResponses"] == done["metadata"]["output"]["inlinedResponses"]


def test_each_request_is_answered_as_generate_would_answer_it(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    gemini_standin.batch_progress(pending_gets=0, running_gets=0)
    gemini_standin.reply("scripted")
    gemini_standin.block_prompt("SAFETY")
    gemini_standin.finish("RECITATION")
    gemini_standin.fail_batch_requests(
        keys=["by-key"], code=400, message="Request contains an invalid argument."
    )
    gemini_standin.fail_batch_requests(indexes=[4], code=500, message="Internal error encountered.")
    job = create(
        client,
        # Faults come before scripted replies, as for direct calls: the first two requests
        # take the block and the finish, the third the scripted reply.
        inline("one", "blocked"),
        inline("two", "stopped"),
        inline("three", "scripted"),
        inline("four", "by-key"),
        inline("five", "by-index"),
        inline("six words cut short here", "cut", max_output_tokens=2),
    )

    results = client.batches.get(name=job.name or "").dest
    assert results is not None and results.inlined_responses is not None
    by_key = {(r.metadata or {})["key"]: r for r in results.inlined_responses}
    assert by_key["scripted"].response is not None and by_key["scripted"].response.text == "scripted"
    blocked = by_key["blocked"].response
    assert blocked is not None and blocked.prompt_feedback is not None
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY and not blocked.candidates
    stopped = by_key["stopped"].response
    assert stopped is not None and stopped.candidates
    assert stopped.candidates[0].finish_reason == types.FinishReason.RECITATION
    assert by_key["by-key"].error == types.JobError(code=400, message="Request contains an invalid argument.")
    assert by_key["by-key"].response is None
    assert by_key["by-index"].error is not None and by_key["by-index"].error.code == 500
    cut = by_key["cut"].response
    assert (
        cut is not None
        and cut.candidates
        and cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    )
    stats = raw_get(gemini_standin, "/v1beta/" + (job.name or ""))["metadata"]["batchStats"]
    assert stats == {"requestCount": "6", "successfulRequestCount": "4", "failedRequestCount": "2"}


def test_a_file_batch_writes_a_jsonl_results_file_that_downloads(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    gemini_standin.fail_batch_requests(keys=["bad"], code=400, message="no")
    source = upload_jsonl(
        client,
        [
            {"key": "good", "request": {"contents": [{"role": "user", "parts": [{"text": "from a file"}]}]}},
            {"key": "bad", "request": {"contents": [{"role": "user", "parts": [{"text": "fails"}]}]}},
        ],
    )
    job = client.batches.create(model=FLASH, src=source, config={"display_name": "file batch"})
    assert gemini_standin.last("batch").json["batch"]["inputConfig"] == {"fileName": source}
    assert poll(client, job, 3)[-1] == "JOB_STATE_SUCCEEDED"

    done = client.batches.get(name=job.name or "")
    assert done.dest is not None and done.dest.file_name and done.dest.inlined_responses is None
    lines = [json.loads(line) for line in client.files.download(file=done.dest.file_name).splitlines()]
    assert [line["key"] for line in lines] == ["good", "bad"]
    assert lines[0]["response"]["candidates"][0]["content"]["parts"] == [{"text": "echo: from a file"}]
    assert lines[1] == {"key": "bad", "error": {"code": 400, "message": "no"}}
    assert gemini_standin.last("files").path.endswith(":download")
    assert gemini_standin.file(done.dest.file_name).source == "GENERATED"


def test_an_uploaded_file_cannot_be_downloaded(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    source = upload_jsonl(client, [{"key": "k", "request": {"contents": [{"parts": [{"text": "x"}]}]}}])
    with pytest.raises(errors.ClientError) as raised:
        client.files.download(file=source)
    assert raised.value.code == 400


@pytest.mark.parametrize("ending", ["FAILED", "EXPIRED", "CANCELLED"])
def test_a_batch_can_be_made_to_end_without_results(gemini_standin: GeminiStandIn, ending: str) -> None:
    client = sdk_client(gemini_standin)
    gemini_standin.end_batches(ending)
    job = create(client, inline("never answered", "k"))
    assert poll(client, job, 3)[-1] == f"JOB_STATE_{ending}"
    assert client.batches.get(name=job.name or "").dest is None
    wire = raw_get(gemini_standin, "/v1beta/" + (job.name or ""))
    assert wire["done"] is True and ("error" in wire) == (ending == "FAILED")
    # The knob was for one batch: the next one succeeds.
    assert poll(client, create(client, inline("again", "k")), 3)[-1] == "JOB_STATE_SUCCEEDED"


def test_a_batch_kept_pending_stays_so_until_cancelled(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    gemini_standin.keep_batches_pending()
    job = create(client, inline("waits", "k"))
    assert set(poll(client, job, 6)) == {"JOB_STATE_PENDING"}

    client.batches.cancel(name=job.name or "")
    assert poll(client, job, 1) == ["JOB_STATE_CANCELLED"]
    assert gemini_standin.last("batch", action="batches.cancel").path.endswith(":cancel")


def test_inline_results_can_be_made_to_come_back_without_their_keys(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    gemini_standin.batch_progress(pending_gets=0, running_gets=0)
    gemini_standin.omit_batch_keys()
    job = create(client, inline("first", "a"), inline("second", "b"))

    dest = client.batches.get(name=job.name or "").dest
    assert dest is not None and dest.inlined_responses is not None
    assert [(r.metadata, r.response and r.response.text) for r in dest.inlined_responses] == [
        (None, "echo: first"),
        (None, "echo: second"),
    ]


def test_batches_list_and_delete(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    first, second = create(client, inline("a", "a")), create(client, inline("b", "b"))
    assert [job.name for job in client.batches.list()] == [second.name, first.name]

    client.batches.delete(name=first.name or "")
    assert [job.name for job in client.batches.list()] == [second.name]
    with pytest.raises(errors.ClientError) as raised:
        client.batches.get(name=first.name or "")
    assert raised.value.code == 404


def test_refusals_look_like_the_api_s(gemini_standin: GeminiStandIn) -> None:
    client = sdk_client(gemini_standin)
    with pytest.raises(errors.ClientError) as missing_name:
        client.batches.create(model=FLASH, src=[inline("a", "a")])
    assert missing_name.value.code == 400
    with pytest.raises(errors.ClientError) as unknown_model:
        client.batches.create(model="no-such-model", src=[inline("a", "a")], config={"display_name": "x"})
    assert unknown_model.value.code == 404
    gemini_standin.fail_next(status=503, on="batch")
    with pytest.raises(errors.ServerError):
        create(client, inline("a", "a"))
    assert [r.status for r in gemini_standin.requests("batch")] == [400, 404, 503]
