"""The Socket Mode stand-in speaks the protocol the app relies on: tickets from
`apps.connections.open` open one connection each, `hello` first, envelopes shaped as Slack's, acks
recorded with their payload and timing, and `disconnect` steering envelopes to the next connection.

Driven here by a plain WebSocket client (the `websockets` library), so that a stand-in bug cannot
hide behind slack_sdk's client; tests/bot/test_socket_mode.py drives it with slack_sdk's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.support.socket_mode_standin import SocketModeStandIn


@pytest.fixture
def server() -> Iterator[SocketModeStandIn]:
    with SocketModeStandIn() as standin:
        yield standin


def receive(socket: ClientConnection) -> dict[str, Any]:
    message = json.loads(socket.recv(timeout=5))
    assert isinstance(message, dict)
    return message


def test_a_ticket_opens_one_connection_that_starts_with_hello(server: SocketModeStandIn) -> None:
    answer = server.connections_open(server.app_token)
    assert answer["ok"] is True
    with connect(answer["url"]) as socket:
        hello = receive(socket)
        assert hello["type"] == "hello" and hello["num_connections"] == 1
        assert hello["connection_info"] == {"app_id": server.app_id} and "host" in hello["debug_info"]
    (connection,) = server.wait_for_connections(1)
    with pytest.raises(InvalidStatus) as refused:  # a ticket is good for one connection
        connect(answer["url"])
    assert refused.value.response.status_code == 401
    assert len(server.connections()) == 1 and connection.ticket in answer["url"]


def test_tokens_other_than_the_app_level_token_are_refused(server: SocketModeStandIn) -> None:
    assert server.connections_open(None) == {"ok": False, "error": "not_authed"}
    assert server.connections_open("xoxb-a-bot-token") == {"ok": False, "error": "not_allowed_token_type"}
    assert server.connections_open("xapp-1-wrong") == {"ok": False, "error": "invalid_auth"}


def test_envelopes_and_their_acks_are_recorded(server: SocketModeStandIn) -> None:
    with connect(server.connections_open(server.app_token)["url"]) as socket:
        receive(socket)  # hello
        event = server.send("events_api", {"type": "event_callback", "event_id": "Ev1"}, retry_attempt=2)
        command = server.send("slash_commands", {"command": "/ask", "text": "hi"})
        got = receive(socket)
        assert got == {
            "envelope_id": event.envelope_id,
            "type": "events_api",
            "payload": {"type": "event_callback", "event_id": "Ev1"},
            "accepts_response_payload": False,
            "retry_attempt": 2,
            "retry_reason": "",
        }
        got = receive(socket)
        assert got["type"] == "slash_commands" and got["accepts_response_payload"] is True
        assert "retry_attempt" not in got
        socket.send(json.dumps({"envelope_id": command.envelope_id, "payload": {"text": "working"}}))
        socket.send(json.dumps({"envelope_id": event.envelope_id}))
        first = server.wait_for_ack(event)
        second = server.wait_for_ack(command)
    assert first.payload is None and first.elapsed is not None and first.elapsed >= 0
    assert second.payload == {"text": "working"} and first.connection == second.connection == 1
    assert [a.envelope_id for a in server.acks()] == [command.envelope_id, event.envelope_id]


def test_disconnect_sends_the_next_envelopes_to_the_new_connection(server: SocketModeStandIn) -> None:
    with connect(server.connections_open(server.app_token)["url"]) as old:
        receive(old)
        server.disconnect("refresh_requested")
        assert receive(old) == {
            "type": "disconnect",
            "reason": "refresh_requested",
            "debug_info": {"host": "applink-standin"},
        }
        with pytest.raises(AssertionError):  # nowhere to send until the app has reconnected
            server.send("events_api", {"type": "event_callback"}, timeout=0.2)
        with connect(server.connections_open(server.app_token)["url"]) as new:
            assert receive(new)["type"] == "hello"
            envelope = server.send("events_api", {"type": "event_callback"})
            assert receive(new)["envelope_id"] == envelope.envelope_id and envelope.connection == 2
            with pytest.raises(ConnectionClosedOK):  # the server closed the refreshed connection
                old.recv(timeout=5)
            assert old.close_code == 1000
