"""The runtime's tests: Slack's requests arrive over HTTP, as in production.

What they check lives between the socket and Bolt (body sizes, the signature checked on the raw
bytes, workers, restarts, shutdown), so the bot server's requests go through the WSGI server here
rather than `app.dispatch` (see tests/support/slack_fixtures.py).
"""

from __future__ import annotations

import pytest

from tests.support.slack_fixtures import Transport


@pytest.fixture
def slack_transport() -> Transport:
    return "http"
