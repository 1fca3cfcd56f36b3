"""What can go wrong when Gembot talks to Gemini, each with a sentence a user can act on.

The SDK's own exceptions never leave `core.gemini`: they carry Google's raw text (and, through
their cause chain, request details), so `core.gemini.client` turns them into these, with the
HTTP code and status kept as attributes for logs.
"""

from __future__ import annotations

from core.errors import GembotError


class GeminiError(GembotError):
    """Base class of every Gemini failure; `code`/`status` are the HTTP answer's, when there was one."""

    def __init__(self, message: str, *, code: int | None = None, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class GeminiNotConfigured(GeminiError):
    """No API key, so Gemini cannot be called at all."""


class GeminiRejected(GeminiError):
    """Gemini refused the request (400/401/403/404): retrying the same request cannot help."""


class ModelNotFound(GeminiRejected):
    """The model named does not exist, or does not do what was asked of it."""


class QuotaExhausted(GeminiError):
    """The project's daily quota is used up: nothing works again until it resets."""


class RateLimited(GeminiError):
    """The per-minute quota was still exceeded after every retry Gembot allows itself."""


class GeminiUnavailable(GeminiError):
    """5xx answers, timeouts or no connection, after the bounded retries."""


class BadResponse(GeminiError):
    """Gemini answered with something that is not what the API promises (not JSON, wrong shape)."""


class PromptBlocked(GeminiError):
    """Gemini refused to answer the prompt at all (`promptFeedback.blockReason`)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class AnswerStopped(GeminiError):
    """The answer was stopped before it was complete (`finishReason` SAFETY, RECITATION, …)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class EmptyAnswer(AnswerStopped):
    """Gemini finished without any text (e.g. MAX_TOKENS spent before the first word)."""


class NotAnImage(GeminiError):
    """Bytes that are not an image Gembot can send (an HTML page, a PDF, a damaged file)."""


class ImageTooLarge(GeminiError):
    """An image too large to convert or to upload."""


class UploadFailed(GeminiError):
    """The Files API could not process an upload, or did not finish in time."""
