"""Gemini's Batch API: many generation requests submitted as one job, answered within hours at
half the price, as plain values around the SDK.

`submit` sends the requests inline when they fit (Google takes up to 20 MB in the create call)
and otherwise as a JSONL file uploaded through the Files API; `status` reads where the job stands,
`results` maps each request's key to a `Reply` once it has succeeded, `cancel` gives up on it.
Each request of a batch is charged to the daily limits (`core.daily_limits`) at submission, as a
`generate` call would be; the reads that follow serve requests already paid for and are neither
charged nor refused.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import pydantic
from google.genai import types

from core import daily_limits
from core.errors import GembotError, InvalidInput
from core.gemini.client import GeminiClient
from core.gemini.failures import BadResponse, GeminiError
from core.gemini.files import upload_file
from core.gemini.generation import Options, answer_of, request_config
from core.gemini.outcomes import Reply, reply_of_answer, reply_of_failure

BatchState = Literal["pending", "running", "succeeded", "failed", "cancelled", "expired"]
BATCH_STATES: tuple[str, ...] = get_args(BatchState)
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "expired"})
#: Requests bigger than this (as JSON) go through a JSONL file: Google allows 20 MB inline, and the
#: SDK's own encoding of a request is a little bigger than ours.
INLINE_LIMIT = 16 * 1024 * 1024
JSONL_MIME_TYPE = "application/jsonl"
_ENVELOPE = 4096
_MESSAGE_LIMIT = 200
# The SDK's JobState names (it maps the wire's BATCH_STATE_* to them) as our six states.
_STATES: dict[str, BatchState] = {
    "JOB_STATE_UNSPECIFIED": "pending",
    "JOB_STATE_QUEUED": "pending",
    "JOB_STATE_PENDING": "pending",
    "JOB_STATE_PAUSED": "pending",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_UPDATING": "running",
    "JOB_STATE_CANCELLING": "running",
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}
# Fields of the SDK's GenerateContentConfig that sit beside `generationConfig` in a request.
_TOP_LEVEL = ("systemInstruction", "tools", "toolConfig", "safetySettings", "cachedContent", "labels")


@dataclass(frozen=True)
class BatchRequest:
    """One request of a batch: its `key` (unique in the batch, how its result is found) and prompt."""

    key: str
    prompt: str


@dataclass(frozen=True)
class BatchStatus:
    """Where a batch job stands: one of `BATCH_STATES`, the API's error message when it gave one
    (a line, bounded), and the job's create and update times when Gemini sent them."""

    name: str
    state: BatchState
    error: str | None = None
    created: datetime | None = None
    updated: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def _line(text: str) -> str:
    """Untrusted text from a response as one bounded line."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= _MESSAGE_LIMIT else flat[: _MESSAGE_LIMIT - 1] + "…"


def _checked(requests: Sequence[BatchRequest], options: Options) -> list[BatchRequest]:
    if not requests:
        raise InvalidInput("a batch needs at least one request")
    if options.get("images"):
        raise InvalidInput("a batch cannot carry images; run it without --batch")
    seen: set[str] = set()
    for request in requests:
        if not request.key.strip():
            raise InvalidInput("every request of a batch needs a key")
        if request.key in seen:
            raise InvalidInput(f"the key {request.key!r} is used twice in one batch")
        seen.add(request.key)
        if not request.prompt.strip():
            raise InvalidInput(f"the prompt of request {request.key!r} is empty")
    # Stripped as `generate` strips a prompt, so that a batch asks exactly what a call would.
    return [BatchRequest(r.key, r.prompt.strip()) for r in requests]


def _wire_request(prompt: str, config: types.GenerateContentConfig) -> dict[str, Any]:
    """The REST `GenerateContentRequest` for `prompt` (what a line of the JSONL file holds)."""
    settings = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    system = settings.pop("systemInstruction", None)
    if system:
        body["systemInstruction"] = {"role": "user", "parts": [{"text": system}]}
    for name in _TOP_LEVEL[1:]:
        if name in settings:
            body[name] = settings.pop(name)
    if settings:
        body["generationConfig"] = settings
    return body


def submit(
    client: GeminiClient,
    model: str,
    requests: Sequence[BatchRequest],
    *,
    options: Options,
    display_name: str,
    inline_limit: int = INLINE_LIMIT,
) -> str:
    """Submit `requests` to `model` as one batch job with the generation `options`; returns the
    job's name ("batches/...") to poll with `status`.

    The requests go inline when their JSON stays under `inline_limit` bytes, else as a JSONL
    file uploaded first. Each request is charged to the daily limits before anything is sent
    (UsageLimitReached takes nothing); InvalidInput for an empty batch, a key used twice, an
    empty prompt or images.
    """
    checked = _checked(requests, options)
    name = model.removeprefix("models/")
    config = request_config(**options)
    lines = [{"key": r.key, "request": _wire_request(r.prompt, config)} for r in checked]
    encoded = [json.dumps(line, ensure_ascii=False, separators=(",", ":")) for line in lines]
    size = _ENVELOPE + sum(len(text.encode()) + 1 for text in encoded)
    daily_limits.charge(len(checked))
    src: types.BatchJobSourceUnion
    if size <= inline_limit:
        src = [
            types.InlinedRequest(
                contents=[types.Content(role="user", parts=[types.Part(text=r.prompt)])],
                metadata={"key": r.key},
                config=config,
            )
            for r in checked
        ]
    else:
        src = types.BatchJobSource(
            file_name=_upload_jsonl(client, "\n".join(encoded).encode() + b"\n", display_name)
        )
    sdk = client.sdk
    job = client.call(
        lambda: sdk.batches.create(model=name, src=src, config={"display_name": display_name}),
        model=name,
        continuing=True,  # charged above, once per request
    )
    if not job.name:
        raise BadResponse("Gemini accepted the batch but did not name it; try again")
    return job.name


def _upload_jsonl(client: GeminiClient, data: bytes, display_name: str) -> str:
    """Upload the batch's input file and wait until Gemini may use it; returns its name."""
    file = upload_file(
        client,
        data,
        mime_type=JSONL_MIME_TYPE,
        what="batch's input file",
        display_name=display_name,
        continuing=True,  # charged once per request at submission
    )
    return file.name or ""


def _job(client: GeminiClient, name: str) -> types.BatchJob:
    sdk = client.sdk
    return client.call(functools.partial(sdk.batches.get, name=name), continuing=True)


def status(client: GeminiClient, name: str) -> BatchStatus:
    """Where the batch job `name` stands (a read, neither charged nor refused by the daily limits).

    google-genai does not read a job's error for the Gemini Developer API, so `error` is set only
    when the SDK hands one over.
    """
    return _status(name, _job(client, name))


def _status(name: str, job: types.BatchJob) -> BatchStatus:
    raw = str(getattr(job.state, "value", job.state) or "JOB_STATE_UNSPECIFIED")
    message = job.error.message if job.error is not None and job.error.message else None
    return BatchStatus(
        name=job.name or name,
        # A state newer than this code is treated as pending: polled until it ends or times out.
        state=_STATES.get(raw, "pending"),
        error=_line(message) if message else None,
        created=job.create_time,
        updated=job.update_time,
    )


def results(client: GeminiClient, name: str, model: str, *, keys: Sequence[str] = ()) -> dict[str, Reply]:
    """Each request's `Reply`, by key, once the batch job `name` has succeeded.

    An answer is `answered`; a blocked prompt `refused`; an answer stopped for safety, recitation
    or empty `stopped`; a request Gemini could not run an `error` with a one-line reason. `keys`
    (the keys submitted, in order) places results Gemini returns without their key (they come in
    input order) and gives each key without a result the error "no result". Batch replies carry no
    latency of their own: `latency_ms` is 0. GeminiError when the job has not succeeded.
    """
    job = _job(client, name)
    current = _status(name, job)
    if current.state != "succeeded":
        raise GeminiError(
            f"the batch job {name} has not succeeded (it is {current.state}); it has no results"
        )
    dest = job.dest
    found: dict[str, Reply] = {}
    if dest is not None and dest.inlined_responses is not None:
        for index, item in enumerate(dest.inlined_responses):
            key = (item.metadata or {}).get("key") or (keys[index] if index < len(keys) else None)
            if key is not None:
                found[key] = _reply(item.response, item.error, model)
    elif dest is not None and dest.file_name:
        sdk = client.sdk
        file_name = dest.file_name
        data = client.call(lambda: sdk.files.download(file=file_name), continuing=True)
        found = _file_replies(data, model, keys)
    else:
        raise BadResponse(f"Gemini says the batch job {name} succeeded but sent no results; try again later")
    for key in keys:
        found.setdefault(
            key, Reply(outcome="error", reason="no result: Gemini returned nothing for this request")
        )
    return found


def _file_replies(data: bytes, model: str, keys: Sequence[str]) -> dict[str, Reply]:
    found: dict[str, Reply] = {}
    for index, text in enumerate(t for t in data.decode("utf-8", "replace").splitlines() if t.strip()):
        try:
            line = json.loads(text)
        except ValueError:
            line = None
        if not isinstance(line, dict):
            continue  # unreadable: its key, if we knew it, ends up with "no result"
        raw_key = line.get("key")
        key = str(raw_key) if raw_key is not None else (keys[index] if index < len(keys) else None)
        if key is None:
            continue
        problem = line.get("error") or line.get("status")
        body = line.get("response")
        try:
            response = (
                types.GenerateContentResponse._from_response(response=body, kwargs={})
                if isinstance(body, dict) and not problem
                else None
            )
            error = (
                types.JobError._from_response(response=problem, kwargs={})
                if isinstance(problem, dict)
                else None
            )
        except pydantic.ValidationError:
            found[key] = Reply(
                outcome="error", reason="Gemini sent a result for this request that could not be read"
            )
            continue
        found[key] = _reply(response, error, model)
    return found


def _reply(response: types.GenerateContentResponse | None, error: types.JobError | None, model: str) -> Reply:
    """One request's result as a `Reply` (latency 0: a batch request has none of its own)."""
    if error is not None or response is None:
        code = f"{error.code}: " if error is not None and error.code is not None else ""
        message = error.message if error is not None and error.message else "no reason given"
        return Reply(outcome="error", reason=f"Gemini could not answer this request ({code}{_line(message)})")
    try:
        return reply_of_answer(answer_of(response, model), latency_ms=0.0)
    except GembotError as exc:
        return reply_of_failure(exc, latency_ms=0.0)


def cancel(client: GeminiClient, name: str) -> None:
    """Ask Gemini to cancel the batch job `name` (a job already finished is left as it was)."""
    sdk = client.sdk
    client.call(functools.partial(sdk.batches.cancel, name=name), continuing=True)
