"""The surfaces' scenario tests reach the app in process (`app.dispatch`), and Bolt still checks
Slack's signature there: what a forged or stale request would run is nothing."""

from __future__ import annotations

from tests.support.slack_fixtures import BotServer


def test_surface_tests_dispatch_in_process(bot_server: BotServer) -> None:
    assert bot_server.transport == "dispatch"
    reply = bot_server.send_command("/similar", "one\ntwo")
    assert reply.status == 200 and reply.sent["X-Slack-Signature"].startswith("v0=")


def test_a_forged_or_stale_request_is_refused_and_runs_nothing(bot_server: BotServer) -> None:
    forged = bot_server.send_command("/similar", "one\ntwo", options={"forge": True})
    stale = bot_server.send_command("/similar", "one\ntwo", options={"stale": True})
    unsigned = bot_server.send_command("/similar", "one\ntwo", options={"signed": False})
    assert (forged.status, stale.status, unsigned.status) == (401, 401, 401)
    bot_server.settle()
    assert bot_server.slack.calls() == []
