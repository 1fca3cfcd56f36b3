"""Reading Google's error answers: which quota a 429 hit, how long it says to wait, and the words.

Pure functions over the SDK's `APIError` (its `details` is the whole error JSON), so the policy
of what a user is told lives in one place and can be read without the retry loop around it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from google.genai import errors as sdk_errors

from core.gemini.failures import GeminiError, GeminiRejected, ModelNotFound, QuotaExhausted

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


@dataclass(frozen=True)
class QuotaHit:
    """What a 429 says: a daily quota (no point retrying today) and how long to wait, if it says."""

    daily: bool
    retry_after: float | None
    quota_id: str | None


def error_details(error: sdk_errors.APIError) -> list[dict[str, Any]]:
    """The `error.details` list of Google's error JSON (empty when the answer had none)."""
    body = error.details if isinstance(error.details, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else {}
    details = inner.get("details") if isinstance(inner, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _detail(details: list[dict[str, Any]], type_name: str) -> dict[str, Any] | None:
    return next((d for d in details if str(d.get("@type", "")).endswith(f".{type_name}")), None)


def quota_hit(error: sdk_errors.APIError) -> QuotaHit:
    """Read a 429's QuotaFailure and RetryInfo details."""
    details = error_details(error)
    failure = _detail(details, "QuotaFailure") or {}
    quota_ids = [str(v.get("quotaId", "")) for v in failure.get("violations") or [] if isinstance(v, dict)]
    retry = _detail(details, "RetryInfo") or {}
    match = _DURATION.match(str(retry.get("retryDelay", "")))
    return QuotaHit(
        daily=any("PerDay" in q for q in quota_ids),
        retry_after=float(match.group(1)) if match else None,
        quota_id=quota_ids[0] if quota_ids else None,
    )


def scrub(text: str, secret: str | None) -> str:
    """`text` with `secret` blanked out, for any Google text that is passed on to a person."""
    if secret:
        text = text.replace(secret, "***")
    return " ".join(text.split())


def daily_quota_error(hit: QuotaHit) -> QuotaExhausted:
    return QuotaExhausted(
        "the daily Gemini quota is used up: it resets at midnight Pacific time, so try again "
        "tomorrow or raise the project's quota in Google AI Studio"
        + (f" ({hit.quota_id})" if hit.quota_id else ""),
        code=429,
        status="RESOURCE_EXHAUSTED",
    )


def _is_bad_key(error: sdk_errors.APIError) -> bool:
    info = _detail(error_details(error), "ErrorInfo") or {}
    return info.get("reason") in ("API_KEY_INVALID", "API_KEY_EXPIRED") or "API key" in (error.message or "")


def rejection(error: sdk_errors.APIError, *, secret: str | None, model: str | None) -> GeminiError:
    """The error for a 4xx other than 429: nothing a retry could fix."""
    code, status = error.code, error.status
    said = scrub(error.message or "", secret)
    if _is_bad_key(error):
        # Google's words here could one day quote the key; ours never do.
        return GeminiRejected(
            "the Gemini API key was refused: check GEMINI_API_KEY (a key from Google AI Studio)",
            code=code,
            status=status,
        )
    if code == 401 or (code == 403 and "unregistered callers" in said):
        return GeminiRejected(
            "Gemini did not accept the credentials: check that GEMINI_API_KEY is set to a valid key",
            code=code,
            status=status,
        )
    if code == 404 and model:
        return ModelNotFound(
            f"Gemini has no model {model!r} that can do this: `gembot models` lists the models "
            "and what each supports",
            code=code,
            status=status,
        )
    if code == 403:
        return GeminiRejected(
            f"Gemini refused the request (permission denied: {said or 'no reason given'}); check that "
            "the API key's project has the Gemini API enabled",
            code=code,
            status=status,
        )
    return GeminiRejected(
        f"Gemini refused the request ({code} {status or ''}: {said or 'no reason given'})".replace(" :", ":"),
        code=code,
        status=status,
    )
