"""The requests-per-window limiter, on a fake clock (and once on the real one, across threads)."""

from __future__ import annotations

import threading
import time

import pytest

from core.gemini.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def limiter(limit: int, per: float, clock: FakeClock, *, margin: float = 0.0) -> RateLimiter:
    return RateLimiter(limit, per=per, margin=margin, clock=clock, sleep=clock.sleep)


def request(rl: RateLimiter, clock: FakeClock, *, lasting: float = 0.0) -> float:
    """One request through `rl` that takes `lasting` seconds; returns how long it waited."""
    with rl.slot() as waited:
        clock.now += lasting
    return waited


def test_a_full_window_goes_at_once_then_a_slot_frees_a_window_after_its_answer() -> None:
    clock = FakeClock()
    rl = limiter(3, 10.0, clock)
    assert [request(rl, clock) for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 4.0
    assert request(rl, clock) == pytest.approx(6.0)  # the first answer came at 100
    assert clock.now == pytest.approx(110.0)
    # All three answered at 100 have left: two more go at once, the next waits for 110 + 10.
    assert [request(rl, clock), request(rl, clock)] == [0.0, 0.0]
    assert request(rl, clock) == pytest.approx(10.0)


def test_the_window_starts_when_the_answer_arrives() -> None:
    # The server counted the request somewhere between sending and answering; only counting
    # from the answer can never overrun its window.
    clock = FakeClock()
    rl = limiter(1, 10.0, clock)
    request(rl, clock, lasting=2.0)
    assert request(rl, clock) == pytest.approx(10.0)
    assert clock.now == pytest.approx(112.0)


def test_never_more_than_limit_in_any_window() -> None:
    clock = FakeClock()
    rl = limiter(5, 2.0, clock)
    stamps = []
    for _ in range(23):
        with rl.slot():
            stamps.append(clock.now)
        clock.now += 0.07
    for i, start in enumerate(stamps):
        assert sum(1 for t in stamps[i:] if t < start + 2.0) <= 5
    # ...and no slower than the window allows: 23 requests need 4 more windows after the first.
    assert stamps[-1] - stamps[0] <= 4 * 2.0 + 5 * 0.07


def test_the_margin_keeps_a_little_distance_from_the_edge() -> None:
    clock = FakeClock()
    rl = limiter(1, 1.0, clock, margin=0.05)
    request(rl, clock)
    assert request(rl, clock) == pytest.approx(1.05)


def test_pause_holds_everyone_back() -> None:
    clock = FakeClock()
    rl = limiter(100, 60.0, clock)
    request(rl, clock)
    rl.pause(2.5)
    assert request(rl, clock) == pytest.approx(2.5)
    rl.pause(1.0)
    rl.pause(0.5)  # a shorter pause never shortens a longer one
    assert request(rl, clock) == pytest.approx(1.0)


def test_a_failed_request_still_counts() -> None:
    clock = FakeClock()
    rl = limiter(1, 5.0, clock)
    with pytest.raises(RuntimeError), rl.slot():
        raise RuntimeError("timed out")
    assert request(rl, clock) == pytest.approx(5.0)


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
    with pytest.raises(ValueError):
        RateLimiter(5, per=0)


def test_threads_share_one_window_and_wait_for_requests_in_flight() -> None:
    rl = RateLimiter(2, per=0.2)
    sent: list[float] = []
    answered: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(2):
            with rl.slot():
                with lock:
                    sent.append(time.monotonic())
                time.sleep(0.05)
                with lock:
                    answered.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent.sort()
    answered.sort()
    assert len(sent) == 6
    # Each send after the first two waits for an answer to be a full window old.
    for k in range(2, 6):
        assert sent[k] >= answered[k - 2] + 0.2 - 0.005
    assert sent[-1] - sent[0] < 3 * 0.26
