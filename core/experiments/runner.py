"""Running an experiment: every model × row once, paced, cached, graded, and resumable.

An experiment is a stored job (`core.store.jobs`) with its results kept row by row
(`core.store.experiments`), so a run that stops (Ctrl-C, SIGTERM, a dead process, a spent daily
quota) carries on where it was: `run` skips every (model, row) already on record.

Online, requests run `GEMBOT_EXPERIMENT_CONCURRENCY` at a time, each model paced under
`GEMBOT_GENERATE_RPM` by its own sliding-window limiter (Gemini's quotas are per model), and a
per-minute 429 pauses that model's limiter for everyone. Results are written a few at a time,
in the transaction that renews the job's lease. With `spec.batch`, the uncached requests go
through the Batch API instead (`core.experiments.batch_run`), and read back the same way.

A request identical to one already answered (same model, generation settings and prompt; see
`spec.request_key`) is answered from the response cache unless `fresh`: that is what running a
locked configuration again means for an API that does not promise the same answer twice. The
judge's verdicts are cached the same way.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, replace
from typing import Any

from core.bulk_runner import JobInterrupted, owner_id
from core.daily_limits import UsageLimitReached
from core.errors import DatabaseUnavailable, GembotError, InvalidInput
from core.experiments.cases import Cases, Template
from core.experiments.checks import check_experiment, check_models
from core.experiments.estimates import Estimate, estimate
from core.experiments.judge import Verdict, judge
from core.experiments.pacing import ModelLimiters, ModelQueues
from core.experiments.pricing import Prices
from core.experiments.scoring import score
from core.experiments.spec import ExperimentSpec, options_of, request_key
from core.gemini.client import GeminiClient
from core.gemini.failures import (
    GeminiError,
    GeminiNotConfigured,
    GeminiRejected,
    ModelNotFound,
    QuotaExhausted,
)
from core.gemini.generation import generate
from core.gemini.outcomes import Reply, reply_of_answer, reply_of_failure
from core.settings import Settings
from core.store import CachedReply, ExperimentRecord, Grade, JobRecord, ResultRecord, Store

log = logging.getLogger(__name__)

#: Job kinds: an experiment started from the command line is resumed only by the command line
#: (`gembot experiment resume`); one started in Slack, by any serving process.
KIND_CLI = "experiment_cli"
KIND_SLACK = "experiment_slack"


class ExperimentStopped(GembotError):
    """The run stopped before its end for a reason that would fail every request left (the daily
    quota, a usage limit, a refused key): the results so far are kept, and it can be resumed."""

    def __init__(self, reason: str, *, done: int, total: int) -> None:
        super().__init__(f"{reason} (stopped at {done:,} of {total:,} requests; the answers so far are kept)")
        self.reason = reason
        self.done = done
        self.total = total


@dataclass(frozen=True)
class Progress:
    """Where a run is: requests with a result out of all, seconds so far and an estimate of the rest."""

    done: int
    total: int
    elapsed: float
    eta: float | None
    sent: int
    cached: int


@dataclass(frozen=True)
class _Request:
    model: str
    row_index: int
    prompt: str
    key: str


# Failures that would fail every request after them too: the run stops instead of recording them.
_FATAL = (QuotaExhausted, UsageLimitReached, GeminiNotConfigured, ModelNotFound)


def _fatal(exc: BaseException) -> bool:
    if isinstance(exc, _FATAL):
        return True
    return isinstance(exc, GeminiRejected) and exc.code in (401, 403)


class ExperimentRunner:
    """Creates experiments, estimates them, and runs them for this process (`owner`).

    Thread-safe; `stop()` makes every run give its job back after the requests in flight.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        gemini: GeminiClient | None,
        *,
        owner: str | None = None,
        limiters: ModelLimiters | None = None,
        flush_every: float = 0.5,
    ) -> None:
        self.store = store
        self.settings = settings
        self.gemini = gemini
        self.owner = owner or owner_id()
        self.limiters = limiters or ModelLimiters(settings.generate_rpm)
        self.flush_every = flush_every
        self.prices = Prices.parse(settings.prices)
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Make every run of this runner give its job back after the requests in flight."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- creating -------------------------------------------------------------------------------

    def create(
        self,
        team_id: str,
        spec: ExperimentSpec,
        cases: Cases,
        *,
        name: str,
        source: str,
        kind: str,
        created_by: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        hold: bool = True,
        rerun_of: int | None = None,
    ) -> tuple[ExperimentRecord, JobRecord]:
        """Check the experiment, then store it with its job (held by this process when `hold`)."""
        experiment, job = self._create(
            team_id,
            spec,
            cases,
            name=name,
            source=source,
            kind=kind,
            created_by=created_by,
            parameters=parameters,
            owner=self.owner if hold else None,
            rerun_of=rerun_of,
            pending=False,
        )
        assert job is not None  # made with the experiment unless pending
        return experiment, job

    def create_pending(
        self,
        team_id: str,
        spec: ExperimentSpec,
        cases: Cases,
        *,
        name: str,
        source: str,
        kind: str,
        created_by: str | None = None,
    ) -> ExperimentRecord:
        """Check the experiment, then store it waiting for a confirmation (`start`), with no job."""
        experiment, _ = self._create(
            team_id,
            spec,
            cases,
            name=name,
            source=source,
            kind=kind,
            created_by=created_by,
            parameters=None,
            owner=None,
            rerun_of=None,
            pending=True,
        )
        return experiment

    def start(
        self, experiment_id: int, *, kind: str, parameters: Mapping[str, Any] | None = None, hold: bool = True
    ) -> JobRecord | None:
        """The job of a pending experiment, now made (held by this process when `hold`); None when
        it was started or cancelled already."""
        return self.store.experiments.start(
            experiment_id,
            job_kind=kind,
            job_parameters=dict(parameters or {}),
            owner=self.owner if hold else None,
            lease_seconds=self.settings.job_lease_seconds,
        )

    def _create(
        self,
        team_id: str,
        spec: ExperimentSpec,
        cases: Cases,
        *,
        name: str,
        source: str,
        kind: str,
        created_by: str | None,
        parameters: Mapping[str, Any] | None,
        owner: str | None,
        rerun_of: int | None,
        pending: bool,
    ) -> tuple[ExperimentRecord, JobRecord | None]:
        check_experiment(spec, cases, source=source)
        return self.store.experiments.create(
            team_id,
            name=name,
            spec=spec.to_json(),
            cases=cases.to_json(),
            rows=len(cases.rows),
            source=source,
            origin="slack" if kind == KIND_SLACK else "cli",
            job_kind=kind,
            job_parameters=dict(parameters or {}),
            owner=owner,
            lease_seconds=self.settings.job_lease_seconds,
            created_by=created_by,
            rerun_of=rerun_of,
            pending=pending,
        )

    def loaded(self, experiment_id: int) -> tuple[ExperimentRecord, ExperimentSpec, Cases]:
        """An experiment with its spec and its input table, as stored."""
        experiment = self.store.experiments.get(experiment_id)
        spec = ExperimentSpec.of(experiment.spec)
        return experiment, spec, Cases.of(self.store.experiments.cases(experiment_id))

    def check_models(self, spec: ExperimentSpec) -> None:
        """InvalidInput unless every model of `spec`, and its judge, can generate for this API key
        (asked of `models.list`)."""
        from core.gemini.catalog import list_models

        models = [*spec.models, *([spec.scoring.judge_model] if spec.scoring.judge_model else [])]
        check_models(list(dict.fromkeys(models)), list_models(self.client()))

    def estimate(self, spec: ExperimentSpec, cases: Cases, *, source: str = "the input") -> Estimate:
        """Requests, tokens and cost of running `spec` over `cases`, before anything is sent
        (`core.experiments.estimates`)."""
        return estimate(self.client(), self.store, self.prices, spec, cases, source=source)

    # -- running --------------------------------------------------------------------------------

    def run(
        self,
        job: JobRecord,
        *,
        progress: Callable[[Progress], None] | None = None,
        fresh: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ExperimentRecord:
        """Run the requests of `job`'s experiment that have no result yet, and mark the experiment
        done; the job stays this process's until `finish` says the results were delivered.

        JobInterrupted when the runner is stopping (the job is queued again with its results) or
        the database went away; ExperimentStopped when a failure would fail every request left
        (the job stays with this process until the caller releases or fails it); LeaseLost when
        another process took the job over.
        """
        experiment_id = int(job.parameters["experiment"])
        experiment, spec, cases = self.loaded(experiment_id)
        template = Template(spec.template)
        prompts = [template.render(row) for row in cases.rows]
        done = self.store.experiments.done(experiment_id)
        todo = [
            _Request(model, index, prompt, request_key(model, spec.generation, prompt))
            for model in spec.models
            for index, prompt in enumerate(prompts)
            if (model, index) not in done
        ]
        total = len(prompts) * len(spec.models)
        run = _Run(self, job, spec, cases, total=total, already=len(done), progress=progress)
        cached = {} if fresh else self.store.experiments.cached(r.key for r in todo)
        try:
            if spec.batch:
                self._run_batch(run, todo, cached, sleep=sleep)
            else:
                run.online(todo, cached)
            run.grade_waiting()
        except DatabaseUnavailable as exc:
            self._release_quietly(job)
            raise JobInterrupted(run.done, run.total, database_lost=True) from exc
        except KeyboardInterrupt:
            # Ctrl-C while a batch job is polled: the batch goes on at Google, its name is kept.
            self._release_quietly(job)
            raise JobInterrupted(run.done, run.total) from None
        if run.fatal is not None:
            raise ExperimentStopped(str(run.fatal), done=run.done, total=run.total)
        if run.interrupted:
            self.store.jobs.release(job.id, owner=self.owner)
            raise JobInterrupted(run.done, run.total)
        self.store.experiments.finish(experiment_id, state="done")
        return self.store.experiments.get(experiment.id)

    def finish(self, job: JobRecord) -> bool:
        """Mark `job` done once its results have reached whoever asked (a crash before then leaves
        it to be run again, which asks nothing twice and delivers again); False when this process
        no longer holds it."""
        return self.store.jobs.finish(job.id, owner=self.owner)

    def _run_batch(
        self,
        run: _Run,
        todo: Sequence[_Request],
        cached: Mapping[str, CachedReply],
        *,
        sleep: Callable[[float], None],
    ) -> None:
        from core.experiments.batch_run import run_batches

        run.online([r for r in todo if r.key in cached], cached)
        if run.fatal is not None or run.interrupted:
            return
        rest = [r for r in todo if r.key not in cached]
        if not rest:
            return
        by_row = {(r.model, r.row_index): r for r in rest}
        requests: dict[str, list[tuple[int, str]]] = {}
        for r in rest:
            requests.setdefault(r.model, []).append((r.row_index, r.prompt))

        def deliver(model: str, row_index: int, reply: Reply) -> None:
            # Written at once: `run_batches` marks a batch delivered after its last row, and a row
            # still in memory then would be lost to a crash.
            # The judge is asked afterwards, many at a time (`grade_waiting`), not row by row here.
            request = by_row[(model, row_index)]
            run.keep(*run.finish(request, reply, cached=False, batch=True, judge_now=False))
            run.flush(force=True)

        run_batches(
            self.store,
            self.client(),
            self.settings,
            run.experiment_id,
            requests,
            options_of(run.spec.generation),
            deliver=deliver,
            sleep=sleep,
        )
        run.flush(force=True)

    def client(self) -> GeminiClient:
        if self.gemini is None:
            raise GeminiNotConfigured(
                "experiments need Gemini: set GEMINI_API_KEY (get one at https://aistudio.google.com/apikey)"
            )
        return self.gemini

    def _release_quietly(self, job: JobRecord) -> None:
        try:
            self.store.jobs.release(job.id, owner=self.owner)
        except GembotError as exc:
            log.info("experiment job #%d stays with this process until its lease lapses (%s)", job.id, exc)


class _Run:
    """One run of one experiment: the pool, the results waiting to be written, the progress."""

    def __init__(
        self,
        runner: ExperimentRunner,
        job: JobRecord,
        spec: ExperimentSpec,
        cases: Cases,
        *,
        total: int,
        already: int,
        progress: Callable[[Progress], None] | None,
    ) -> None:
        self.runner = runner
        self.store = runner.store
        self.job = job
        self.spec = spec
        self.cases = cases
        self.experiment_id = int(job.parameters["experiment"])
        self.total = total
        self.done = already
        self.started = time.monotonic()
        self.processed = 0
        self.sent = 0
        self.from_cache = 0
        self.fatal: BaseException | None = None
        self.interrupted = False
        self.progress = progress
        self._results: list[ResultRecord] = []
        self._cache: list[CachedReply] = []
        # Every reply and verdict of this run by request key, written or not yet.
        self._memo: dict[str, CachedReply] = {}
        self._flushed = time.monotonic()
        self._lock = threading.Lock()

    # -- the online pool ------------------------------------------------------------------------

    def online(self, todo: Sequence[_Request], cached: Mapping[str, CachedReply]) -> None:
        """Run `todo`, answering from `cached` (the response cache's replies to these requests,
        none when fresh) what it holds.

        A prompt that repeats (two rows alike) is asked once: the repeats wait for the first
        answer and take it from this run's memo, as from the cache."""
        first: list[_Request] = []
        repeats: list[_Request] = []
        seen: set[str] = set()
        for request in todo:
            (repeats if request.key in seen else first).append(request)
            seen.add(request.key)
        self._online(first, cached)
        if repeats and not self._halted():
            self._online(repeats, cached)

    def _online(self, todo: Sequence[_Request], cached: Mapping[str, CachedReply]) -> None:
        if not todo:
            return
        with self._lock:
            known = {**cached, **{r.key: self._memo[r.key] for r in todo if r.key in self._memo}}
        width = self.runner.settings.experiment_concurrency
        queues = ModelQueues(todo)
        in_flight: dict[Future[tuple[ResultRecord, list[CachedReply]]], str] = {}
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="gembot-experiment") as pool:
            try:
                while True:
                    # No queue ahead of the workers: a stop leaves unsent what was not in flight.
                    while not self._halted() and len(in_flight) < width:
                        request = queues.next()
                        if request is None:
                            break
                        context = contextvars.copy_context()
                        future = pool.submit(context.run, self._one, request, known.get(request.key))
                        in_flight[future] = request.model
                    if not in_flight:
                        break
                    finished, _ = wait(
                        in_flight, timeout=self.runner.flush_every, return_when=FIRST_COMPLETED
                    )
                    for future in finished:
                        queues.done(in_flight.pop(future))
                        self._collect(future)
                    if self._halted():
                        # Requests not yet sent stay unsent; those in flight are awaited and kept.
                        in_flight = {f: m for f, m in in_flight.items() if not f.cancel()}
                    self.flush(force=False)
            except KeyboardInterrupt:
                # Ctrl-C on the command line: finish what is in flight, keep it, give the job back.
                self.interrupted = True
                for future in list(in_flight):
                    future.cancel()
                for future in list(in_flight):
                    if not future.cancelled():
                        self._collect(future)
            finally:
                self.flush(force=True)

    def _halted(self) -> bool:
        if self.runner.stopping:
            self.interrupted = True
        return self.interrupted or self.fatal is not None

    def _collect(self, future: Future[tuple[ResultRecord, list[CachedReply]]]) -> None:
        try:
            result, cache = future.result()
        except BaseException as exc:
            if _fatal(exc):
                self.fatal = self.fatal or exc
                return
            raise
        self.keep(result, cache)

    def _one(self, request: _Request, cached: CachedReply | None) -> tuple[ResultRecord, list[CachedReply]]:
        if cached is not None:
            return self.finish(request, _reply(cached), cached=True, batch=False)
        client = self.runner.client()
        started = time.perf_counter()
        try:
            options = options_of(self.spec.generation)
            options["model"] = request.model
            options["limiter"] = self.runner.limiters(request.model)
            answer = generate(client, request.prompt, **options)
            reply = reply_of_answer(answer, latency_ms=_ms_since(started))
        except GeminiError as exc:
            if _fatal(exc):
                raise
            reply = reply_of_failure(exc, latency_ms=_ms_since(started))
        with self._lock:
            self.sent += 1
        return self.finish(request, reply, cached=False, batch=False)

    # -- grading and keeping --------------------------------------------------------------------

    def finish(
        self, request: _Request, reply: Reply, *, cached: bool, batch: bool, judge_now: bool = True
    ) -> tuple[ResultRecord, list[CachedReply]]:
        """The result of `request` given its reply: graded (the judge asked, when it grades, unless
        not `judge_now`: `grade_waiting` does it later), with the cache entries to write (the
        reply's, unless it came from the cache, and the verdict's)."""
        entries = [] if cached or not reply.cacheable else [_entry(request.key, request.model, reply)]
        row = self.cases.rows[request.row_index]
        scoring = self.spec.scoring
        grade = Grade(request.model, request.row_index, None, None, 0, 0)
        if reply.outcome == "answered" and scoring.mode == "judge" and judge_now:
            grade, more = self._judge(request, reply, row)
            entries += more
        elif reply.outcome == "answered" and scoring.mode != "none":
            grade = replace(grade, score=score(scoring, reply.text, row))
        if cached:
            with self._lock:
                self.from_cache += 1
        result = ResultRecord(
            model=request.model,
            row_index=request.row_index,
            prompt=request.prompt,
            outcome=reply.outcome,
            answer=reply.text,
            reason=reply.reason,
            score=grade.score,
            judge_reason=grade.judge_reason,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            thinking_tokens=reply.thinking_tokens,
            judge_input_tokens=grade.judge_input_tokens,
            judge_output_tokens=grade.judge_output_tokens,
            latency_ms=reply.latency_ms,
            cached=cached,
            batch=batch,
        )
        return result, entries

    def _judge(
        self, request: _Request, reply: Reply, row: Mapping[str, str]
    ) -> tuple[Grade, list[CachedReply]]:
        """The judge's grade of `reply` (its verdict from this run's memo or the cache when it has
        one), with the cache entry to write for a new verdict; a judge that gives none leaves the
        answer ungraded, saying why."""
        verdict, note, entries = self._verdict(request, reply, row)
        grade = Grade(
            model=request.model,
            row_index=request.row_index,
            score=float(verdict.score) if verdict is not None else None,
            judge_reason=verdict.reason if verdict is not None else note,
            judge_input_tokens=verdict.input_tokens if verdict is not None else 0,
            judge_output_tokens=verdict.output_tokens if verdict is not None else 0,
        )
        return grade, entries

    def _verdict(
        self, request: _Request, reply: Reply, row: Mapping[str, str]
    ) -> tuple[Verdict | None, str | None, list[CachedReply]]:
        scoring = self.spec.scoring
        assert scoring.judge_model is not None  # Scoring checks it for mode judge
        expected = row.get(scoring.expected) if scoring.expected else None
        asked = json.dumps([scoring.argument, request.prompt, reply.text, expected], ensure_ascii=False)
        key = request_key(scoring.judge_model, scoring.judge_generation, "judge:" + asked)
        with self._lock:
            found = self._memo.get(key)
        if found is None:
            found = self.store.experiments.cached([key]).get(key)
        if found is not None:
            kept = json.loads(found.text)
            verdict = Verdict(
                score=int(kept["score"]),
                reason=str(kept["reason"]),
                input_tokens=found.input_tokens,
                output_tokens=found.output_tokens,
            )
            return verdict, None, []
        try:
            verdict = judge(
                self.runner.client(),
                scoring=scoring,
                prompt=request.prompt,
                answer=reply.text,
                expected=expected,
                limiter=self.runner.limiters(scoring.judge_model),
            )
        except GeminiError as exc:
            if _fatal(exc):
                raise
            return None, f"the judge gave no verdict: {exc}"[:500], []
        with self._lock:
            self.sent += 1
        entry = CachedReply(
            key=key,
            model=scoring.judge_model,
            outcome="answered",
            text=json.dumps({"score": verdict.score, "reason": verdict.reason}, ensure_ascii=False),
            reason=None,
            input_tokens=verdict.input_tokens,
            output_tokens=verdict.output_tokens,
            thinking_tokens=0,
            latency_ms=0.0,
        )
        return verdict, None, [entry]

    def grade_waiting(self) -> None:
        """Ask the judge about every answer on record that it has not graded yet (a batch's, or
        one a stopped run left), `experiment_concurrency` at a time, writing the grades as they
        come; nothing to do unless the experiment is judged."""
        if self.spec.scoring.mode != "judge" or self._halted():
            return
        waiting = [
            r
            for r in self.store.experiments.results(self.experiment_id)
            if r.outcome == "answered" and r.score is None and r.judge_reason is None
        ]
        if not waiting:
            return
        width = self.runner.settings.experiment_concurrency
        grades: list[Grade] = []
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="gembot-judge") as pool:
            futures = [pool.submit(contextvars.copy_context().run, self._grade, r) for r in waiting]
            try:
                for future in as_completed(futures):
                    try:
                        grade, cache = future.result()
                    except BaseException as exc:
                        if not _fatal(exc):
                            raise
                        self.fatal = self.fatal or exc
                        break
                    grades.append(grade)
                    self.store.experiments.cache(cache)
                    if len(grades) >= 200:
                        self._write_grades(grades)
            finally:
                for future in futures:
                    future.cancel()
                self._write_grades(grades)

    def _grade(self, result: ResultRecord) -> tuple[Grade, list[CachedReply]]:
        request = _Request(result.model, result.row_index, result.prompt, key="")
        reply = Reply(outcome="answered", text=result.answer)
        return self._judge(request, reply, self.cases.rows[result.row_index])

    def _write_grades(self, grades: list[Grade]) -> None:
        if grades:
            lease = self.runner.settings.job_lease_seconds
            self.store.experiments.grade(
                self.experiment_id, grades, job_id=self.job.id, owner=self.runner.owner, lease_seconds=lease
            )
            grades.clear()

    def keep(self, result: ResultRecord, cache: list[CachedReply]) -> None:
        with self._lock:
            self._results.append(result)
            self._cache.extend(cache)
            self._memo.update((entry.key, entry) for entry in cache)
            self.processed += 1

    def flush(self, *, force: bool) -> None:
        """Write the results waiting (every `flush_every` seconds, or now when `force`), renewing
        the lease; renew it anyway when nothing came back for a third of it."""
        now = time.monotonic()
        lease = self.runner.settings.job_lease_seconds
        with self._lock:
            due = force or len(self._results) >= 200 or now - self._flushed >= self.runner.flush_every
            if not due:
                return
            results, cache = self._results, self._cache
            self._results, self._cache = [], []
        if results or cache:
            # The cache first: a crash between the two costs a cached answer nothing, the other
            # way round a result would lack its cache entry.
            self.store.experiments.cache(cache)
            self.done = self.store.experiments.record(
                self.experiment_id, results, job_id=self.job.id, owner=self.runner.owner, lease_seconds=lease
            )
        elif now - self._flushed >= lease / 3:
            self.store.jobs.heartbeat([self.job.id], owner=self.runner.owner, lease_seconds=lease)
        else:
            return
        self._flushed = now
        if self.progress is not None and results:
            self.progress(self._progress())

    def _progress(self) -> Progress:
        elapsed = time.monotonic() - self.started
        left = self.total - self.done
        rate = self.processed / elapsed if elapsed > 0 and self.processed else 0.0
        return Progress(
            done=self.done,
            total=self.total,
            elapsed=elapsed,
            eta=left / rate if rate > 0 else None,
            sent=self.sent,
            cached=self.from_cache,
        )


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _reply(cached: CachedReply) -> Reply:
    """A reply from the response cache, as it was when it came back (`_entry` wrote it)."""
    return Reply(
        outcome=cached.outcome,  # type: ignore[arg-type]  # only outcomes are ever cached
        text=cached.text,
        reason=cached.reason,
        input_tokens=cached.input_tokens,
        output_tokens=cached.output_tokens,
        thinking_tokens=cached.thinking_tokens,
        latency_ms=cached.latency_ms,
    )


def _entry(key: str, model: str, reply: Reply) -> CachedReply:
    return CachedReply(
        key=key,
        model=model,
        outcome=reply.outcome,
        text=reply.text,
        reason=reply.reason,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        thinking_tokens=reply.thinking_tokens,
        latency_ms=reply.latency_ms,
    )


def parse_models(text: str) -> tuple[str, ...]:
    """`a,b` (or `a, b`) as model names, in order; InvalidInput when none is given."""
    models = tuple(part.strip().removeprefix("models/") for part in text.split(",") if part.strip())
    if not models:
        raise InvalidInput("name at least one model (--model a,b)")
    return models
