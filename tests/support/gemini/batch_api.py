"""The Batch API of the Gemini Developer API: `models/M:batchGenerateContent`, `batches/ID` (get,
cancel, delete) and `batches` (list), with the states a job goes through and its results.

A batch is a long-running operation on the wire: `{"name": "batches/ID", "metadata": {...the
GenerateContentBatch: model, displayName, state, times, batchStats, output...}, "done": ...}`,
which google-genai reads into a `BatchJob` (`metadata.state` BATCH_STATE_* becomes JOB_STATE_*,
`metadata.output` its `dest`). Input comes inline (`inputConfig.requests.requests[]`, each
`{"request", "metadata"}`) or as an uploaded JSONL file (`inputConfig.fileName`, each line
`{"key", "request"}`); results come back the same way (`output.inlinedResponses.inlinedResponses[]`
in input order, or `output.responsesFile`, a generated JSONL file of `{"key", "response"|"error"}`).

A job moves on only when it is read: it stays PENDING for its first `pending_gets` GETs, RUNNING for
the next `running_gets`, then ends (SUCCEEDED unless a test said otherwise). Its requests are
answered when it succeeds, each one as `generateContent` would answer it (scripted replies, blocked
prompts, finish reasons, usage metadata), or with a per-request error a test chose.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.gemini.files_api import FileStore
from tests.support.gemini.models_api import ModelInfo, find_model
from tests.support.gemini.replies import ApiError, Reply, bad_request, error, json_reply
from tests.support.gemini.wire import RecordedRequest, page

PENDING, RUNNING, SUCCEEDED = "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED"
FAILED, CANCELLED, EXPIRED = "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"
TERMINAL = (SUCCEEDED, FAILED, CANCELLED, EXPIRED)
_ENDINGS = {"FAILED": FAILED, "CANCELLED": CANCELLED, "EXPIRED": EXPIRED}
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta."
_FAILURE_MESSAGE = "The batch could not be processed: an internal error occurred."

#: Answers one request of a batch, as `generateContent` would: (model, request JSON) -> reply.
Answerer = Callable[[str, dict[str, Any]], Reply]


@dataclass
class RequestFailure:
    """A per-request error chosen by a test: the requests with these keys or input positions."""

    keys: frozenset[str]
    indexes: frozenset[int]
    code: int
    message: str

    def matches(self, key: str | None, index: int) -> bool:
        return index in self.indexes or (key is not None and key in self.keys)


@dataclass
class StoredBatch:
    """One batch job: what was sent, where it stands, and its results once it has them."""

    id: str
    model: str
    display_name: str
    #: (key, GenerateContentRequest) in input order; the key is None for an inline request
    #: sent without metadata.
    requests: list[tuple[str | None, dict[str, Any]]]
    from_file: bool
    created: datetime
    pending_gets: int
    running_gets: int
    ending: str = SUCCEEDED
    stuck: bool = False
    state: str = PENDING
    gets: int = 0
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: datetime | None = None
    #: The inline results (`inlinedResponses[]`) or the generated file's name.
    inline_results: list[dict[str, Any]] | None = None
    results_file: str | None = None
    #: The results of the requests that succeeded / failed.
    succeeded: int = 0
    failed: int = 0

    @property
    def name(self) -> str:
        return f"batches/{self.id}"

    def to_json(self) -> dict[str, Any]:
        """The batch as the long-running operation the API answers with."""
        metadata: dict[str, Any] = {
            "@type": _TYPE + "GenerateContentBatch",
            "model": f"models/{self.model}",
            "displayName": self.display_name,
            "createTime": _rfc3339(self.created),
            "updateTime": _rfc3339(self.updated),
            "batchStats": self._stats(),
            "state": self.state,
            "name": self.name,
        }
        body: dict[str, Any] = {"name": self.name, "metadata": metadata}
        if self.ended is not None:
            metadata["endTime"] = _rfc3339(self.ended)
        if self.state in TERMINAL:
            body["done"] = True
        output: dict[str, Any] | None = None
        if self.inline_results is not None:
            output = {"inlinedResponses": {"inlinedResponses": self.inline_results}}
        elif self.results_file is not None:
            output = {"responsesFile": self.results_file}
        if output is not None:
            metadata["output"] = output
            body["response"] = {"@type": _TYPE + "GenerateContentBatchOutput", **output}
        if self.state == FAILED:
            body["error"] = {"code": 13, "message": _FAILURE_MESSAGE}
        return body

    def _stats(self) -> dict[str, str]:
        # int64 fields travel as strings in proto3 JSON.
        total = len(self.requests)
        stats = {"requestCount": str(total)}
        if self.state == SUCCEEDED:
            stats["successfulRequestCount"] = str(self.succeeded)
            if self.failed:
                stats["failedRequestCount"] = str(self.failed)
        else:
            stats["pendingRequestCount"] = str(total)
        return stats


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _no_such_batch(batch_id: str) -> ApiError:
    return ApiError(error(404, f"Requested entity was not found: batches/{batch_id}."))


class BatchStore:
    """The batch jobs and the knobs that decide how they end; every method is thread-safe."""

    def __init__(self, files: FileStore, answer: Answerer) -> None:
        self._lock = threading.Lock()
        self._files = files
        self._answer = answer
        self._batches: dict[str, StoredBatch] = {}
        self._progress = (1, 1)
        self._endings: list[str] = []
        self._stuck = 0
        self._failures: list[RequestFailure] = []
        self._omit_metadata = False

    # ------------------------------------------------------------------ knobs

    def progress(self, *, pending_gets: int, running_gets: int) -> None:
        """Batches created from now on answer PENDING to their first `pending_gets` GETs, then
        RUNNING to the next `running_gets`, then their final state."""
        if pending_gets < 0 or running_gets < 0:
            raise ValueError("GET counts cannot be negative")
        with self._lock:
            self._progress = (pending_gets, running_gets)

    def end_next(self, state: str, n: int) -> None:
        """The next `n` batches created end in `state` ("FAILED", "EXPIRED" or "CANCELLED")
        instead of SUCCEEDED, with no results."""
        if state not in _ENDINGS:
            raise ValueError(f"a batch can be made to end FAILED, EXPIRED or CANCELLED, not {state!r}")
        with self._lock:
            self._endings += [_ENDINGS[state]] * n

    def keep_pending(self, n: int) -> None:
        """The next `n` batches created stay PENDING however often they are read (until cancelled)."""
        with self._lock:
            self._stuck += n

    def fail_requests(
        self, *, keys: Collection[str], indexes: Collection[int], code: int, message: str
    ) -> None:
        """From now on, the requests of a succeeding batch with one of `keys` (or at one of the
        input positions `indexes`) get a per-request error instead of an answer."""
        with self._lock:
            self._failures.append(RequestFailure(frozenset(keys), frozenset(indexes), code, message))

    def omit_metadata(self, omit: bool) -> None:
        """Inline results of batches finishing from now on come back without their `metadata`
        (users have reported the real service doing so); they stay in input order."""
        with self._lock:
            self._omit_metadata = omit

    def batch(self, name: str) -> StoredBatch:
        """A batch by "batches/abc" or "abc"; KeyError if there is none."""
        with self._lock:
            return self._batches[name.rsplit("/", 1)[-1]]

    def batches(self) -> list[StoredBatch]:
        """Every batch, oldest first."""
        with self._lock:
            return list(self._batches.values())

    # ------------------------------------------------------------------ endpoints

    def create(self, models: dict[str, ModelInfo], record: RecordedRequest) -> Reply:
        """`POST models/M:batchGenerateContent`: a new batch, PENDING, as an operation."""
        find_model(models, record, "generateContent")
        batch = record.payload.get("batch")
        if not isinstance(batch, dict):
            raise bad_request("* BatchGenerateContentRequest.batch: batch is required\n")
        display_name = batch.get("displayName") or batch.get("display_name")
        if not isinstance(display_name, str) or not display_name.strip():
            raise bad_request("* GenerateContentBatch.display_name: display_name is required\n")
        config = batch.get("inputConfig") or batch.get("input_config")
        if not isinstance(config, dict):
            raise bad_request("* GenerateContentBatch.input_config: input_config is required\n")
        file_name = config.get("fileName") or config.get("file_name")
        if file_name is not None:
            requests, from_file = self._file_requests(str(file_name)), True
        else:
            requests, from_file = _inline_requests(config), False
        now = datetime.now(UTC)
        with self._lock:
            pending_gets, running_gets = self._progress
            stored = StoredBatch(
                id=secrets.token_hex(8),
                model=record.model or "",
                display_name=display_name,
                requests=requests,
                from_file=from_file,
                created=now,
                updated=now,
                pending_gets=pending_gets,
                running_gets=running_gets,
                ending=self._endings.pop(0) if self._endings else SUCCEEDED,
                stuck=self._stuck > 0,
            )
            self._stuck -= int(stored.stuck)
            self._batches[stored.id] = stored
            return json_reply(200, stored.to_json())

    def get(self, batch_id: str) -> Reply:
        """`GET batches/ID`: the batch, moved on one step by this read."""
        with self._lock:
            stored = self._batches.get(batch_id)
            if stored is None:
                raise _no_such_batch(batch_id)
            self._advance(stored)
            return json_reply(200, stored.to_json())

    def cancel(self, batch_id: str) -> Reply:
        """`POST batches/ID:cancel`: an unfinished batch ends CANCELLED; a finished one is left."""
        with self._lock:
            stored = self._batches.get(batch_id)
            if stored is None:
                raise _no_such_batch(batch_id)
            if stored.state not in TERMINAL:
                self._end(stored, CANCELLED)
            return json_reply(200, {})

    def delete(self, batch_id: str) -> Reply:
        """`DELETE batches/ID`: forget the batch."""
        with self._lock:
            if self._batches.pop(batch_id, None) is None:
                raise _no_such_batch(batch_id)
            return json_reply(200, {})

    def list(self, record: RecordedRequest) -> Reply:
        """`GET batches`: one page of operations, newest first."""
        with self._lock:
            listed = [b.to_json() for b in reversed(self._batches.values())]
        return page(record, "operations", listed, default=10, maximum=100)

    # ------------------------------------------------------------------ states and results

    def _advance(self, stored: StoredBatch) -> None:
        """One read's worth of progress (lock held)."""
        if stored.state in TERMINAL or stored.stuck:
            return
        stored.gets += 1
        if stored.gets <= stored.pending_gets:
            return
        if stored.gets <= stored.pending_gets + stored.running_gets:
            if stored.state != RUNNING:
                stored.state, stored.updated = RUNNING, datetime.now(UTC)
            return
        if stored.ending == SUCCEEDED:
            self._run(stored)
        self._end(stored, stored.ending)

    def _end(self, stored: StoredBatch, state: str) -> None:
        stored.state = state
        stored.updated = stored.ended = datetime.now(UTC)

    def _run(self, stored: StoredBatch) -> None:
        """Answer every request of the batch and keep the results where its input came from."""
        results: list[dict[str, Any]] = []
        for index, (key, request) in enumerate(stored.requests):
            failure = next((f for f in self._failures if f.matches(key, index)), None)
            if failure is not None:
                outcome: dict[str, Any] = {"error": {"code": failure.code, "message": failure.message}}
            else:
                outcome = _outcome(self._answer(stored.model, request))
            stored.failed += int("error" in outcome)
            stored.succeeded += int("error" not in outcome)
            if stored.from_file:
                results.append({"key": key, **outcome} if key is not None else outcome)
            elif key is None or self._omit_metadata:
                results.append(outcome)
            else:
                results.append({**outcome, "metadata": {"key": key}})
        if not stored.from_file:
            stored.inline_results = results
            return
        data = "".join(json.dumps(line) + "\n" for line in results).encode()
        made = self._files.add_generated(
            f"batch-{stored.id}", "application/jsonl", data, f"{stored.display_name} results"
        )
        stored.results_file = made.name

    def _file_requests(self, file_name: str) -> list[tuple[str | None, dict[str, Any]]]:
        file_id = file_name.removeprefix("files/")
        stored = self._files.usable(file_id, file_name)
        requests: list[tuple[str | None, dict[str, Any]]] = []
        for number, line in enumerate(stored.data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise bad_request(f"Invalid JSON on line {number} of the input file {file_name}.") from None
            request = item.get("request") if isinstance(item, dict) else None
            if not isinstance(request, dict):
                raise bad_request(f"Line {number} of the input file {file_name} has no request.")
            key = item.get("key")
            requests.append((str(key) if key is not None else None, request))
        if not requests:
            raise bad_request(f"The input file {file_name} has no requests.")
        return requests


def _inline_requests(config: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    container = config.get("requests")
    items = container.get("requests") if isinstance(container, dict) else None
    if not isinstance(items, list) or not items:
        raise bad_request("* GenerateContentBatch.input_config.requests: requests must not be empty\n")
    requests: list[tuple[str | None, dict[str, Any]]] = []
    for index, item in enumerate(items):
        request = item.get("request") if isinstance(item, dict) else None
        if not isinstance(request, dict):
            raise bad_request(f"* InlinedRequests.requests[{index}].request: request is required\n")
        metadata = item.get("metadata") or {}
        key = metadata.get("key") if isinstance(metadata, dict) else None
        requests.append((str(key) if key is not None else None, request))
    return requests


def _outcome(reply: Reply) -> dict[str, Any]:
    """A generateContent reply as one result of a batch: `{"response"}` or `{"error"}`."""
    body = json.loads(reply.body) if reply.body else {}
    if reply.status == 200:
        return {"response": body}
    problem = body.get("error") if isinstance(body, dict) else None
    problem = problem if isinstance(problem, dict) else {}
    return {"error": {"code": problem.get("code", reply.status), "message": problem.get("message", "")}}
