"""Gemini embeddings through the real SDK against the stand-in: the wire, batching, pacing, the cache."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from core.embeddings.base import TaskType
from core.embeddings.cache import WRITE_EVERY, CachedEmbedder
from core.embeddings.factory import make_embedder
from core.errors import DatabaseUnavailable, InvalidInput
from core.gemini.embedder import GeminiEmbedder
from core.gemini.failures import GeminiNotConfigured, GeminiRejected, QuotaExhausted
from core.gemini.ratelimit import RateLimiter
from core.settings import Settings
from core.store import CacheKey, Store
from tests.support.gemini import GeminiStandIn, RecordedRequest, bag_of_words_vector
from tests.support.gemini_support import gemini_client

NO_DOTENV = Path("/nonexistent/.env")
BATCH_ACTION = "batchEmbedContents"


def embedder(standin: GeminiStandIn, **kwargs: object) -> GeminiEmbedder:
    return GeminiEmbedder(gemini_client(standin), **kwargs)  # type: ignore[arg-type]


def expected(text: str, task_type: str, size: int) -> np.ndarray:
    vector = bag_of_words_vector(text, task_type=task_type, size=size).astype(np.float64)
    return vector / np.linalg.norm(vector)


def in_flight(requests: list[RecordedRequest], latency: float) -> int:
    """The most requests the server held at once (each is held `latency` after it arrives)."""
    stamps = sorted(r.timestamp for r in requests)
    return max(sum(1 for t in stamps if start <= t < start + latency * 0.9) for start in stamps)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path}/cache.db")
    yield opened
    opened.close()


# --------------------------------------------------------------------------- the wire


@pytest.mark.parametrize(
    "task_type", [TaskType.CLASSIFICATION, TaskType.CLUSTERING, TaskType.SEMANTIC_SIMILARITY]
)
def test_task_type_and_dimensionality_on_the_wire(gemini_standin: GeminiStandIn, task_type: TaskType) -> None:
    texts = ["the printer is jammed again", "printer jammed on floor two", "lunch menu for friday"]
    vectors = embedder(gemini_standin).embed_batch(texts, task_type=task_type)

    sent = gemini_standin.last("embed")
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == gemini_standin.api_key
    assert [r["taskType"] for r in sent.json["requests"]] == [str(task_type)] * 3
    assert [r["outputDimensionality"] for r in sent.json["requests"]] == [768] * 3
    assert gemini_standin.embedded_texts() == texts
    assert (vectors.shape, vectors.dtype) == ((3, 768), np.float32)
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(vector, expected(text, str(task_type), 768), atol=1e-5)


def test_short_vectors_are_renormalised(gemini_standin: GeminiStandIn) -> None:
    texts = ["reset my password", "where is the lunch menu", "deploy the build tonight"]
    short = embedder(gemini_standin, dimensions=768).embed_batch(texts, task_type=TaskType.CLASSIFICATION)
    full = embedder(gemini_standin, dimensions=3072).embed_batch(texts, task_type=TaskType.CLASSIFICATION)

    # What came over the wire at 768 was a prefix of the unit vector, shorter than 1.
    assert np.linalg.norm(bag_of_words_vector(texts[0], task_type="CLASSIFICATION", size=768)) < 0.99
    np.testing.assert_allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    assert short.shape == (3, 768) and full.shape == (3, 3072)
    # Texts that share words stay closer than texts that do not.
    close = embedder(gemini_standin).embed_batch(
        ["the printer is jammed", "printer jammed again", "friday lunch menu"],
        task_type=TaskType.CLASSIFICATION,
    )
    assert close[0] @ close[1] > close[0] @ close[2] + 0.3


def test_at_most_100_texts_per_request_in_order(gemini_standin: GeminiStandIn) -> None:
    texts = [f"message number {i} about topic {i % 7}" for i in range(250)]
    vectors = embedder(gemini_standin).embed_batch(texts, task_type=TaskType.CLUSTERING)

    assert sorted(gemini_standin.embed_batch_sizes()) == [50, 100, 100]
    assert sorted(gemini_standin.embedded_texts()) == sorted(texts)
    assert vectors.shape == (250, 768)
    for i in (0, 99, 100, 199, 200, 249):
        np.testing.assert_allclose(vectors[i], expected(texts[i], "CLUSTERING", 768), atol=1e-5)


def test_nothing_to_embed_sends_nothing(gemini_standin: GeminiStandIn) -> None:
    assert embedder(gemini_standin).embed_batch([], task_type=TaskType.CLASSIFICATION).shape == (0, 768)
    assert gemini_standin.requests() == []


# --------------------------------------------------------------------------- concurrency and pacing


def test_requests_overlap_up_to_the_concurrency(gemini_standin: GeminiStandIn) -> None:
    latency = 0.25
    gemini_standin.latency(latency, on="embed")
    texts = [f"text {i}" for i in range(400)]
    elapsed = {}
    for concurrency in (1, 2, 4):
        gemini_standin.clear_requests()
        job = embedder(gemini_standin, dimensions=8, concurrency=concurrency)
        started = time.monotonic()
        job.embed_batch(texts, task_type=TaskType.CLASSIFICATION)
        elapsed[concurrency] = time.monotonic() - started
        assert in_flight(gemini_standin.requests("embed"), latency) == concurrency
        assert elapsed[concurrency] >= 4 / concurrency * latency

    assert elapsed[4] < elapsed[2] < elapsed[1]
    assert elapsed[4] < elapsed[1] / 2


def test_the_limiter_paces_a_job_under_the_quota(gemini_standin: GeminiStandIn) -> None:
    # A quota of 3 requests per 0.5 s window (360 a minute), on a job of 9 requests.
    gemini_standin.quota(3, window=0.5, on="embed")
    # Narrow vectors keep each request short, so the windows are mostly the quota's.
    paced = embedder(gemini_standin, dimensions=8, concurrency=4, limiter=RateLimiter(3, per=0.5))
    started = time.monotonic()
    paced.embed_batch([f"text {i}" for i in range(900)], task_type=TaskType.CLASSIFICATION)
    elapsed = time.monotonic() - started

    requests = gemini_standin.requests("embed")
    assert [r.status for r in requests] == [200] * 9
    # The quota lets the last three in two windows after the first three; each window here also
    # holds one request's duration (tens of ms with client and stand-in sharing one process).
    # benchmarks/gemini_embeddings.py measures the overhead on a realistic window.
    span = requests[-1].timestamp - requests[0].timestamp
    assert 1.0 <= span < 2 * (0.5 + 0.3)
    assert elapsed < span + 0.5


def test_without_the_limiter_the_same_job_bounces_off_the_quota(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.quota(3, window=0.5, on="embed")
    unpaced = GeminiEmbedder(gemini_client(gemini_standin, gemini_retries=10), dimensions=8, concurrency=4)
    unpaced.embed_batch([f"text {i}" for i in range(600)], task_type=TaskType.CLASSIFICATION)

    assert [r.status for r in gemini_standin.requests("embed")].count(429) >= 2


def test_a_429_pauses_every_thread_then_the_job_finishes(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.latency(0.05, on="embed")
    gemini_standin.fail_next(status=429, retry_delay="0.3s", on="embed")
    job = embedder(gemini_standin, concurrency=2, limiter=RateLimiter(1000, per=60.0))
    vectors = job.embed_batch([f"text {i}" for i in range(400)], task_type=TaskType.CLASSIFICATION)

    assert vectors.shape == (400, 768)
    requests = gemini_standin.requests("embed")
    assert [r.status for r in requests].count(429) == 1
    refused = next(r for r in requests if r.status == 429)
    # Nothing was sent in the 0.3 s after the 429 arrived back (0.05 s after it was sent).
    assert all(not refused.timestamp + 0.06 < r.timestamp < refused.timestamp + 0.3 for r in requests)


def test_a_failed_batch_stops_the_job(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_next(status=400, on="embed")
    job = embedder(gemini_standin, concurrency=1)
    with pytest.raises(GeminiRejected):
        job.embed_batch([f"text {i}" for i in range(1000)], task_type=TaskType.CLASSIFICATION)
    assert len(gemini_standin.requests("embed")) <= 2


# --------------------------------------------------------------------------- the cache


def test_the_cache_sends_each_text_once(gemini_standin: GeminiStandIn, store: Store) -> None:
    cached = CachedEmbedder(embedder(gemini_standin), store)
    texts = [f"ticket {i} is about the printer" for i in range(150)]
    with_duplicates = texts + texts[:30] + ["  ticket 0 is about the printer  "]

    first = cached.embed(with_duplicates, task_type=TaskType.CLASSIFICATION)
    assert sorted(gemini_standin.embedded_texts()) == sorted(texts)
    assert sorted(gemini_standin.embed_batch_sizes()) == [50, 100]
    np.testing.assert_array_equal(first[150], first[0])

    gemini_standin.clear_requests()
    again = cached.embed(list(reversed(with_duplicates)), task_type=TaskType.CLASSIFICATION)
    assert gemini_standin.requests() == []
    np.testing.assert_array_equal(again[::-1], first)

    more = cached.embed([*texts[:10], "a brand new ticket"], task_type=TaskType.CLASSIFICATION)
    assert gemini_standin.embedded_texts() == ["a brand new ticket"]
    np.testing.assert_allclose(np.linalg.norm(more, axis=1), 1.0, atol=1e-5)

    # Another task type is another vector: Gemini tunes embeddings to it.
    cached.embed(texts[:3], task_type=TaskType.CLUSTERING)
    assert gemini_standin.embedded_texts()[-3:] == texts[:3]
    assert gemini_standin.last("embed").json["requests"][0]["taskType"] == "CLUSTERING"


def test_a_job_stopped_by_the_daily_quota_keeps_what_it_paid_for(
    gemini_standin: GeminiStandIn, store: Store
) -> None:
    texts = [f"ticket {i} is about the printer" for i in range(700)]
    gemini_standin.quota(3, window=3600, on="embed", quota="per_day")
    cached = CachedEmbedder(embedder(gemini_standin, concurrency=1), store)
    with pytest.raises(QuotaExhausted):
        cached.embed(texts, task_type=TaskType.CLASSIFICATION)
    statuses = [r.status for r in gemini_standin.requests("embed")]
    # One request at a time: nothing is sent after the first refusal, however loaded the machine.
    assert statuses == [200, 200, 200, 429]
    paid_for = gemini_standin.embedded_texts()[:300]

    # The next day: only the 400 texts that were never answered are sent.
    gemini_standin.quota(None)
    gemini_standin.clear_requests()
    vectors = cached.embed(texts, task_type=TaskType.CLASSIFICATION)
    assert sorted(gemini_standin.embedded_texts()) == sorted(set(texts) - set(paid_for))
    np.testing.assert_allclose(vectors[0], expected(texts[0], "CLASSIFICATION", 768), atol=1e-5)


class FailingCache:
    """A vector cache whose database went away: every write fails."""

    def __init__(self) -> None:
        self.writes = 0

    def get_vectors(self, key: CacheKey, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        return {}

    def put_vectors(self, key: CacheKey, vectors: Mapping[str, np.ndarray]) -> None:
        self.writes += 1
        raise DatabaseUnavailable("the database is not answering")


def test_a_failed_cache_write_stops_the_requests_not_yet_sent(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.latency(0.02, on="embed")
    cache = FailingCache()
    cached = CachedEmbedder(embedder(gemini_standin, concurrency=1), cache)
    with pytest.raises(DatabaseUnavailable):
        cached.embed([f"text {i}" for i in range(3000)], task_type=TaskType.CLASSIFICATION)

    # The first write comes after WRITE_EVERY vectors; at most the request in flight then follows.
    assert cache.writes == 1
    assert len(gemini_standin.requests("embed")) <= WRITE_EVERY // 100 + 2
    time.sleep(0.1)  # nothing queued is sent later either
    assert len(gemini_standin.requests("embed")) <= WRITE_EVERY // 100 + 2


# --------------------------------------------------------------------------- settings


def test_built_from_settings(gemini_standin: GeminiStandIn) -> None:
    settings = Settings.from_env(
        {
            "GEMINI_API_KEY": gemini_standin.api_key,
            "GEMINI_BASE_URL": gemini_standin.base_url,
            "GEMBOT_EMBEDDER": "gemini",
            "GEMBOT_EMBEDDING_MODEL": "text-embedding-004",
            "GEMBOT_EMBEDDING_DIM": "768",
            "GEMBOT_EMBED_CONCURRENCY": "3",
            "GEMBOT_EMBED_RPM": "120",
        },
        dotenv=NO_DOTENV,
    )
    made = make_embedder(settings)

    assert isinstance(made, GeminiEmbedder)
    assert (made.name, made.model, made.dimensions, made.uses_task_type) == (
        "gemini",
        "text-embedding-004",
        768,
        True,
    )
    assert made._concurrency == 3 and made._limiter is not None and made._limiter.limit == 120
    made.embed_batch(["hello"], task_type=TaskType.CLASSIFICATION)
    assert gemini_standin.last().path == "/v1beta/models/text-embedding-004:batchEmbedContents"


def test_the_factory_shares_the_process_client(gemini_standin: GeminiStandIn) -> None:
    client = gemini_client(gemini_standin)
    made = make_embedder(
        Settings(embedder="gemini", gemini_api_key=client.settings.gemini_api_key), gemini=client
    )
    assert isinstance(made, GeminiEmbedder) and made._client is client


def test_the_defaults(gemini_standin: GeminiStandIn) -> None:
    settings = Settings.from_env(
        {"GEMINI_API_KEY": gemini_standin.api_key, "GEMINI_BASE_URL": gemini_standin.base_url},
        dotenv=NO_DOTENV,
    )
    made = make_embedder(settings)  # a key alone picks Gemini
    assert isinstance(made, GeminiEmbedder)
    assert (made.model, made.dimensions, made._concurrency) == ("gemini-embedding-001", 768, 4)
    assert made._limiter is not None and (made._limiter.limit, made._limiter.per) == (1500, 60.0)
    unlimited = GeminiEmbedder.from_settings(
        Settings.from_env({"GEMINI_API_KEY": "k", "GEMBOT_EMBED_RPM": "0"}, dotenv=NO_DOTENV)
    )
    assert unlimited._limiter is None


def test_gemini_without_a_key_is_not_configured() -> None:
    settings = Settings.from_env({"GEMBOT_EMBEDDER": "gemini"}, dotenv=NO_DOTENV)
    with pytest.raises(GeminiNotConfigured, match="GEMINI_API_KEY"):
        make_embedder(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GEMBOT_EMBED_CONCURRENCY", "0"),
        ("GEMBOT_EMBED_RPM", "-5"),
        ("GEMBOT_GEMINI_RETRIES", "-1"),
        ("GEMBOT_GEMINI_TIMEOUT", "0"),
        ("GEMBOT_INLINE_IMAGE_LIMIT", "lots"),
    ],
)
def test_bad_knobs_are_refused(name: str, value: str) -> None:
    with pytest.raises(InvalidInput, match=name):
        Settings.from_env({name: value}, dotenv=NO_DOTENV)


def test_long_texts_are_flagged(gemini_standin: GeminiStandIn) -> None:
    e = embedder(gemini_standin)
    assert e.too_long(["short", "word " * 3000]) == [1]
    assert e.max_input == "2,048 tokens"
