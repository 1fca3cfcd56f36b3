"""Gemini's cached answers for unsure classifications, on SQLite and PostgreSQL through the migrations."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from sqlalchemy import func, select

from core.errors import InvalidInput
from core.store import EscalationKey, Store, text_hash
from core.store.schema import Escalation

KEY = EscalationKey("T1", "support", 3, "gemini-2.5-flash", text_hash("is it raining?"))
PROMPT = "a" * 64
OTHER_PROMPT = "b" * 64


def rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Escalation)).scalar_one())


def test_an_answer_is_kept_and_read_back_by_its_whole_key(store: Store) -> None:
    assert store.escalation(KEY) is None
    store.save_escalation(KEY, prompt_hash=PROMPT, label="weather")
    found = store.escalation(KEY)
    assert found is not None and (found.label, found.prompt_hash) == ("weather", PROMPT)
    assert found.created_at.tzinfo is not None
    # Names are stripped like everywhere in the store.
    assert store.escalation(dataclasses.replace(KEY, team_id=" T1 ", set_name="support ")) == found
    for part, other in [
        ("team_id", "T2"),
        ("set_name", "sales"),
        ("set_version", 4),
        ("model", "gemini-2.5-pro"),
        ("text_hash", text_hash("is it snowing?")),
    ]:
        assert store.escalation(dataclasses.replace(KEY, **{part: other})) is None, part


def test_none_of_these_is_an_answer_too(store: Store) -> None:
    store.save_escalation(KEY, prompt_hash=PROMPT, label=None)
    found = store.escalation(KEY)
    assert found is not None and found.label is None


def test_saving_again_replaces_the_answer(store: Store) -> None:
    store.save_escalation(KEY, prompt_hash=PROMPT, label="weather")
    store.save_escalation(KEY, prompt_hash=OTHER_PROMPT, label=None)
    found = store.escalation(KEY)
    assert found is not None and (found.label, found.prompt_hash) == (None, OTHER_PROMPT)
    assert rows(store) == 1


def test_a_newer_version_forgets_the_sets_older_answers(store: Store) -> None:
    store.save_escalation(KEY, prompt_hash=PROMPT, label="weather")
    other_set = dataclasses.replace(KEY, set_name="sales")
    store.save_escalation(other_set, prompt_hash=PROMPT, label="leads")
    newer = dataclasses.replace(KEY, set_version=4, text_hash=text_hash("sunny?"))
    store.save_escalation(newer, prompt_hash=PROMPT, label="weather")
    assert store.escalation(KEY) is None
    assert store.escalation(newer) is not None and store.escalation(other_set) is not None


def test_concurrent_saves_of_the_same_answer(store: Store, database_url: str) -> None:
    # Two workers asked Gemini the same question at once: both save, neither fails.
    stores = [Store.open(database_url) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def save(mine: Store) -> None:
        try:
            barrier.wait()
            mine.save_escalation(KEY, prompt_hash=PROMPT, label="weather")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for opened in stores:
        opened.close()
    assert errors == [] and rows(store) == 1


@pytest.mark.parametrize(
    ("key", "prompt_hash", "label", "message"),
    [
        (dataclasses.replace(KEY, text_hash="abc"), PROMPT, "x", "not a text hash"),
        (KEY, "abc", "x", "not a prompt hash"),
        (dataclasses.replace(KEY, model=" "), PROMPT, "x", "model name is empty"),
        (KEY, PROMPT, "x" * 201, "label name is longer"),
    ],
)
def test_bad_keys_and_answers_are_refused(
    store: Store, key: EscalationKey, prompt_hash: str, label: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        store.save_escalation(key, prompt_hash=prompt_hash, label=label)
    assert rows(store) == 0
