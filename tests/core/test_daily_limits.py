"""Daily Gemini limits: the atomic counters on SQLite and PostgreSQL, the meter, and what the
Gemini client charges (once per request, retries included; cache hits and the CLI never)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date

import pytest

from core import daily_limits
from core.daily_limits import Actor, Meter, UsageCount, UsageLimitReached, UsageLimits
from core.embeddings.base import TaskType
from core.embeddings.cache import CachedEmbedder
from core.gemini.embedder import GeminiEmbedder
from core.gemini.generation import generate
from core.gemini.images import prepare_image
from core.store import Store
from tests.support.gemini import GeminiStandIn
from tests.support.gemini_support import gemini_client, image_bytes

DAY = date(2025, 3, 14)


# -- the counters in the database -------------------------------------------------------------


def test_calls_are_counted_up_to_the_limit_and_no_further(store: Store) -> None:
    for _ in range(3):
        assert store.consume_usage("T1", "U1", DAY, user_limit=3, team_limit=None) is None
    assert store.consume_usage("T1", "U1", DAY, user_limit=3, team_limit=None) == "user"
    assert store.usage("T1", "U1", DAY) == UsageCount(user=3, team=0)
    # Another user, another day, another workspace: counted apart.
    assert store.consume_usage("T1", "U2", DAY, user_limit=3, team_limit=None) is None
    assert store.consume_usage("T1", "U1", date(2025, 3, 15), user_limit=3, team_limit=None) is None
    assert store.consume_usage("T2", "U1", DAY, user_limit=3, team_limit=None) is None
    assert store.usage("T1", "U2", DAY) == UsageCount(user=1, team=0)


def test_a_team_refusal_takes_nothing_from_the_user(store: Store) -> None:
    for user in ("U1", "U1"):
        assert store.consume_usage("T1", user, DAY, user_limit=5, team_limit=2) is None
    assert store.consume_usage("T1", "U2", DAY, user_limit=5, team_limit=2) == "team"
    # U2's own count went up inside the refused transaction, and came back down with it.
    assert store.usage("T1", "U2", DAY) == UsageCount(user=0, team=2)
    assert store.usage("T1", "U1", DAY) == UsageCount(user=2, team=2)


def test_more_calls_than_are_left_are_refused_whole(store: Store) -> None:
    assert store.consume_usage("T1", "U1", DAY, 2, user_limit=3, team_limit=3) is None
    assert store.consume_usage("T1", "U1", DAY, 2, user_limit=3, team_limit=3) == "user"
    assert store.consume_usage("T1", "U1", DAY, 1, user_limit=3, team_limit=3) is None
    assert store.usage("T1", "U1", DAY) == UsageCount(user=3, team=3)


def test_without_a_user_only_the_workspace_counts(store: Store) -> None:
    assert store.consume_usage("T1", None, DAY, user_limit=1, team_limit=2) is None
    assert store.consume_usage("T1", None, DAY, user_limit=1, team_limit=2) is None
    assert store.consume_usage("T1", None, DAY, user_limit=1, team_limit=2) == "team"
    assert store.usage("T1", None, DAY) == UsageCount(user=0, team=2)


def test_racing_processes_never_pass_the_limit(database_url: str) -> None:
    # Each thread has its own Store (its own engine and connections), as separate worker
    # processes would; all start together and ask for far more than the limits allow.
    workers, tries, user_limit, team_limit = 8, 12, 30, 40
    stores = [Store.open(database_url, migrate=False) for _ in range(workers)]
    start = threading.Barrier(workers)
    granted: list[tuple[str, int]] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work(number: int) -> None:
        user = "U1" if number % 2 else "U2"
        try:
            start.wait()
            for _ in range(tries):
                if (
                    stores[number].consume_usage(
                        "T1", user, DAY, user_limit=user_limit, team_limit=team_limit
                    )
                    is None
                ):
                    with lock:
                        granted.append((user, number))
        except BaseException as exc:  # surfaced below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for opened in stores:
        opened.close()
    assert not failures, failures
    # 96 asked for: each user gets at most 30, and the two together exactly the workspace's 40.
    per_user = {user: sum(1 for u, _ in granted if u == user) for user in ("U1", "U2")}
    assert len(granted) == team_limit and max(per_user.values()) <= user_limit
    check = Store.open(database_url, migrate=False)
    try:
        assert check.usage("T1", "U1", DAY) == UsageCount(user=per_user["U1"], team=team_limit)
        assert check.usage("T1", "U2", DAY) == UsageCount(user=per_user["U2"], team=team_limit)
    finally:
        check.close()


# -- the meter ----------------------------------------------------------------------------------


@dataclass
class Counter:
    """An in-memory `UsageCounter` that records how often the store would be asked."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    asked: int = 0

    def consume_usage(
        self,
        team_id: str,
        user_id: str | None,
        day: date,
        n: int = 1,
        *,
        user_limit: int | None,
        team_limit: int | None,
    ) -> daily_limits.Scope | None:
        self.asked += 1
        user_key, team_key = (team_id, user_id or ""), (team_id, "")
        if user_id and user_limit is not None and self.counts.get(user_key, 0) + n > user_limit:
            return "user"
        if team_limit is not None and self.counts.get(team_key, 0) + n > team_limit:
            return "team"
        if user_id:
            self.counts[user_key] = self.counts.get(user_key, 0) + n
        self.counts[team_key] = self.counts.get(team_key, 0) + n
        return None

    def usage(self, team_id: str, user_id: str | None, day: date) -> UsageCount:
        self.asked += 1
        user = self.counts.get((team_id, user_id), 0) if user_id else 0
        return UsageCount(user=user, team=self.counts.get((team_id, ""), 0))


def test_the_limit_sentences_say_whose_limit_and_when_it_resets() -> None:
    meter = Meter(Counter(), UsageLimits(user_daily=1, team_daily=3))
    meter.charge(Actor("T1", "U1"))
    with pytest.raises(UsageLimitReached) as mine:
        meter.charge(Actor("T1", "U1"))
    assert str(mine.value) == "you have used your 1 Gemini call for today; the limit resets at midnight UTC"
    assert mine.value.scope == "user"
    meter.charge(Actor("T1", "U2"))
    meter.charge(Actor("T1", "U3"))
    with pytest.raises(UsageLimitReached) as ours:
        meter.charge(Actor("T1", "U4"))
    assert str(ours.value) == (
        "this workspace has used its 3 Gemini calls for today; the limit resets at midnight UTC"
    )


def test_check_refuses_without_taking_anything() -> None:
    counter = Counter()
    meter = Meter(counter, UsageLimits(user_daily=2))
    meter.check(Actor("T1", "U1"))
    meter.charge(Actor("T1", "U1"), 2)
    with pytest.raises(UsageLimitReached):
        meter.check(Actor("T1", "U1"))
    meter.check(Actor("T1", "U2"))
    meter.check(Actor("T1", None))  # no user: only a workspace limit could refuse
    assert counter.counts == {("T1", "U1"): 2, ("T1", ""): 2}


def test_no_limit_means_no_counting_at_all() -> None:
    counter = Counter()
    meter = Meter(counter, UsageLimits())
    for _ in range(5):
        meter.charge(Actor("T1", "U1"))
        meter.check(Actor("T1", "U1"))
    assert counter.asked == 0


def test_charge_and_check_apply_only_inside_acting_for() -> None:
    counter = Counter()
    meter = Meter(counter, UsageLimits(user_daily=1))
    daily_limits.charge()  # no actor (the command line): nothing counted, nothing refused
    assert daily_limits.current_actor() is None
    with daily_limits.acting_for(meter, Actor("T1", "U1")):
        assert daily_limits.current_actor() == Actor("T1", "U1")
        daily_limits.charge()
        with pytest.raises(UsageLimitReached):
            daily_limits.check()
    assert daily_limits.current_actor() is None
    daily_limits.charge()
    daily_limits.check()
    assert counter.counts == {("T1", "U1"): 1, ("T1", ""): 1}


# -- what the Gemini client charges --------------------------------------------------------------


@pytest.fixture
def meter() -> Meter:
    return Meter(Counter(), UsageLimits(user_daily=2))


def counted(meter: Meter, user: str = "U1") -> int:
    return meter.counter.usage("T1", user, DAY).user


def test_answers_are_charged_and_the_third_never_reaches_gemini(
    gemini_standin: GeminiStandIn, meter: Meter
) -> None:
    client = gemini_client(gemini_standin)
    with daily_limits.acting_for(meter, Actor("T1", "U1")):
        generate(client, "one")
        generate(client, "two")
        with pytest.raises(UsageLimitReached):
            generate(client, "three")
    assert [r.json["contents"][0]["parts"][0]["text"] for r in gemini_standin.requests("generate")] == [
        "one",
        "two",
    ]
    assert counted(meter) == 2


def test_a_retried_per_minute_429_is_one_call(gemini_standin: GeminiStandIn, meter: Meter) -> None:
    gemini_standin.fail_next(2, status=429, retry_delay="0.01s", on="generate")
    client = gemini_client(gemini_standin)
    with daily_limits.acting_for(meter, Actor("T1", "U1")):
        generate(client, "again and again")
    assert [r.status for r in gemini_standin.requests("generate")] == [429, 429, 200]
    assert counted(meter) == 1


def test_the_command_line_is_not_counted(gemini_standin: GeminiStandIn, meter: Meter) -> None:
    client = gemini_client(gemini_standin)
    for n in range(4):
        generate(client, f"question {n}")
    assert len(gemini_standin.requests("generate")) == 4
    assert meter.counter.asked == 0  # type: ignore[attr-defined]


def test_an_upload_serves_its_answer_and_is_not_charged(gemini_standin: GeminiStandIn) -> None:
    meter = Meter(Counter(), UsageLimits(user_daily=1))
    big = prepare_image(image_bytes("PNG", size=(64, 64), noise=True))
    client = gemini_client(gemini_standin, inline_image_limit=8_000)
    with daily_limits.acting_for(meter, Actor("T1", "U1")):
        generate(client, "what is it?", images=[big])
        assert counted(meter) == 1
        # Over the limit, even the upload of the next answer's image is refused.
        other = prepare_image(image_bytes("PNG", size=(64, 64), noise=True))
        with pytest.raises(UsageLimitReached):
            generate(client, "and this one?", images=[other])
    assert [r.action for r in gemini_standin.requests()].count("upload.start") == 1
    assert len(gemini_standin.requests("generate")) == 1


def test_each_embedding_request_is_charged_even_from_the_embedders_threads(
    gemini_standin: GeminiStandIn,
) -> None:
    meter = Meter(Counter(), UsageLimits(user_daily=10))
    embedder = GeminiEmbedder(gemini_client(gemini_standin), dimensions=8, concurrency=3)
    texts = [f"text number {n}" for n in range(250)]  # three batches of at most 100
    with daily_limits.acting_for(meter, Actor("T1", "U1")):
        embedder.embed_batch(texts, task_type=TaskType.CLASSIFICATION)
    assert len(gemini_standin.requests("embed")) == 3
    assert counted(meter) == 3


def test_texts_served_from_the_cache_are_not_charged(gemini_standin: GeminiStandIn, store: Store) -> None:
    meter = Meter(Counter(), UsageLimits(user_daily=1))
    cached = CachedEmbedder(GeminiEmbedder(gemini_client(gemini_standin), dimensions=8), store)
    with daily_limits.acting_for(meter, Actor("T1", "U1")):
        cached.embed(["where is my parcel"], task_type=TaskType.CLASSIFICATION)
        # The limit is reached, yet the same text comes back from the cache as often as asked.
        for _ in range(3):
            cached.embed(["where is my parcel"], task_type=TaskType.CLASSIFICATION)
        with pytest.raises(UsageLimitReached):
            cached.embed(["a text never seen"], task_type=TaskType.CLASSIFICATION)
    assert len(gemini_standin.requests("embed")) == 1
    assert counted(meter) == 1
