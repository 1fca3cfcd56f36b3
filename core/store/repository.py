"""`Store`: every read and write Gembot makes, one transaction per method, plain values out."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.daily_limits import Scope, UsageCount
from core.errors import DatabaseUnavailable, InvalidInput, NotFound
from core.store import (
    answers,
    audit,
    changes,
    conversations,
    escalations,
    evaluations,
    labels,
    records,
    tuned_encoders,
    validation,
    vectors,
)
from core.store import trained_models as kept_models
from core.store import usage as usage_counters
from core.store.audit import LoggedResult
from core.store.db import CONNECTION_ERRORS, check_at_head, make_engine, read_retried, unavailable, upgrade
from core.store.deliveries import DeliveryStore
from core.store.escalations import EscalationKey, EscalationRecord
from core.store.experiments import ExperimentStore
from core.store.jobs import JobStore
from core.store.schema import ACTOR_LENGTH, JOB_OWNER_LENGTH, Example, Label, LabelSet, utcnow
from core.store.schema import EvaluationRun as _EvaluationRun
from core.store.trained_models import TrainedModelKey

# add_examples retries when a concurrent writer created the same set, label or example between
# its reads and its writes; the unique constraints catch that, and the next attempt sees it.
_ADD_ATTEMPTS = 3
# claim_tune tries this many due jobs, longest waiting first, before it gives up for this round:
# the others are being taken by racing processes.
_TUNE_CANDIDATES = 8


class Store:
    """Label sets, examples, the embedding cache and the classification log, scoped by workspace.

    Names are stripped of surrounding whitespace on the way in, for lookups as for writes.
    Every method is one transaction and is safe to call from several threads.
    """

    def __init__(self, engine: Engine) -> None:
        """A store over an engine whose schema is already at head (see `Store.open`)."""
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.jobs = JobStore(self._session)
        self.experiments = ExperimentStore(self._session)
        self.deliveries = DeliveryStore(self._session)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to `url` and, unless `migrate` is False, bring its schema up to date first.

        With `migrate=False` a schema that is not exactly at head raises DatabaseUnavailable, so
        a worker never runs against tables it does not understand.
        """
        engine = make_engine(url)
        try:
            if migrate:
                upgrade(engine)
            else:
                check_at_head(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    @read_retried
    def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers a trivial query (health checks)."""
        with self._session() as s:
            s.execute(text("SELECT 1"))

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with self._sessions() as session:
                yield session
        except CONNECTION_ERRORS as exc:
            raise unavailable(self._engine, exc) from exc

    # -- label sets and examples ---------------------------------------------------------------

    def add_examples(
        self,
        team_id: str,
        set_name: str,
        items: Sequence[records.ExampleInput],
        *,
        actor: str | None = None,
        added_by: str | None = None,
        author_from_file: bool = False,
    ) -> records.AddResult:
        """Add examples to a set, creating the set and its labels as needed; all or nothing.

        Every item is checked before anything is written (InvalidInput names the bad row). A
        text already in its label, or given twice, is skipped (and keeps its own provenance).
        The set's version goes up once when anything was added (a new set is created at version
        1, so its first add makes 2). The change log gets one entry, in the same transaction,
        naming `actor` (a Slack user id, `cli`; None when unknown): `add` for one example,
        `import` for several. Each new example keeps `added_by`, the Slack user who added it as
        Slack says (default: `actor`, so the command line's `cli:NAME`, which no Slack user is),
        and `author_from_file`: True when the items' authors are a file's claim rather than
        Slack's word.
        """
        team = validation.team_id(team_id)
        name = validation.set_name(set_name)
        rows = validation.examples(items)
        adder = validation.clean_optional(
            actor if added_by is None else added_by, what="adder", limit=ACTOR_LENGTH
        )
        if not rows:
            return records.AddResult(added=0, skipped=0, ids=[])
        for _ in range(_ADD_ATTEMPTS):
            try:
                with self._session() as s, s.begin():
                    result = labels.add(
                        s, team, name, rows, added_by=adder, author_from_file=bool(author_from_file)
                    )
                    changes.record_added(s, team, name, rows, result, actor=actor)
                    return result
            except IntegrityError:
                continue
        raise DatabaseUnavailable(f"label set '{name}' kept changing while examples were added: try again")

    @read_retried
    def list_examples(
        self, team_id: str, set_name: str, *, label: str | None = None
    ) -> list[records.ExampleRecord]:
        """A set's examples (or one label's), ordered by label name, then id."""
        with self._session() as s, s.begin():
            label_set = labels.find_set(s, team_id, set_name)
            label_id = None if label is None else labels.find_label(s, label_set, label)
            return labels.examples(s, label_set, label_id=label_id)

    def remove_example(
        self, team_id: str, set_name: str, example_id: int, *, actor: str | None = None
    ) -> records.ExampleRecord:
        """Delete one example of a set and return what it was; logged as `remove` by `actor`."""
        with self._session() as s, s.begin():
            label_set = labels.find_set(s, team_id, set_name)
            found = labels.examples(s, label_set, example_id=example_id)
            if not found:
                raise NotFound(f"no example #{example_id} in set '{label_set.name}'")
            s.execute(delete(Example).where(Example.id == example_id))
            labels.bump(s, label_set.id)
            removed = found[0]
            changes.record(
                s,
                label_set.team_id,
                label_set.name,
                actor=actor,
                action="remove",
                count=1,
                label=removed.label,
                example_id=removed.id,
                text=removed.text,
            )
            return removed

    @read_retried
    def get_example(self, team_id: str, set_name: str, example_id: int) -> records.ExampleRecord:
        """One example of a set, by id (NotFound when the set has no such example)."""
        with self._session() as s, s.begin():
            label_set = labels.find_set(s, team_id, set_name)
            found = labels.examples(s, label_set, example_id=example_id)
        if not found:
            raise NotFound(f"no example #{example_id} in set '{label_set.name}'")
        return found[0]

    @read_retried
    def example_added_by(self, team_id: str, example_id: int) -> str | None:
        """Who added an example, as recorded with it (migration 0008 filled this in for older
        examples from the change log); None when nobody is known to have."""
        team, number = team_id.strip(), int(example_id)
        with self._session() as s, s.begin():
            return labels.added_by(s, team, number)

    def remove_label(self, team_id: str, set_name: str, label: str, *, actor: str | None = None) -> int:
        """Delete a label and its examples; returns how many examples went with it.

        Logged as `remove_label` by `actor`.
        """
        with self._session() as s, s.begin():
            label_set = labels.find_set(s, team_id, set_name)
            label_id = labels.find_label(s, label_set, label)
            count = s.scalar(select(func.count()).select_from(Example).where(Example.label_id == label_id))
            # ON DELETE CASCADE removes the examples.
            s.execute(delete(Label).where(Label.id == label_id))
            labels.bump(s, label_set.id)
            changes.record(
                s,
                label_set.team_id,
                label_set.name,
                actor=actor,
                action="remove_label",
                count=count or 0,
                label=label.strip(),
            )
            return count or 0

    def remove_set(self, team_id: str, set_name: str, *, actor: str | None = None) -> None:
        """Delete a set with its labels and examples, its tuned encoder and its tune job, its kept
        models and Gemini's cached answers about it. Its
        classification log rows stay, and so does its change log, which gets a `remove_set`
        entry by `actor`."""
        with self._session() as s, s.begin():
            label_set = labels.find_set(s, team_id, set_name)
            count = s.scalar(
                select(func.count())
                .select_from(Example)
                .join(Label, Example.label_id == Label.id)
                .where(Label.set_id == label_set.id)
            )
            s.execute(delete(LabelSet).where(LabelSet.id == label_set.id))
            tuned_encoders.forget(s, label_set.team_id, label_set.name)
            # What was kept for the set goes with it, so nothing about it outlives it.
            escalations.forget(s, label_set.team_id, label_set.name)
            kept_models.forget(s, label_set.team_id, label_set.name)
            changes.record(
                s, label_set.team_id, label_set.name, actor=actor, action="remove_set", count=count or 0
            )

    @read_retried
    def label_history(
        self, team_id: str, *, set_name: str | None = None, limit: int = 20
    ) -> list[records.LabelChangeRecord]:
        """The workspace's latest label-set changes (of one set when `set_name` is given), newest first."""
        with self._session() as s, s.begin():
            return changes.latest(s, team_id, set_name=set_name, limit=max(1, int(limit)))

    @read_retried
    def list_sets(self, team_id: str) -> list[records.SetSummary]:
        """The workspace's sets, by name, each with its version and per-label example counts."""
        with self._session() as s, s.begin():
            return labels.summaries(s, team_id)

    @read_retried
    def get_set(self, team_id: str, set_name: str) -> records.SetSummary:
        """One set's version and per-label example counts."""
        with self._session() as s, s.begin():
            found = labels.summaries(s, team_id, set_name)
        if not found:
            raise NotFound(f"no label set '{set_name.strip()}' in this workspace")
        return found[0]

    @read_retried
    def training_data(self, team_id: str, set_name: str) -> records.TrainingData:
        """Every example of a set with its label, and the version they belong to, as one snapshot."""
        with self._session() as s, s.begin():
            return labels.training_data(s, team_id, set_name)

    @read_retried
    def first_examples(self, team_id: str, set_name: str, *, per_label: int) -> records.TrainingData:
        """The first `per_label` examples of each label and the set's version, as one snapshot."""
        with self._session() as s, s.begin():
            return labels.first_examples(s, team_id, set_name, per_label=per_label)

    # -- embedding cache -------------------------------------------------------------------

    @read_retried
    def get_vectors(self, key: records.CacheKey, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached float32 vectors for those of `hashes` that are cached under `key`."""
        with self._session() as s, s.begin():
            return vectors.get_vectors(s, key, hashes)

    def put_vectors(self, key: records.CacheKey, found: Mapping[str, np.ndarray]) -> None:
        """Cache vectors by text hash; hashes already cached under `key` (by anyone) are left as they are."""
        if not found:
            return
        with self._session() as s, s.begin():
            vectors.put_vectors(s, key, found)

    # -- classification log ----------------------------------------------------------------

    def log_classification(
        self,
        *,
        team_id: str,
        set_name: str,
        user_id: str | None,
        source: str,
        text: str,
        label: str | None,
        confidence: float,
        method: str,
        scores: Mapping[str, float],
    ) -> int:
        """Record one classification (label None = abstained) and return its id."""
        (row_id,) = self.log_classifications(
            team_id=team_id,
            set_name=set_name,
            user_id=user_id,
            source=source,
            results=[(text, label, confidence, method, scores)],
        )
        return row_id

    def log_classifications(
        self,
        *,
        team_id: str,
        set_name: str,
        user_id: str | None,
        source: str,
        results: Sequence[LoggedResult],
    ) -> list[int]:
        """Record the classifications of one request in one transaction; returns their ids in order.

        Each result is `(text, label, confidence, method, scores)`, label None when abstained.
        """
        rows = audit.rows(team_id=team_id, set_name=set_name, user_id=user_id, source=source, results=results)
        if not rows:
            return []
        with self._session() as s, s.begin():
            s.add_all(rows)
            s.flush()
            return [row.id for row in rows]

    @read_retried
    def recent_classifications(self, team_id: str, *, limit: int = 50) -> list[records.ClassificationRecord]:
        """The workspace's latest classifications, newest first."""
        with self._session() as s, s.begin():
            return audit.recent(s, team_id, limit)

    @read_retried
    def get_classification(self, team_id: str, classification_id: int) -> records.ClassificationRecord:
        """One logged classification of the workspace, by id (NotFound when there is none).

        Slack buttons carry this id rather than the text, which may exceed what a button can hold.
        """
        with self._session() as s, s.begin():
            found = audit.get(s, team_id, int(classification_id))
        if found is None:
            raise NotFound(f"classification #{classification_id} is not on record")
        return found

    # -- conversations in threads ----------------------------------------------------------

    def add_turn(
        self,
        team_id: str,
        channel_id: str,
        thread_ts: str,
        role: str,
        text: str,
        *,
        images: Sequence[tuple[str, bytes]] = (),
    ) -> int:
        """Append a turn ("user" or "model") with its `(mime_type, bytes)` images; returns its id."""
        key = conversations.thread_key(team_id, channel_id, thread_ts)
        turn, image_rows = conversations.new_turn(key, role, text, images)
        with self._session() as s, s.begin():
            return conversations.add(s, turn, image_rows)

    @read_retried
    def conversation(
        self,
        team_id: str,
        channel_id: str,
        thread_ts: str,
        *,
        limit: int | None = None,
        max_image_bytes: int | None = None,
    ) -> list[records.TurnRecord]:
        """A thread's turns, oldest first, each with its images; empty when there are none.

        `limit` reads only the newest `limit` turns. `max_image_bytes` reads only the newest
        images that fit in that many bytes in all (the first that does not fit and every older
        one are left out, counted in each turn's `images_left_out`, their bytes never read).
        """
        key = conversations.thread_key(team_id, channel_id, thread_ts)
        newest = None if limit is None else max(1, int(limit))
        budget = None if max_image_bytes is None else max(0, int(max_image_bytes))
        with self._session() as s, s.begin():
            return conversations.turns(s, key, limit=newest, max_image_bytes=budget)

    def prune_conversations(self, older_than: datetime) -> int:
        """Delete the conversation turns (of every thread) created before `older_than`, with their
        images; returns how many turns went (`bot.background.Housekeeping`)."""
        return self._prune(conversations.prune, older_than, asked="prune_conversations")

    def _prune(self, prune: Callable[[Session, datetime], int], older_than: datetime, *, asked: str) -> int:
        """Run one table's `prune` before a timezone-aware moment, in its own transaction."""
        if older_than.tzinfo is None:
            raise InvalidInput(f"{asked} needs a timezone-aware datetime")
        with self._session() as s, s.begin():
            return prune(s, older_than)

    # -- Gemini's answers in Slack and their feedback -------------------------------------

    def record_answer(self, team_id: str, channel_id: str, *, message_ts: str | None, model: str) -> int:
        """Keep a note of an answer shown in Slack (where, which model; not its text) and return
        its id, which its feedback buttons carry (`rate_answer`)."""
        row = answers.new_answer(team_id, channel_id, message_ts=message_ts, model=model)
        with self._session() as s, s.begin():
            return answers.add(s, row)

    def rate_answer(self, team_id: str, answer_id: int, user_id: str, *, good: bool) -> str:
        """Keep `user_id`'s verdict on the answer (good or not), replacing their earlier one, and
        return the answer's model. NotFound when the workspace has no answer `answer_id` (pruned,
        or another workspace's)."""
        with self._session() as s, s.begin():
            return answers.rate(s, team_id, answer_id, user_id, good=good)

    @read_retried
    def answer_ratings(self, team_id: str, *, since: datetime) -> list[answers.ModelRating]:
        """Per model (by name), the workspace's answers created since `since` that someone gave
        feedback on, and how many of those were judged good (more good verdicts than bad)."""
        if since.tzinfo is None:
            raise InvalidInput("answer_ratings needs a timezone-aware datetime")
        with self._session() as s, s.begin():
            return answers.ratings(s, team_id, since=since)

    def prune_answers(self, older_than: datetime) -> int:
        """Delete the answers (of every workspace) created before `older_than`, with their
        feedback; returns how many answers went (`bot.background.Housekeeping`)."""
        return self._prune(answers.prune, older_than, asked="prune_answers")

    # -- evaluation history ----------------------------------------------------------------

    def record_evaluation(
        self,
        team_id: str,
        set_name: str,
        *,
        set_version: int,
        method: str,
        strategy: str,
        n: int,
        accuracy: float,
        coverage: float,
        answered_accuracy: float | None = None,
        ece: float | None = None,
    ) -> records.EvaluationRecord:
        """Keep the headline figures of an evaluation of a set (at `set_version`) and return them."""
        row = _EvaluationRun(
            team_id=validation.team_id(team_id),
            set_name=validation.set_name(set_name),
            set_version=int(set_version),
            method=validation.clean(method, what="method", limit=16),
            strategy=validation.clean(strategy, what="strategy", limit=64),
            n=int(n),
            accuracy=float(accuracy),
            coverage=float(coverage),
            answered_accuracy=None if answered_accuracy is None else float(answered_accuracy),
            ece=None if ece is None else float(ece),
        )
        with self._session() as s, s.begin():
            s.add(row)
            s.flush()
            return evaluations.record(row)

    @read_retried
    def latest_evaluations(self, team_id: str) -> dict[str, records.EvaluationRecord]:
        """The newest evaluation of each of the workspace's sets, by set name (unevaluated sets absent)."""
        with self._session() as s, s.begin():
            return evaluations.latest(s, team_id)

    # -- Gemini's answers for unsure classifications --------------------------------------

    @read_retried
    def escalation(self, key: EscalationKey) -> EscalationRecord | None:
        """Gemini's cached answer for the question `key` names, or None when it was never asked."""
        with self._session() as s, s.begin():
            return escalations.get(s, key)

    def save_escalation(self, key: EscalationKey, *, prompt_hash: str, label: str | None) -> None:
        """Keep Gemini's answer (`label`, None for "none of these") under `key`, replacing any
        answer already there, and forget the set's answers for versions older than `key`'s."""
        with self._session() as s, s.begin():
            escalations.put(s, key, prompt_hash=prompt_hash, label=label)

    # -- fitted classifiers -----------------------------------------------------------------

    @read_retried
    def trained_model(self, key: TrainedModelKey, *, format: int) -> bytes | None:
        """The bytes of the model kept for the fit `key` names, or None when there is none in
        `format` fitted on the examples `key.data_hash` names."""
        with self._session() as s, s.begin():
            return kept_models.get(s, key, format=format)

    def save_trained_model(self, key: TrainedModelKey, blob: bytes, *, format: int) -> bool:
        """Keep a fitted model's bytes (in `format`) under `key`, replacing any already there, and
        forget the set's models of other versions and those of the workspace's removed sets.

        Returns False, keeping nothing, when the set is no longer at `key.set_version`.
        """
        with self._session() as s, s.begin():
            return kept_models.put(s, key, blob, format=format)

    # -- tuned encoders and re-tune requests -------------------------------------------------

    def save_tuned_encoder(self, encoder: records.TunedEncoderInput, blob: bytes) -> bool:
        """Keep `blob` as the set's tuned encoder, replacing the one kept before; its digest is
        the sha256 of `blob`, computed here.

        Returns False, keeping nothing, when the set no longer exists (or was removed and
        created again since the version tuned), or when a tune of a later version than
        `encoder.set_version` is already kept. Saving does not finish a tune job: `finish_tune`.
        """
        with self._session() as s, s.begin():
            return tuned_encoders.save(s, encoder, blob)

    @read_retried
    def tuned_encoder(self, team_id: str, set_name: str) -> records.TunedEncoderInfo | None:
        """The set's tuned encoder, without its bytes (one small SELECT), or None when it has none."""
        with self._session() as s, s.begin():
            return tuned_encoders.info(s, team_id, set_name)

    @read_retried
    def tuned_encoder_blob(self, team_id: str, set_name: str, digest: str) -> bytes | None:
        """The bytes of the set's tuned encoder whose sha256 is `digest`; None when the set has
        none, or another one replaced it since `digest` was read."""
        with self._session() as s, s.begin():
            return tuned_encoders.blob(s, team_id, set_name, digest)

    def forget_tuned_encoder(self, team_id: str, set_name: str) -> bool:
        """Stop classifying the set through a tuned encoder (its latest tune was no better than
        the plain model); True when it had one."""
        with self._session() as s, s.begin():
            return tuned_encoders.forget_encoder(s, team_id, set_name)

    def request_tune(self, team_id: str, set_name: str, *, requested_by: str | None) -> None:
        """Ask for the set to be tuned once it has settled (`/label tune`), whether or not it was
        tuned before; asking again moves the request to now. NotFound when there is no such set.

        Edits of a tuned set ask for it on their own (`labels.bump`).
        """
        with self._session() as s, s.begin():
            tuned_encoders.request(s, team_id, set_name, requested_by=requested_by)

    def claim_tune(
        self, *, owner: str, settle_seconds: float, lease_seconds: float
    ) -> records.TuneJob | None:
        """Take one tune job for `owner` until `lease_seconds` from now, or None when none is due.

        Due: last asked for at least `settle_seconds` ago, not held back after a failure, and not
        held by a live lease. The longest waiting goes first; each is taken by a conditional
        UPDATE, so when processes race for a job one gets it. The job's `attempts` counts this
        taking: a job whose earlier holders died (it was never failed) comes back with more
        attempts than `fail_tune` allows, and the caller should give it up there at once.
        """
        owner = validation.clean(owner, what="tune job owner", limit=JOB_OWNER_LENGTH)
        settle = validation.duration(settle_seconds, what="settle time")
        lease = validation.duration(lease_seconds, what="lease")
        now = utcnow()
        settled = now - timedelta(seconds=settle)
        with self._session() as s, s.begin():
            candidates = tuned_encoders.due(s, now=now, settled=settled, limit=_TUNE_CANDIDATES)
        for team, name in candidates:
            with self._session() as s, s.begin():
                job = tuned_encoders.take(
                    s,
                    team,
                    name,
                    owner=owner,
                    now=now,
                    settled=settled,
                    until=now + timedelta(seconds=lease),
                )
            if job is not None:
                return job
        return None

    def renew_tune(self, job: records.TuneJob, *, owner: str, lease_seconds: float) -> bool:
        """Hold a claimed job `lease_seconds` longer (a heartbeat while the tune runs); False when
        `owner` no longer holds it: another process took it, or the set was removed."""
        lease = validation.duration(lease_seconds, what="lease")
        with self._session() as s, s.begin():
            return tuned_encoders.renew(s, job, owner=owner, until=utcnow() + timedelta(seconds=lease))

    def finish_tune(self, job: records.TuneJob, *, owner: str) -> bool:
        """The tune of a claimed job is done (and saved): delete the job, True. When the set was
        edited or a tune asked for since the claim, the job stays, given back to be tuned again
        once settled, False; False too when `owner` no longer holds it (nothing is changed)."""
        with self._session() as s, s.begin():
            return tuned_encoders.finish(s, job, owner=owner)

    def fail_tune(
        self, job: records.TuneJob, *, owner: str, error: str, retry_after: float, max_attempts: int
    ) -> bool:
        """The tune of a claimed job failed with `error` (kept cut to 500 characters): give the
        job back, not to be taken for `retry_after` seconds, True. Once it has been taken
        `max_attempts` times since it was last asked for, delete it instead, False (given up;
        the error goes with it, so log it). When `owner` no longer holds it, nothing changes
        (True: the job is still there, someone else's).
        """
        wait = validation.duration(retry_after, what="retry delay")
        limit = validation.whole(max_attempts, what="maximum attempts", minimum=1)
        with self._session() as s, s.begin():
            return tuned_encoders.fail(
                s,
                job,
                owner=owner,
                error=error,
                not_before=utcnow() + timedelta(seconds=wait),
                max_attempts=limit,
            )

    @read_retried
    def tune_jobs(self, team_id: str) -> list[records.TuneJob]:
        """The workspace's pending and running tune jobs, by set name (for display)."""
        with self._session() as s, s.begin():
            return tuned_encoders.jobs(s, team_id)

    # -- usage limits ----------------------------------------------------------------------

    def consume_usage(
        self,
        team_id: str,
        user_id: str | None,
        day: date,
        n: int = 1,
        *,
        user_limit: int | None,
        team_limit: int | None,
    ) -> Scope | None:
        """Count `n` Gemini calls for the user and the workspace on `day`, unless either count
        would pass its limit (None: that count is not kept); atomic across processes.

        Returns None when the calls were counted, else which limit ("user" or "team") refused
        them, in which case nothing was counted.
        """
        try:
            with self._session() as s, s.begin():
                usage_counters.consume(
                    s, team_id, user_id, day, int(n), user_limit=user_limit, team_limit=team_limit
                )
        except usage_counters.Refused as refused:
            return refused.scope
        return None

    @read_retried
    def usage(self, team_id: str, user_id: str | None, day: date) -> UsageCount:
        """The Gemini calls counted on `day` for the user and for the whole workspace."""
        with self._session() as s, s.begin():
            return usage_counters.count(s, team_id, user_id, day)

    def prune_usage(self, before: date) -> int:
        """Forget the counters of days before `before`; returns how many rows went.

        Limits are per UTC day, so only today's counters are read: older ones are kept a while for
        whoever looks at the table, then pruned (`bot.background.Housekeeping`).
        """
        with self._session() as s, s.begin():
            return usage_counters.prune(s, before)
