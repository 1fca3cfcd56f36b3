"""Gemini's answers in Slack and the feedback on them, on SQLite and PostgreSQL through the migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from core.errors import InvalidInput, NotFound
from core.store import ModelRating, Store
from core.store.schema import AnswerFeedbackRow, AnswerRow

FLASH = "gemini-2.5-flash"
PRO = "gemini-2.5-pro"


def verdicts(store: Store) -> list[tuple[int, str, bool]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(AnswerFeedbackRow.answer_id, AnswerFeedbackRow.user_id, AnswerFeedbackRow.good).order_by(
                AnswerFeedbackRow.answer_id, AnswerFeedbackRow.user_id
            )
        ).all()
    return [(int(a), str(u), bool(g)) for a, u, g in rows]


def answers_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(AnswerRow)).scalar_one())


def age(store: Store, answer_id: int, days: float) -> None:
    """Move an answer's creation `days` into the past."""
    with store.engine.begin() as conn:
        conn.execute(
            update(AnswerRow)
            .where(AnswerRow.id == answer_id)
            .values(created_at=datetime.now(UTC) - timedelta(days=days))
        )


def month_ago() -> datetime:
    return datetime.now(UTC) - timedelta(days=30)


def test_an_answer_is_recorded_with_where_it_is_and_its_model(store: Store) -> None:
    first = store.record_answer("T1", "C1", message_ts="1700000000.000100", model=FLASH)
    second = store.record_answer(" T1 ", "C1", message_ts=None, model=PRO)  # a response_url answer
    assert second != first
    with store.engine.connect() as conn:
        row = conn.execute(select(AnswerRow).where(AnswerRow.id == second)).one()
    assert (row.team_id, row.channel_id, row.message_ts, row.model) == ("T1", "C1", None, PRO)
    with pytest.raises(InvalidInput):
        store.record_answer("T1", "C1", message_ts=None, model=" ")


def test_the_latest_press_of_a_person_wins(store: Store) -> None:
    answer = store.record_answer("T1", "C1", message_ts="1.2", model=FLASH)
    assert store.rate_answer("T1", answer, "U1", good=True) == FLASH
    store.rate_answer("T1", answer, "U1", good=False)
    assert verdicts(store) == [(answer, "U1", False)]
    store.rate_answer("T1", answer, "U2", good=True)
    assert verdicts(store) == [(answer, "U1", False), (answer, "U2", True)]


def test_another_workspaces_answer_or_an_unknown_one_is_not_found(store: Store) -> None:
    answer = store.record_answer("T1", "C1", message_ts="1.2", model=FLASH)
    with pytest.raises(NotFound):
        store.rate_answer("T2", answer, "U1", good=True)
    with pytest.raises(NotFound):
        store.rate_answer("T1", answer + 1000, "U1", good=True)
    assert verdicts(store) == []


def test_ratings_count_rated_answers_per_model_in_the_window(store: Store) -> None:
    def answered(model: str, *goods: bool, team: str = "T1") -> int:
        answer = store.record_answer(team, "C1", message_ts=None, model=model)
        for n, good in enumerate(goods):
            store.rate_answer(team, answer, f"U{n}", good=good)
        return answer

    answered(FLASH, True)
    answered(FLASH, True, True, False)  # most said good: good
    answered(FLASH, True, False)  # a tie: not good
    answered(FLASH, False)
    answered(FLASH)  # no feedback: not counted at all
    answered(PRO, True)
    answered(PRO, True, team="T2")  # another workspace's
    old = answered(PRO, False)
    age(store, old, 31)  # before the window
    assert store.answer_ratings("T1", since=month_ago()) == [
        ModelRating(model=FLASH, rated=4, good=2),
        ModelRating(model=PRO, rated=1, good=1),
    ]
    assert store.answer_ratings("T3", since=month_ago()) == []
    assert ModelRating(FLASH, rated=4, good=2).share == 0.5
    assert ModelRating(FLASH, rated=0, good=0).share == 0.0
    with pytest.raises(InvalidInput):
        store.answer_ratings("T1", since=datetime.now())


def test_prune_deletes_old_answers_and_their_feedback(store: Store) -> None:
    old = store.record_answer("T1", "C1", message_ts=None, model=FLASH)
    new = store.record_answer("T1", "C1", message_ts=None, model=FLASH)
    store.rate_answer("T1", old, "U1", good=True)
    store.rate_answer("T1", new, "U1", good=True)
    age(store, old, 40)
    assert store.prune_answers(month_ago()) == 1
    assert answers_count(store) == 1
    assert verdicts(store) == [(new, "U1", True)]
    assert store.prune_answers(month_ago()) == 0
    with pytest.raises(NotFound):
        store.rate_answer("T1", old, "U1", good=False)
