"""Old name of `tests.support.gemini`, kept only for `slack_fixtures.py` (owned by another change);
delete it once that module imports `tests.support.gemini`."""

from tests.support.gemini import GeminiStandIn

__all__ = ["GeminiStandIn"]
