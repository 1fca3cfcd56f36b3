"""An experiment run through Gemini's Batch API: one batch job per model, waited for, its replies
handed back row by row like those of direct calls.

Each job is kept in the store (`store.experiments.save_batch`) the moment it is submitted, so a
process that restarts finds it and waits for it instead of paying for it twice. Jobs are polled
with a growing interval; one that succeeds delivers each row's reply, one that fails, expires or is
cancelled (by Gemini, or by us when it stays pending too long) delivers an error for each of its
rows saying so. A job whose rows have all been delivered is marked `delivered` and left alone
afterwards; rows that already have a result are never delivered again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from core.gemini import batches
from core.gemini.batches import BatchRequest, BatchStatus
from core.gemini.client import GeminiClient
from core.gemini.failures import BadResponse, GeminiUnavailable, RateLimited
from core.gemini.generation import Options
from core.gemini.outcomes import Reply
from core.settings import Settings
from core.store.experiments import BatchRecord
from core.store.repository import Store

log = logging.getLogger(__name__)

#: The state a stored batch gets once every one of its rows has been delivered.
DELIVERED = "delivered"
#: The longest wait between two polls of the same batches.
LONGEST_POLL = 600.0
# A poll that fails for one of these is tried again at the next round: a job runs for hours.
_TRANSIENT = (GeminiUnavailable, RateLimited, BadResponse)

Deliver = Callable[[str, int, Reply], None]


def _key(row: int) -> str:
    return f"row-{row}"


def _now(clock: Callable[[], float]) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def _ended_because(state: str, status: BatchStatus, record: BatchRecord) -> str:
    """The one-line reason every row of a batch that did not succeed is given."""
    if record.error:  # we cancelled it ourselves and said why before a restart
        return record.error
    if state == "expired":
        return (
            "the batch job expired before Gemini ran it (Batch API jobs expire after 48 hours); "
            "run it again without --batch"
        )
    if state == "cancelled":
        return "the batch job was cancelled before Gemini finished it; run it again"
    why = f" ({status.error})" if status.error else ""
    return f"the batch job failed at Gemini{why}; run it again, or without --batch"


def run_batches(
    store: Store,
    client: GeminiClient,
    settings: Settings,
    experiment_id: int,
    requests: Mapping[str, Sequence[tuple[int, str]]],
    options: Options,
    *,
    deliver: Deliver,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    on_state: Callable[[str, str], None] | None = None,
    inline_limit: int = batches.INLINE_LIMIT,
) -> None:
    """Run `requests` (model -> [(row index, prompt)]) as one Gemini batch job per model and
    `deliver(model, row, reply)` every row's reply; returns when every job has been delivered.

    A model that already has a batch in the store is not submitted again: its job is polled
    where it stands (a restart). Rows that already have a result (`store.experiments.done`) are
    neither submitted nor delivered. Polls start `settings.batch_poll_seconds` apart and double up
    to `LONGEST_POLL`; a job pending longer than `settings.batch_pending_hours` is cancelled.
    `on_state(model, state)` is told each state a job reaches (pending, running, succeeded, ...,
    delivered). `sleep` and `clock` are injected so that tests need not wait.
    """

    def tell(model: str, state: str) -> None:
        if on_state is not None:
            on_state(model, state)

    done = store.experiments.done(experiment_id)
    stored = {batch.model: batch for batch in store.experiments.batches(experiment_id)}
    active: dict[str, BatchRecord] = {}
    for model, rows in requests.items():
        record = stored.get(model)
        if record is None:
            record = _submit(store, client, experiment_id, model, rows, done, options, clock, inline_limit)
            if record is None:
                continue
            tell(model, record.state)
        if record.state != DELIVERED:
            active[model] = record

    delay = settings.batch_poll_seconds
    pending_limit = settings.batch_pending_hours * 3600
    while active:
        for model, record in list(active.items()):
            try:
                status = batches.status(client, record.name)
            except _TRANSIENT as exc:
                log.info(
                    "polling batch %s of experiment %d failed (%s); trying again",
                    record.name,
                    experiment_id,
                    exc,
                )
                continue
            if status.state != record.state:
                record = replace(record, state=status.state, updated_at=_now(clock))
                store.experiments.save_batch(record)
                tell(model, status.state)
            if status.state == "pending" and clock() - record.submitted_at.timestamp() > pending_limit:
                record = _give_up(store, client, record, settings.batch_pending_hours, clock)
                tell(model, record.state)
                status = replace(status, state="cancelled")
            if not status.finished:
                active[model] = record
                continue
            if status.state == "succeeded":
                replies = batches.results(client, record.name, model, keys=[_key(row) for row in record.rows])
                _deliver(
                    store, experiment_id, model, {row: replies[_key(row)] for row in record.rows}, deliver
                )
            else:
                reason = _ended_because(status.state, status, record)
                failed = Reply(outcome="error", reason=reason)
                _deliver(store, experiment_id, model, dict.fromkeys(record.rows, failed), deliver)
                record = replace(record, error=reason)
            store.experiments.save_batch(replace(record, state=DELIVERED, updated_at=_now(clock)))
            tell(model, DELIVERED)
            del active[model]
        if active:
            sleep(delay)
            delay = min(delay * 2, LONGEST_POLL)


def _submit(
    store: Store,
    client: GeminiClient,
    experiment_id: int,
    model: str,
    rows: Sequence[tuple[int, str]],
    done: set[tuple[str, int]],
    options: Options,
    clock: Callable[[], float],
    inline_limit: int,
) -> BatchRecord | None:
    """Submit the rows of `model` still without a result and keep the job at once; None if none."""
    todo = sorted({index: prompt for index, prompt in rows if (model, index) not in done}.items())
    if not todo:
        return None
    name = batches.submit(
        client,
        model,
        [BatchRequest(_key(index), prompt) for index, prompt in todo],
        options=options,
        display_name=f"gembot experiment {experiment_id} {model}",
        inline_limit=inline_limit,
    )
    now = _now(clock)
    record = BatchRecord(
        experiment_id=experiment_id,
        model=model,
        name=name,
        state="pending",
        rows=tuple(index for index, _ in todo),
        error=None,
        submitted_at=now,
        updated_at=now,
    )
    store.experiments.save_batch(record)
    return record


def _give_up(
    store: Store, client: GeminiClient, record: BatchRecord, hours: float, clock: Callable[[], float]
) -> BatchRecord:
    """Cancel a job that stayed pending too long; the reason is kept before the rows hear it."""
    batches.cancel(client, record.name)
    reason = (
        f"the batch job was still pending after {hours:g} hours, so Gembot cancelled it; "
        "run it again without --batch"
    )
    cancelled = replace(record, state="cancelled", error=reason, updated_at=_now(clock))
    store.experiments.save_batch(cancelled)
    return cancelled


def _deliver(
    store: Store,
    experiment_id: int,
    model: str,
    replies: Mapping[int, Reply],
    deliver: Deliver,
) -> None:
    # Read again: rows delivered before a restart are not repeated.
    done = store.experiments.done(experiment_id)
    for row, reply in sorted(replies.items()):
        if (model, row) not in done:
            deliver(model, row, reply)
