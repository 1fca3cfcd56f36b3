"""A loopback stand-in for the Gemini REST API, for tests that drive the real `google-genai` SDK.

It speaks the Gemini Developer API's wire protocol (paths, JSON field names, the `x-goog-api-key`
header, Google's error JSON, the resumable upload dance) closely enough that the SDK cannot tell
it from the real service, so a client that passes here fails for the same reasons it would fail
against Google. Like the real API it reads both spellings of a field (`mimeType`, `mime_type`):
google-genai 3.x writes camelCase at the top but snake_case inside `inlineData` and `fileData`.

It serves both `/v1beta` and `/v1` (google-genai 3.x defaults to `v1` unless told otherwise with
`HttpOptions(api_version=...)`), records every request for assertions on the wire, and injects
the failures that matter to a client on demand: quota 429s, 5xx, blocked prompts, empty
finishes, malformed JSON, latency, a sliding-window requests-per-minute quota, and batch jobs that
fail, expire, are cancelled, stay pending or carry per-request errors.

Answers are deterministic. `generateContent` echoes the last user turn unless a test scripts a
reply; embeddings are a hashed bag of words, so texts that share words come out close together.

One module per endpoint family: `models_api`, `generate_api`, `embed_api`, `files_api`,
`batch_api` (batch jobs, whose requests are answered as `generateContent` answers); `standin`
routes, records, checks keys and injects faults; `replies` holds Google's error bodies and `wire`
the recorded request.
"""

from tests.support.gemini.embed_api import bag_of_words_vector
from tests.support.gemini.files_api import StoredFile
from tests.support.gemini.generate_api import Prompt
from tests.support.gemini.models_api import EMBEDDING_SIZE, MODELS, ModelInfo
from tests.support.gemini.standin import DEFAULT_API_KEY, GeminiStandIn
from tests.support.gemini.wire import RecordedRequest

__all__ = [
    "DEFAULT_API_KEY",
    "EMBEDDING_SIZE",
    "MODELS",
    "GeminiStandIn",
    "ModelInfo",
    "Prompt",
    "RecordedRequest",
    "StoredFile",
    "bag_of_words_vector",
]
