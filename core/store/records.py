"""The plain values that go in and out of `Store`: no ORM object ever leaves `core.store`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


def from_row(record: type[R], row: object, **converted: Any) -> R:
    """A `record` whose fields are the same-named attributes of an ORM `row`, but for those given
    in `converted` (a column that needs turning into a plain value, or one the row lacks)."""
    copied = {f.name: getattr(row, f.name) for f in fields(record) if f.name not in converted}
    return record(**copied, **converted)


def text_hash(text: str) -> str:
    """The key under which a text is deduplicated and its embedding cached: sha256 of the stripped text.

    Stripping first means a pasted message with a trailing newline is the same example, and
    reuses the same cached vector, as the one typed without it.
    """
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ExampleInput:
    """One example to add: a label name and a text, with where it came from when known."""

    label: str
    text: str
    author: str | None = None
    source_url: str | None = None


@dataclass(frozen=True)
class ExampleRecord:
    """One stored example. `added_by` is the Slack user who added it, as Slack said (None for the
    command line, and for examples from before that was kept: `Store.example_added_by` then asks
    the change log); `author_from_file` says that `author` is an imported file's claim, not
    Slack's word."""

    id: int
    label: str
    text: str
    author: str | None
    source_url: str | None
    created_at: datetime
    added_by: str | None
    author_from_file: bool


@dataclass(frozen=True)
class SetSummary:
    """A label set's name, version and how many examples each label has (labels in name order).

    `created_at` tells apart a set removed and made again under the same name, whose version
    count starts again (and whose row id SQLite may reuse): with `version` it names one state of
    a set for good."""

    name: str
    version: int
    label_counts: dict[str, int]
    created_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class AddResult:
    """What `add_examples` did: `ids` are the new examples' ids, in the order they were given."""

    added: int
    skipped: int
    ids: list[int]


@dataclass(frozen=True)
class TrainingData:
    """A snapshot of a set: `labels[i]` is the label of `texts[i]`; `version` is the set's at that moment."""

    version: int
    labels: list[str]
    texts: list[str]
    created_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CacheKey:
    """Which model produced a vector; vectors are shared only between identical keys.

    `task_type` is "" for embedders whose vectors do not depend on it.
    """

    embedder: str
    model: str
    task_type: str
    dimensions: int


@dataclass(frozen=True)
class ClassificationRecord:
    id: int
    team_id: str
    set_name: str
    user_id: str | None
    source: str
    text: str
    label: str | None
    confidence: float
    method: str
    scores: dict[str, float]
    created_at: datetime


@dataclass(frozen=True)
class TurnImageRecord:
    """An image kept with a conversation turn: its bytes, MIME type and sha256 (hex)."""

    mime_type: str
    data: bytes
    sha256: str


@dataclass(frozen=True)
class TurnRecord:
    """One turn of a thread's conversation with Gemini; `role` is "user" or "model".

    `images_left_out` counts the turn's images a bounded read did not read (`Store.conversation`
    with `max_image_bytes`): they are stored, but not in `images`.
    """

    id: int
    role: str
    text: str
    images: tuple[TurnImageRecord, ...]
    created_at: datetime
    images_left_out: int = 0


@dataclass(frozen=True)
class EvaluationRecord:
    """The headline figures of one evaluation of a label set, at the set version it saw."""

    id: int
    team_id: str
    set_name: str
    set_version: int
    method: str
    strategy: str
    n: int
    accuracy: float
    coverage: float
    answered_accuracy: float | None
    created_at: datetime
    ece: float | None = None


@dataclass(frozen=True)
class LabelChangeRecord:
    """One change to a label set: who (`actor`: a Slack user id, `cli`/`cli:NAME`, None when
    unknown), what (`action`: add, import, remove, remove_label, remove_set; the label, the
    example and a preview of its text where they apply; `count` examples), and when."""

    id: int
    set_name: str
    actor: str | None
    action: str
    label: str | None
    example_id: int | None
    text: str | None
    count: int
    created_at: datetime


@dataclass(frozen=True)
class TunedEncoderInput:
    """A tuned encoder to keep for a set (`Store.save_tuned_encoder`): which version of the set it
    was tuned on, from which embedder (`base`, e.g. "local/all-MiniLM-L6-v2/384"), what `kind` of
    model its bytes are ("encoder" or "adapter") in which `format`, and on how many `examples` in
    how many `seconds`. No digest: the store computes it from the bytes."""

    team_id: str
    set_name: str
    set_version: int
    base: str
    kind: str
    format: int
    examples: int
    seconds: float


@dataclass(frozen=True)
class TunedEncoderInfo:
    """What is known of a set's tuned encoder without reading its bytes; `digest` (sha256 hex of
    the bytes) is what `Store.tuned_encoder_blob` asks for them by."""

    team_id: str
    set_name: str
    set_version: int
    base: str
    kind: str
    digest: str
    format: int
    examples: int
    seconds: float
    created_at: datetime


@dataclass(frozen=True)
class TuneJob:
    """A request to tune a set again. `requested_at` is when it was last asked for (an edit of the
    set, or `/label tune`); `attempts` how many processes took it on since; `requested_by` who
    asked explicitly (None: edits did). A claimed job is handed back to `renew_tune`,
    `finish_tune` or `fail_tune` as it is. For display: who holds it until when, the last failure,
    and the moment before which a failed job is not tried again."""

    team_id: str
    set_name: str
    requested_at: datetime
    attempts: int
    requested_by: str | None
    owner: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    not_before: datetime | None = None
