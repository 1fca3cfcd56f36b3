"""Label sets, labels and examples: the queries behind `Store`, run inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, func, select, update
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.store import tuned_encoders
from core.store.records import AddResult, ExampleRecord, SetSummary, TrainingData
from core.store.schema import Example, Label, LabelSet, utcnow
from core.store.validation import CleanExample


def add(
    s: Session,
    team_id: str,
    set_name: str,
    rows: list[CleanExample],
    *,
    added_by: str | None,
    author_from_file: bool,
) -> AddResult:
    """Insert the rows that are not already there, each marked as added by `added_by` with an
    author from a file or not; see `Store.add_examples`."""
    label_set = s.scalar(select(LabelSet).where(LabelSet.team_id == team_id, LabelSet.name == set_name))
    if label_set is None:
        label_set = LabelSet(team_id=team_id, name=set_name, version=1)
        s.add(label_set)
        s.flush()
    label_ids = dict(s.execute(select(Label.name, Label.id).where(Label.set_id == label_set.id)).all())
    new_labels = [
        Label(set_id=label_set.id, name=name)
        for name in dict.fromkeys(r.label for r in rows)
        if name not in label_ids
    ]
    s.add_all(new_labels)
    s.flush()
    label_ids.update((label.name, label.id) for label in new_labels)

    existing = s.execute(
        select(Example.label_id, Example.text_hash)
        .join(Label, Example.label_id == Label.id)
        .where(Label.set_id == label_set.id)
    )
    seen = {(label_id, hash_) for label_id, hash_ in existing}
    new: list[Example] = []
    for row in rows:
        key = (label_ids[row.label], row.hash)
        if key in seen:
            continue
        seen.add(key)
        new.append(
            Example(
                label_id=key[0],
                text=row.text,
                text_hash=row.hash,
                author=row.author,
                source_url=row.source_url,
                added_by=added_by,
                author_from_file=author_from_file,
            )
        )
    s.add_all(new)
    s.flush()
    # Bumped even for a set created just now (version 1 = created, still empty), so that the
    # version counts edits the same way however the set came to exist.
    if new:
        bump(s, label_set.id)
    return AddResult(added=len(new), skipped=len(rows) - len(new), ids=[e.id for e in new])


def find_set(s: Session, team_id: str, set_name: str) -> LabelSet:
    name = set_name.strip()
    label_set = s.scalar(select(LabelSet).where(LabelSet.team_id == team_id.strip(), LabelSet.name == name))
    if label_set is None:
        raise NotFound(f"no label set '{name}' in this workspace")
    return label_set


def find_label(s: Session, label_set: LabelSet, label: str) -> int:
    name = label.strip()
    label_id = s.scalar(select(Label.id).where(Label.set_id == label_set.id, Label.name == name))
    if label_id is None:
        raise NotFound(f"no label '{name}' in set '{label_set.name}'")
    return label_id


def bump(s: Session, set_id: int) -> None:
    """Count an edit of the set: its version goes up and, when it has a tuned encoder or a tune
    job, a tune is asked for again (`tuned_encoders.edited`). Every edit path calls this in its own
    transaction, so none can change a tuned set without its re-tune being requested."""
    # Computed by the database, not read-modify-written here, so two concurrent edits of one
    # set both count: the classifier's model cache is keyed on this number. The UPDATE also
    # holds the set's row (PostgreSQL) until the commit, so edits of one set ask in turn.
    bumped = s.execute(
        update(LabelSet)
        .where(LabelSet.id == set_id)
        .values(version=LabelSet.version + 1, updated_at=utcnow())
        .returning(LabelSet.team_id, LabelSet.name)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if bumped is not None:
        tuned_encoders.edited(s, bumped.team_id, bumped.name)


def examples(
    s: Session, label_set: LabelSet, *, label_id: int | None = None, example_id: int | None = None
) -> list[ExampleRecord]:
    """The set's examples, optionally only one label's or one example, by label name then id."""
    query = (
        select(
            Example.id,
            Label.name,
            Example.text,
            Example.author,
            Example.source_url,
            Example.created_at,
            Example.added_by,
            Example.author_from_file,
        )
        .join(Label, Example.label_id == Label.id)
        .where(Label.set_id == label_set.id)
    )
    if label_id is not None:
        query = query.where(Label.id == label_id)
    if example_id is not None:
        query = query.where(Example.id == example_id)
    found = [ExampleRecord(*row) for row in s.execute(query).all()]
    # Sorted here rather than by ORDER BY: PostgreSQL collations and SQLite order text differently.
    return sorted(found, key=lambda r: (r.label, r.id))


def added_by(s: Session, team_id: str, example_id: int) -> str | None:
    """Who added the workspace's example `example_id`, as recorded with it (None when it is not)."""
    return s.scalar(
        select(Example.added_by)
        .join(Label, Example.label_id == Label.id)
        .join(LabelSet, Label.set_id == LabelSet.id)
        .where(LabelSet.team_id == team_id, Example.id == example_id)
    )


def summaries(s: Session, team_id: str, set_name: str | None = None) -> list[SetSummary]:
    query = (
        select(LabelSet.name, LabelSet.version, Label.name, func.count(Example.id), LabelSet.created_at)
        .select_from(LabelSet)
        .outerjoin(Label, Label.set_id == LabelSet.id)
        .outerjoin(Example, Example.label_id == Label.id)
        .where(LabelSet.team_id == team_id.strip())
        .group_by(LabelSet.id, LabelSet.name, LabelSet.version, Label.id, Label.name)
    )
    if set_name is not None:
        query = query.where(LabelSet.name == set_name.strip())
    versions: dict[str, int] = {}
    created: dict[str, datetime] = {}
    counts: dict[str, dict[str, int]] = {}
    for name, version, label, count, created_at in s.execute(query).all():
        versions[name] = version
        created[name] = created_at
        labels = counts.setdefault(name, {})
        if label is not None:
            labels[label] = count
    return [
        SetSummary(
            name=name,
            version=versions[name],
            label_counts=dict(sorted(counts[name].items())),
            created_at=created[name],
        )
        for name in sorted(versions)
    ]


def _snapshot(rows: Sequence[Row[int, str, int, str, datetime]], name: str) -> TrainingData:
    # Rows of (version, label, example id, text, created_at), one per example (or one with no
    # example for an empty label), all read by one SELECT.
    if not rows:
        raise NotFound(f"no label set '{name}' in this workspace")
    examples = sorted((label, id_, text) for _, label, id_, text, _ in rows if id_ is not None)
    return TrainingData(
        version=rows[0].version,
        labels=[label for label, _, _ in examples],
        texts=[text for _, _, text in examples],
        created_at=rows[0].created_at,
    )


def first_examples(s: Session, team_id: str, set_name: str, *, per_label: int) -> TrainingData:
    """The first `per_label` examples of every label (by id), in `training_data`'s order: what a
    prompt shows of a set, read without reading all of it. One SELECT, as `training_data`."""
    name = set_name.strip()
    rank = func.row_number().over(partition_by=Example.label_id, order_by=Example.id).label("rank")
    ranked = (
        select(Example.label_id, Example.id, Example.text, rank)
        .join(Label, Example.label_id == Label.id)
        .join(LabelSet, Label.set_id == LabelSet.id)
        .where(LabelSet.team_id == team_id.strip(), LabelSet.name == name)
        .subquery()
    )
    rows = s.execute(
        select(LabelSet.version, Label.name, ranked.c.id, ranked.c.text, LabelSet.created_at)
        .select_from(LabelSet)
        .outerjoin(Label, Label.set_id == LabelSet.id)
        .outerjoin(ranked, (ranked.c.label_id == Label.id) & (ranked.c.rank <= max(0, int(per_label))))
        .where(LabelSet.team_id == team_id.strip(), LabelSet.name == name)
    ).all()
    return _snapshot(rows, name)


def training_data(s: Session, team_id: str, set_name: str) -> TrainingData:
    # A single SELECT, so the version and the examples cannot come from two different moments
    # even under PostgreSQL's READ COMMITTED, where each statement sees its own snapshot.
    name = set_name.strip()
    rows = s.execute(
        select(LabelSet.version, Label.name, Example.id, Example.text, LabelSet.created_at)
        .select_from(LabelSet)
        .outerjoin(Label, Label.set_id == LabelSet.id)
        .outerjoin(Example, Example.label_id == Label.id)
        .where(LabelSet.team_id == team_id.strip(), LabelSet.name == name)
    ).all()
    return _snapshot(rows, name)
