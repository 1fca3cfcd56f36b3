"""The database schema as typed SQLAlchemy models.

These classes are the store's private business: `Store` turns rows into frozen dataclasses
before anything leaves `core.store`. The schema itself is created only by the Alembic
migrations in `migrations/versions`, never by `create_all`; `tests/migrations/test_migrations.py` fails
when the two drift apart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable, predictable constraint names: migrations refer to constraints by name, and without a
# convention each backend would invent its own.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TEAM_ID_LENGTH = 64
SET_NAME_LENGTH = 100
LABEL_NAME_LENGTH = 200
AUTHOR_LENGTH = 200
HASH_LENGTH = 64
ACTOR_LENGTH = 200


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware, in UTC.

    PostgreSQL keeps the zone (`timestamptz`); SQLite has no zone at all and hands back naive
    values. Storing UTC everywhere and re-attaching it on the way out makes both behave alike.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: The integer primary key most tables have (autoincrementing).
IntId = Annotated[int, mapped_column(Integer, primary_key=True)]
#: A moment stamped with the time the row is written (created, updated, received).
Stamp = Annotated[datetime, mapped_column(default=utcnow)]
#: A workspace key (`TEAM` or `ENTERPRISE:TEAM`), a label set's name, a sha256 in hex: the same
#: width in every table that holds one.
TeamId = Annotated[str, mapped_column(String(TEAM_ID_LENGTH))]
SetName = Annotated[str, mapped_column(String(SET_NAME_LENGTH))]
Hash = Annotated[str, mapped_column(String(HASH_LENGTH))]
#: A label's name, in the labels table and wherever a row names the label it was given.
LabelName = Annotated[str, mapped_column(String(LABEL_NAME_LENGTH))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        float: Double(),
        str: Text(),
    }


class LabelSet(Base):
    """A named group of labels in one workspace; `version` changes with every edit of its contents."""

    __tablename__ = "label_sets"
    __table_args__ = (UniqueConstraint("team_id", "name"),)

    id: Mapped[IntId]
    team_id: Mapped[TeamId]
    name: Mapped[SetName]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[Stamp]
    updated_at: Mapped[Stamp]


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("set_id", "name"),)

    id: Mapped[IntId]
    set_id: Mapped[int] = mapped_column(ForeignKey("label_sets.id", ondelete="CASCADE"))
    name: Mapped[LabelName]
    created_at: Mapped[Stamp]


class Example(Base):
    """One labelled text. `text_hash` makes the same text twice in one label a single example."""

    __tablename__ = "examples"
    __table_args__ = (UniqueConstraint("label_id", "text_hash"),)

    id: Mapped[IntId]
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"))
    text: Mapped[str]
    text_hash: Mapped[Hash]
    author: Mapped[str | None] = mapped_column(String(AUTHOR_LENGTH))
    source_url: Mapped[str | None]
    created_at: Mapped[Stamp]
    # The Slack user who added it, as Slack said (None: the command line, or from before
    # migration 0008, when only the change log knew).
    added_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    # True when `author` is a file's claim (an import), not Slack's word: it gives its author no
    # right to remove the example.
    author_from_file: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Embedding(Base):
    """A cached vector, shared by every workspace: the same text embeds the same everywhere."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("embedder", "model", "task_type", "dimensions", "text_hash"),)

    id: Mapped[IntId]
    embedder: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    task_type: Mapped[str] = mapped_column(String(32))
    dimensions: Mapped[int] = mapped_column(Integer)
    text_hash: Mapped[Hash]
    # Little-endian float32, dimensions * 4 bytes.
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[Stamp]


class Classification(Base):
    """The audit log: one row per classification answered, kept even if the set is later deleted."""

    __tablename__ = "classifications"
    # `recent_classifications` reads one workspace's newest rows.
    __table_args__ = (Index(None, "team_id", "created_at"),)

    id: Mapped[IntId]
    team_id: Mapped[TeamId]
    set_name: Mapped[SetName]
    user_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    text: Mapped[str]
    # None when the classifier abstained.
    label: Mapped[LabelName | None]
    confidence: Mapped[float]
    method: Mapped[str] = mapped_column(String(16))
    scores: Mapped[dict[str, float]] = mapped_column(JSON)
    created_at: Mapped[Stamp]


EVENT_ID_LENGTH = 64
CHANNEL_ID_LENGTH = 64
TS_LENGTH = 32


class SlackEvent(Base):
    """A request from Slack taken on: an Events API delivery (by `event_id`, which Slack reuses when
    it redelivers) or an interaction (by its `trigger_id`), until its work is finished.

    While the work runs, the process doing it keeps `lease_until` in the future and `payload` holds
    the request (without its verification token), so that if the process dies, another one can run
    it again. A finished request keeps only its id, to drop redeliveries, until it is pruned.
    """

    __tablename__ = "slack_events"
    __table_args__ = (
        UniqueConstraint("event_id"),
        Index(None, "received_at"),
        Index(None, "finished_at", "lease_until"),
    )

    id: Mapped[IntId]
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_LENGTH))
    team_id: Mapped[TeamId]
    received_at: Mapped[Stamp]
    lease_until: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=1)
    payload: Mapped[str | None]


class ConversationTurn(Base):
    """One message of a Gemini conversation held in a Slack thread, the user's or the model's."""

    __tablename__ = "conversation_turns"
    # `conversation` reads one thread's turns in order; the retention prune, the oldest turns.
    __table_args__ = (Index(None, "team_id", "channel_id", "thread_ts", "id"), Index(None, "created_at"))

    id: Mapped[IntId]
    team_id: Mapped[TeamId]
    channel_id: Mapped[str] = mapped_column(String(CHANNEL_ID_LENGTH))
    thread_ts: Mapped[str] = mapped_column(String(TS_LENGTH))
    role: Mapped[str] = mapped_column(String(8))
    text: Mapped[str]
    created_at: Mapped[Stamp]


class TurnImage(Base):
    """An image that came with a turn, kept so that later turns can still show it to Gemini."""

    __tablename__ = "turn_images"

    id: Mapped[IntId]
    turn_id: Mapped[int] = mapped_column(ForeignKey("conversation_turns.id", ondelete="CASCADE"), index=True)
    mime_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[Hash]


class EvaluationRun(Base):
    """The headline figures of one evaluation of a label set, for App Home and for trends."""

    __tablename__ = "evaluations"
    __table_args__ = (Index(None, "team_id", "set_name", "created_at"),)

    id: Mapped[IntId]
    team_id: Mapped[TeamId]
    set_name: Mapped[SetName]
    set_version: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(64))
    n: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float]
    coverage: Mapped[float]
    # None when the classifier would answer none of the examples at its thresholds.
    answered_accuracy: Mapped[float | None]
    created_at: Mapped[Stamp]
    # The expected calibration error of the stated confidence (None: recorded before 0012).
    ece: Mapped[float | None]


# -- Slack's OAuth tables ---------------------------------------------------------------------------
# Read and written by slack_sdk's SQLAlchemyInstallationStore and SQLAlchemyOAuthStateStore (in
# `bot.oauth`), never by `Store`. They are declared here, column for column as slack_sdk builds
# them (`build_installations_table`, `build_bots_table`, `build_oauth_states_table`), only so that
# migration 0003 and `alembic check` know them; `core` does not import slack_sdk, and
# tests/migrations/test_migrations.py fails when slack_sdk's definitions and these drift apart. The naive
# `DateTime` columns are slack_sdk's choice: it stores UTC without a zone. One difference: the
# token columns are TEXT, not VARCHAR(200) (migration 0007), because they hold the tokens
# encrypted (`bot.token_crypto`), and an encrypted rotating token is some 320 characters.


def _app_and_enterprise_columns() -> list[Column[Any]]:
    """The columns both of slack_sdk's installation tables open with (new objects each call: a
    column belongs to one table)."""
    return [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("client_id", String(32), nullable=False),
        Column("app_id", String(32), nullable=False),
        Column("enterprise_id", String(32)),
        Column("enterprise_name", String(200)),
    ]


def _team_and_bot_columns() -> list[Column[Any]]:
    """The workspace and bot token columns both of slack_sdk's installation tables hold."""
    return [
        Column("team_id", String(32)),
        Column("team_name", String(200)),
        Column("bot_token", Text),
        Column("bot_id", String(32)),
        Column("bot_user_id", String(32)),
        Column("bot_scopes", String(1000)),
        Column("bot_refresh_token", Text),
        Column("bot_token_expires_at", DateTime),
    ]


slack_installations = Table(
    "slack_installations",
    Base.metadata,
    *_app_and_enterprise_columns(),
    Column("enterprise_url", String(200)),
    *_team_and_bot_columns(),
    Column("user_id", String(32), nullable=False),
    Column("user_token", Text),
    Column("user_scopes", String(1000)),
    Column("user_refresh_token", Text),
    Column("user_token_expires_at", DateTime),
    Column("incoming_webhook_url", String(200)),
    Column("incoming_webhook_channel", String(200)),
    Column("incoming_webhook_channel_id", String(200)),
    Column("incoming_webhook_configuration_url", String(200)),
    Column("is_enterprise_install", Boolean, nullable=False),
    Column("token_type", String(32)),
    Column("installed_at", DateTime, nullable=False),
    Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
)

slack_bots = Table(
    "slack_bots",
    Base.metadata,
    *_app_and_enterprise_columns(),
    *_team_and_bot_columns(),
    Column("is_enterprise_install", Boolean, nullable=False),
    Column("installed_at", DateTime, nullable=False),
    Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
)

slack_oauth_states = Table(
    "slack_oauth_states",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(200), nullable=False),
    Column("expire_at", DateTime, nullable=False),
)


# -- bulk jobs --------------------------------------------------------------------------------------

JOB_KIND_LENGTH = 32
JOB_STATE_LENGTH = 16
JOB_OWNER_LENGTH = 200


class Job(Base):
    """A long piece of work (a CSV to classify) kept with its progress, so a restart resumes it.

    `state` is queued, running, done or failed. A running job belongs to `owner` (one process)
    until `lease_expires_at`; the owner renews the lease while it works, and any process may take
    over a job whose lease has run out.
    """

    __tablename__ = "jobs"
    # Processes look for queued jobs and running jobs with a lapsed lease.
    __table_args__ = (Index(None, "state", "lease_expires_at"),)

    id: Mapped[IntId]
    team_id: Mapped[TeamId]
    kind: Mapped[str] = mapped_column(String(JOB_KIND_LENGTH))
    state: Mapped[str] = mapped_column(String(JOB_STATE_LENGTH))
    # The input as it came (a CSV file's text, UTF-8): bytes, because PostgreSQL's text refuses NUL.
    input: Mapped[bytes] = mapped_column(LargeBinary)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    rows_total: Mapped[int] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None]
    owner: Mapped[str | None] = mapped_column(String(JOB_OWNER_LENGTH))
    lease_expires_at: Mapped[datetime | None]
    # How many times a process has taken the job on: one that keeps dying is given up.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[Stamp]
    updated_at: Mapped[Stamp]


class JobRow(Base):
    """The output for one input row of a job, written in the transaction that advances `rows_done`."""

    __tablename__ = "job_rows"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    row_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    output: Mapped[dict[str, Any]] = mapped_column(JSON)


# -- usage limits and the label-set change log ------------------------------------------------------

ACTION_LENGTH = 16
USER_ID_LENGTH = 64


class UsageCounter(Base):
    """Gemini calls counted for one user (or, with `user_id` "", the whole workspace) on one UTC day.

    Written only by one atomic `UPDATE … SET used = used + n WHERE used + n <= limit`, so the
    limits hold across processes (`core.store.usage`).
    """

    __tablename__ = "usage_counters"

    team_id: Mapped[str] = mapped_column(String(TEAM_ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class LabelChange(Base):
    """One change to a label set (who, what, when), written in the transaction of the change.

    Not tied to the set by a foreign key: the log outlives the examples, labels and sets it names.
    `actor` is a Slack user id, `cli` or `cli:NAME` for the command line, None when unknown.
    """

    __tablename__ = "label_changes"
    # `/label history` reads one workspace's newest changes, optionally of one set.
    __table_args__ = (Index(None, "team_id", "set_name", "id"), Index(None, "team_id", "id"))

    id: Mapped[IntId]
    team_id: Mapped[TeamId]
    set_name: Mapped[SetName]
    actor: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    # add, import, remove, remove_label, remove_set
    action: Mapped[str] = mapped_column(String(ACTION_LENGTH))
    label: Mapped[LabelName | None]
    example_id: Mapped[int | None] = mapped_column(Integer)
    # The example's text, cut to a preview.
    text: Mapped[str | None]
    # How many examples the change added or removed.
    count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[Stamp]


# -- Gemini's answers for unsure classifications ----------------------------------------------------

MODEL_NAME_LENGTH = 200


class Escalation(Base):
    """Gemini's answer for a text the embedding classifier was not sure of, at one version of a set.

    `label` is None when Gemini found that no label fits. `prompt_hash` fingerprints the whole
    question asked (`core.gemini.escalation`): an answer is reused only for the very same one, so
    a set removed and created again under its old name, at a version it had before, is asked
    afresh.
    """

    __tablename__ = "escalations"

    team_id: Mapped[str] = mapped_column(String(TEAM_ID_LENGTH), primary_key=True)
    set_name: Mapped[str] = mapped_column(String(SET_NAME_LENGTH), primary_key=True)
    set_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(MODEL_NAME_LENGTH), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    prompt_hash: Mapped[Hash]
    label: Mapped[LabelName | None]
    created_at: Mapped[Stamp]


# -- fitted classifiers, kept so that no process fits the same one twice ---------------------------


class TrainedModelRow(Base):
    """A classifier fitted on one version of a set (`core.classify.TrainedModel.to_bytes`).

    `fit_key` fingerprints everything else the fit depends on (method, embedding model, softmax
    temperature, target coverage); `data_hash` the examples it was fitted on, so that a set removed
    and created again under its old name, at a version it had before, is never served the old
    model. `format` is the layout of `model`: a row in another one is fitted again, never read.
    """

    __tablename__ = "trained_models"

    team_id: Mapped[str] = mapped_column(String(TEAM_ID_LENGTH), primary_key=True)
    set_name: Mapped[str] = mapped_column(String(SET_NAME_LENGTH), primary_key=True)
    set_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    fit_key: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    data_hash: Mapped[Hash]
    format: Mapped[int] = mapped_column(Integer)
    model: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[Stamp]


# -- tuned encoders and the requests to tune a set again -------------------------------------------

TUNED_BASE_LENGTH = 200
TUNED_KIND_LENGTH = 32
TUNE_ERROR_LENGTH = 500


class TunedEncoderRow(Base):
    """A set's fine-tuned embedding model, as the tuner wrote it (opaque bytes in `format`).

    One row per set: the newest tune replaces the last. `base` names the embedder it was tuned
    from, `kind` whether `blob` is a whole encoder or an adapter over the base's vectors, and
    `digest` is the sha256 of `blob`, computed by the store. `blob` is deferred: the row's other
    columns are read on every classification, the bytes only when a process loads the model.
    """

    __tablename__ = "tuned_encoders"

    team_id: Mapped[str] = mapped_column(String(TEAM_ID_LENGTH), primary_key=True)
    set_name: Mapped[str] = mapped_column(String(SET_NAME_LENGTH), primary_key=True)
    set_version: Mapped[int] = mapped_column(Integer)
    base: Mapped[str] = mapped_column(String(TUNED_BASE_LENGTH))
    kind: Mapped[str] = mapped_column(String(TUNED_KIND_LENGTH))
    digest: Mapped[Hash]
    format: Mapped[int] = mapped_column(Integer)
    blob: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    examples: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float]
    created_at: Mapped[Stamp]


class TuneJobRow(Base):
    """A request to tune a set again, kept until a process has done it (`core.store.tuned_encoders`).

    `requested_at` is the last time it was asked for (each edit of a tuned set moves it), so a job
    is due once the set's edits have settled. A process holds it as `owner` until `lease_until`;
    `attempts` counts how many took it on since it was last asked for, `not_before` holds a failed
    job back until then.
    """

    __tablename__ = "tune_jobs"

    team_id: Mapped[str] = mapped_column(String(TEAM_ID_LENGTH), primary_key=True)
    set_name: Mapped[str] = mapped_column(String(SET_NAME_LENGTH), primary_key=True)
    requested_at: Mapped[datetime]
    # The Slack user (or `cli`) who asked explicitly; None when edits asked for it.
    requested_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    owner: Mapped[str | None] = mapped_column(String(JOB_OWNER_LENGTH))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(TUNE_ERROR_LENGTH))
    not_before: Mapped[datetime | None]
    updated_at: Mapped[Stamp]


# -- Gemini's answers in Slack and what people thought of them --------------------------------------


class AnswerRow(Base):
    """A Gemini answer shown in Slack, recorded when it is finished so that its feedback buttons can
    name it by `id` (the buttons carry the id, never the text, which is not kept here).

    `message_ts` is None when the answer went out through a response_url, which returns no ts.
    """

    __tablename__ = "answers"
    # App Home reads one workspace's recent answers; the retention prune, the oldest of all.
    __table_args__ = (Index(None, "team_id", "created_at"), Index(None, "created_at"))

    id: Mapped[IntId]
    team_id: Mapped[TeamId]
    channel_id: Mapped[str] = mapped_column(String(CHANNEL_ID_LENGTH))
    message_ts: Mapped[str | None] = mapped_column(String(TS_LENGTH))
    model: Mapped[str] = mapped_column(String(MODEL_NAME_LENGTH))
    created_at: Mapped[Stamp]


class AnswerFeedbackRow(Base):
    """One person's verdict on one answer: a later press by the same person replaces it."""

    __tablename__ = "answer_feedback"

    answer_id: Mapped[int] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH), primary_key=True)
    good: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[Stamp]


# -- prompt experiments ----------------------------------------------------------------------------

EXPERIMENT_NAME_LENGTH = 200
MODEL_NAME_LENGTH = 200
OUTCOME_LENGTH = 16
STATE_LENGTH = 40


class Experiment(Base):
    """A prompt run over a table on one or more models (`core.experiments`), with its locked spec.

    `cases` is the input table as read (columns and rows), so a rerun needs no file; `job_id`
    is the stored job that runs it, until that job is pruned. `origin` is `cli` or `slack`.
    """

    __tablename__ = "experiments"
    __table_args__ = (Index(None, "team_id", "created_at"),)

    id: Mapped[IntId]
    team_id: Mapped[TeamId]
    name: Mapped[str] = mapped_column(String(EXPERIMENT_NAME_LENGTH))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    cases: Mapped[dict[str, Any]] = mapped_column(JSON)
    rows: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(EXPERIMENT_NAME_LENGTH))
    origin: Mapped[str] = mapped_column(String(OUTCOME_LENGTH))
    created_by: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    rerun_of: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(STATE_LENGTH))
    error: Mapped[str | None]
    created_at: Mapped[Stamp]
    finished_at: Mapped[datetime | None]


class ExperimentResult(Base):
    """One model's reply to one row, its grade and its cost, written as soon as it arrives.

    `outcome` is answered, refused, stopped or error (`core.gemini.outcomes`); `score` is
    None for anything not graded. The judge's tokens are kept apart from the answer's.
    """

    __tablename__ = "experiment_results"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(MODEL_NAME_LENGTH), primary_key=True)
    row_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt: Mapped[str]
    outcome: Mapped[str] = mapped_column(String(OUTCOME_LENGTH))
    answer: Mapped[str]
    reason: Mapped[str | None]
    score: Mapped[float | None]
    judge_reason: Mapped[str | None]
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    thinking_tokens: Mapped[int] = mapped_column(Integer)
    judge_input_tokens: Mapped[int] = mapped_column(Integer)
    judge_output_tokens: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float]
    cached: Mapped[bool] = mapped_column(Boolean)
    batch: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[Stamp]


class GenerationCacheEntry(Base):
    """Gemini's reply to one exact request (`core.experiments.spec.request_key`), so that running
    the same request again costs nothing. Errors are never kept."""

    __tablename__ = "generation_cache"
    __table_args__ = (Index(None, "created_at"),)

    key: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    model: Mapped[str] = mapped_column(String(MODEL_NAME_LENGTH))
    outcome: Mapped[str] = mapped_column(String(OUTCOME_LENGTH))
    text: Mapped[str]
    reason: Mapped[str | None]
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    thinking_tokens: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float]
    created_at: Mapped[Stamp]


class ExperimentBatch(Base):
    """A Gemini batch job submitted for one model of an experiment: its name survives a restart.

    `rows` are the row indexes it carries (those without a result when it was submitted).
    """

    __tablename__ = "experiment_batches"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(MODEL_NAME_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(EXPERIMENT_NAME_LENGTH))
    state: Mapped[str] = mapped_column(String(STATE_LENGTH))
    rows: Mapped[list[int]] = mapped_column(JSON)
    error: Mapped[str | None]
    submitted_at: Mapped[Stamp]
    updated_at: Mapped[Stamp]
