"""The one door to Gemini: a configured `google-genai` client and the policy for every call.

The SDK's `HttpRetryOptions` retries 5xx answers and transport timeouts with exponential backoff,
but it treats every 429 alike and ignores the RetryInfo Google sends with it. So 429s are kept
out of the SDK's list and handled here: a per-day quota fails at once (retrying cannot help until
midnight Pacific), a per-minute one waits as long as RetryInfo says, a bounded number of times.
Every SDK failure leaves as a `core.gemini.failures` exception whose words never include the key.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from google import genai
from google.genai import errors as sdk_errors
from google.genai import types

from core import daily_limits
from core.gemini.failures import (
    BadResponse,
    GeminiError,
    GeminiNotConfigured,
    GeminiUnavailable,
    RateLimited,
)
from core.gemini.faults import daily_quota_error, quota_hit, rejection
from core.gemini.ratelimit import RateLimiter
from core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

API_VERSION = "v1beta"  # google-genai 3.x defaults to v1, which lacks newer fields and models
RETRIED_STATUS = (408, 500, 502, 503, 504)
PUBLIC_HOST = "generativelanguage.googleapis.com"


def _transport_errors(attribute: str) -> tuple[type[Exception], ...]:
    # The SDK talks through httpx2 when it is installed and httpx otherwise; catch either.
    found: list[type[Exception]] = []
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found.append(getattr(module, attribute))
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors("TransportError")
TIMEOUT_ERRORS = _transport_errors("TimeoutException")


class GeminiClient:
    """A `genai.Client` built from `Settings`, and `call`, which runs a request under the error policy.

    Build one per process and share it: it is thread-safe, and it keeps its connections open.
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.gemini_api_key:
            raise GeminiNotConfigured(
                "Gemini needs an API key: set GEMINI_API_KEY (get one at https://aistudio.google.com/apikey)"
            )
        self.settings = settings
        self._key = settings.gemini_api_key.get()
        retry = types.HttpRetryOptions(
            attempts=settings.gemini_retries + 1,
            initial_delay=settings.gemini_retry_delay,
            max_delay=max(settings.gemini_retry_delay, 30.0),
            exp_base=2,
            # The SDK's default jitter is a flat second; scale it with the delay instead.
            jitter=settings.gemini_retry_delay,
            http_status_codes=list(RETRIED_STATUS),
        )
        # Keep the SDK client referenced for our lifetime: its __del__ closes the connections.
        self._sdk = genai.Client(
            api_key=self._key,
            vertexai=False,  # never let GOOGLE_GENAI_USE_VERTEXAI in the environment switch APIs
            http_options=types.HttpOptions(
                base_url=settings.gemini_base_url,
                api_version=API_VERSION,
                timeout=max(1, round(settings.gemini_timeout * 1000)),
                retry_options=retry,
            ),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> GeminiClient:
        """The client for `settings`; raises GeminiNotConfigured without an API key."""
        return cls(settings)

    def __repr__(self) -> str:
        return f"GeminiClient(base_url={self.settings.gemini_base_url or PUBLIC_HOST!r})"

    @property
    def sdk(self) -> genai.Client:
        """The underlying `google.genai.Client`; go through `call` so failures are translated."""
        return self._sdk

    def call(
        self,
        request: Callable[[], T],
        *,
        model: str | None = None,
        limiter: RateLimiter | None = None,
        metered: bool = True,
        continuing: bool = False,
    ) -> T:
        """Run `request` (an SDK call) and return its result, or raise a `GeminiError`.

        First the call is charged to whoever Gembot is working for (`core.daily_limits`): one unit,
        whatever the retries below, or UsageLimitReached before anything is sent. A call that
        only serves a charged one (an upload, a poll) passes `metered=False`: it is not charged,
        but still refused once a limit has been reached. A call `continuing` one already charged
        (reading the rest of a streamed answer) is neither charged nor refused: the answer was
        paid for when it began, and the limit may have been reached by that very charge.

        The SDK has already retried 5xx answers and timeouts by the time one reaches us. A
        per-minute 429 is retried here after its RetryInfo delay (or an exponential backoff),
        at most `gemini_retries` times; `limiter`, when given, holds a slot for each attempt
        and is paused by a 429 so that other threads sharing it hold back too. `model` names
        the model in a not-found message.
        """
        if continuing:
            pass
        elif metered:
            daily_limits.charge()
        else:
            daily_limits.check()
        attempts = self.settings.gemini_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                with limiter.slot() if limiter is not None else contextlib.nullcontext():
                    return request()
            except sdk_errors.ClientError as exc:
                if exc.code != 429:
                    raise rejection(exc, secret=self._key, model=model) from None
                hit = quota_hit(exc)
                if hit.daily:
                    raise daily_quota_error(hit) from None
                wait = hit.retry_after if hit.retry_after is not None else self._backoff(attempt)
                if attempt == attempts or wait > self.settings.gemini_max_retry_wait:
                    raise RateLimited(
                        "Gemini's per-minute quota is exceeded"
                        + (f" even after {attempt} attempts" if attempt > 1 else "")
                        + f"; try again in {max(wait, 1):.0f} s"
                        + (
                            " (or lower GEMBOT_EMBED_RPM or GEMBOT_GENERATE_RPM to pace big jobs)"
                            if limiter is not None
                            else ""
                        ),
                        code=429,
                        status=exc.status,
                    ) from None
                log.info(
                    "Gemini per-minute quota hit (try %d of %d); waiting %.1f s", attempt, attempts, wait
                )
                if limiter is not None:
                    limiter.pause(wait)
                else:
                    time.sleep(wait)
            except sdk_errors.ServerError as exc:
                tries = f", {attempts} attempts" if exc.code in RETRIED_STATUS else ""
                raise GeminiUnavailable(
                    f"Gemini is unavailable right now ({exc.code} {exc.status or 'server error'}{tries}); "
                    "try again in a few minutes",
                    code=exc.code,
                    status=exc.status,
                ) from None
            except sdk_errors.APIError as exc:
                raise GeminiError(
                    f"Gemini answered with unexpected HTTP status {exc.code}", code=exc.code
                ) from None
            except TIMEOUT_ERRORS as exc:
                tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
                raise GeminiUnavailable(
                    f"Gemini did not answer within {self.settings.gemini_timeout:g} s ({tries}); "
                    "try again later, or raise GEMBOT_GEMINI_TIMEOUT"
                ) from exc
            except TRANSPORT_ERRORS as exc:
                raise GeminiUnavailable(
                    f"could not reach Gemini at {self.settings.gemini_base_url or PUBLIC_HOST} "
                    f"({type(exc).__name__}); check the network, or GEMINI_BASE_URL"
                ) from exc
            except json.JSONDecodeError:
                raise BadResponse(
                    "Gemini sent an answer that is not valid JSON; try again (a proxy or gateway in "
                    "between may be at fault)"
                ) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _backoff(self, attempt: int) -> float:
        return float(self.settings.gemini_retry_delay * 2 ** (attempt - 1))
