"""How the stand-in answers: the `Reply` every handler returns, and Google's error bodies.

Errors have the real API's shape (`{"error": {"code", "message", "status", "details"}}`), down to
the quota details a client reads to tell a per-minute limit from a daily one and to learn how long
to wait.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

STATUS_MESSAGES = {
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "The request timed out. Please try again.",
}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_QUOTA_IDS = {
    ("generate", "per_minute"): "GenerateRequestsPerMinutePerProjectPerModel",
    ("generate", "per_day"): "GenerateRequestsPerDayPerProjectPerModel",
    ("embed", "per_minute"): "EmbedContentRequestsPerMinutePerProjectPerModel",
    ("embed", "per_day"): "EmbedContentRequestsPerDayPerProjectPerModel",
}
_RATE_LIMITS_URL = "https://ai.google.dev/gemini-api/docs/rate-limits"


@dataclass
class Reply:
    """One HTTP answer: status, body, extra headers and content type."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=UTF-8"
    #: When set, `body` is written in these pieces, `pause` seconds apart (a paced stream).
    pieces: list[bytes] | None = None
    pause: float = 0.0


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """`payload` as a JSON answer."""
    return Reply(status, json.dumps(payload).encode(), dict(headers or {}))


def error(code: int, message: str, *, status: str | None = None, details: list[Any] | None = None) -> Reply:
    """Google's error body for HTTP `code`, its status name the usual one unless `status` says."""
    body: dict[str, Any] = {"code": code, "message": message, "status": status or _STATUS_NAMES.get(code, "")}
    if details:
        body["details"] = details
    return json_reply(code, {"error": body})


class ApiError(Exception):
    """Raised inside a handler to answer with a Google error."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def bad_request(message: str) -> ApiError:
    """A 400 INVALID_ARGUMENT to raise."""
    return ApiError(error(400, message))


def quota_error(
    *,
    embed: bool,
    model: str | None,
    quota: str,
    retry_delay: str | None,
    limit: int = 10,
    wait_seconds: float | None = None,
) -> Reply:
    """The 429 a spent quota gets: a QuotaFailure naming the quota, a Help link, and a RetryInfo
    saying `retry_delay` (left out when None; the message says `wait_seconds` when given)."""
    metric = "embed_content" if embed else "generate_content"
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        f"information on this error, head to: {_RATE_LIMITS_URL}.\n"
        f"* Quota exceeded for metric: generativelanguage.googleapis.com/{metric}_requests, limit: {limit}"
    )
    details: list[Any] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": f"generativelanguage.googleapis.com/{metric}_requests",
                    "quotaId": _QUOTA_IDS[("embed" if embed else "generate", quota)],
                    "quotaDimensions": {"location": "global", "model": model or ""},
                    "quotaValue": str(limit),
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas", "url": _RATE_LIMITS_URL}],
        },
    ]
    if retry_delay is not None:
        message += f"\nPlease retry in {f'{wait_seconds}s' if wait_seconds is not None else retry_delay}."
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    return error(429, message, details=details)


def key_refusal(key: str | None, expected: str) -> Reply | None:
    """Google's answer to a request without a key (403) or a wrong one (400); None for `expected`."""
    if not key:
        return error(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )
    if key == expected:
        return None
    message = "API key not valid. Please pass a valid API key."
    return error(
        400,
        message,
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": message,
            },
        ],
    )
