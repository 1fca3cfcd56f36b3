"""Socket Mode, as `gembot serve --socket` runs it: the real slack_bolt `SocketModeHandler` and
slack_sdk's built-in client, connected through `apps.connections.open` to a loopback Socket Mode
stand-in (tests/support/socket_mode_standin.py), with the Slack and Gemini stand-ins behind the app.

The scenarios are those the HTTP tests run (`/classify`, a mention with an image, the message
shortcut, a redelivery), here as envelopes and acks; then what only Socket Mode has: the
connection handshake, a `disconnect` that asks for a new connection, and the acks' payloads; and
last `gembot serve --socket` itself, in a subprocess, answering and stopping on SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import text

from core.store import ExampleInput, Store
from handlers.commands.classify import USAGE
from handlers.confidence_words import stated
from tests.support.gemini import GeminiStandIn
from tests.support.gemini_support import decode_base64, image_bytes
from tests.support.label_support import BILLING, SHIPPING, block, element, texts_of
from tests.support.servers import server_env
from tests.support.slack_harness import command_body
from tests.support.slack_standin import SlackStandIn, eventually
from tests.support.socket_mode_bot import SocketModeBot, socket_mode_settings
from tests.support.socket_mode_standin import ACK_DEADLINE, SocketModeStandIn

BOT = "U0GEMBOT"
CHANNEL = "C0GENERAL"

MakeSocketBot = Callable[..., SocketModeBot]


@pytest.fixture
def socket_mode_standin(slack_standin: SlackStandIn) -> Iterator[SocketModeStandIn]:
    """Slack's Socket Mode endpoint, handed out by the Slack stand-in's `apps.connections.open`."""
    with SocketModeStandIn() as server:
        slack_standin.serve_socket_mode(server)
        yield server


@pytest.fixture
def make_socket_bot(
    slack_standin: SlackStandIn,
    socket_mode_standin: SocketModeStandIn,
    gemini_standin: GeminiStandIn,
    sqlite_template: Path,
    tmp_path: Path,
) -> Iterator[MakeSocketBot]:
    """Start Socket Mode bots on one fresh SQLite database: `make_socket_bot(env=None)`."""
    started: list[SocketModeBot] = []
    path = tmp_path / "socket.db"
    path.write_bytes(sqlite_template.read_bytes())

    def make(*, env: dict[str, str] | None = None) -> SocketModeBot:
        settings = socket_mode_settings(
            slack_standin, socket_mode_standin, gemini_standin, f"sqlite:///{path}", env=env
        )
        bot = SocketModeBot(slack_standin, socket_mode_standin, gemini_standin, settings)
        started.append(bot)
        return bot.start()

    yield make
    for bot in started:
        bot.stop()


@pytest.fixture
def socket_bot(make_socket_bot: MakeSocketBot) -> SocketModeBot:
    return make_socket_bot()


def seed(bot: SocketModeBot) -> None:
    """The billing / shipping label set of the HTTP tests (`label_support.seed`), in the bot's database."""
    assert bot.deps is not None
    items = [ExampleInput("billing", t) for t in BILLING] + [ExampleInput("shipping", t) for t in SHIPPING]
    bot.deps.store.add_examples(bot.team, "default", items)


def claims(store: Store) -> dict[str, tuple[Any, ...]]:
    """The request-tracking rows (`bot.slack_retries`): event id -> (finished_at, attempts, payload)."""
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, finished_at, attempts, payload FROM slack_events")).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def texts_in(slack: SlackStandIn, channel: str) -> list[str]:
    return [m["text"] for m in slack.messages(channel)]


def dm(text: str, *, channel: str, ts: str = "1700000000.000100") -> dict[str, Any]:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": channel,
        "user": "U0PERSON",
        "text": text,
        "ts": ts,
        "event_ts": ts,
    }


# -- the connection ------------------------------------------------------------------------------


def test_the_app_connects_with_its_app_level_token_and_is_greeted(
    socket_bot: SocketModeBot, socket_mode_standin: SocketModeStandIn
) -> None:
    (opened,) = socket_bot.slack.calls("apps.connections.open")
    assert opened.token == socket_mode_standin.app_token and opened.ok
    (connection,) = socket_mode_standin.connections()
    assert connection.open and connection.ticket
    # The hello needs no answer, and pings are WebSocket frames: nothing but acks comes back.
    assert socket_mode_standin.other_messages() == []
    # The client pings on connecting and calls a connection that stops answering stale: the
    # stand-in's pong reached it (read from the client's own record, nothing patched).
    assert socket_bot.handler is not None
    session = socket_bot.handler.client.current_session
    assert session is not None
    eventually(lambda: session.last_ping_pong_time is not None, timeout=5, what="a pong to the client's ping")


def test_apps_connections_open_refuses_other_tokens(
    slack_standin: SlackStandIn, socket_mode_standin: SocketModeStandIn
) -> None:
    client = WebClient(base_url=slack_standin.api_url)
    for token, error in (
        ("xapp-1-A0GEMBOT-0000-not-the-token", "invalid_auth"),
        (slack_standin.bot_token, "not_allowed_token_type"),
    ):
        with pytest.raises(SlackApiError) as refused:
            client.apps_connections_open(app_token=token)
        assert refused.value.response["error"] == error
    url = client.apps_connections_open(app_token=socket_mode_standin.app_token)["url"]
    assert url.startswith(f"ws://127.0.0.1:{socket_mode_standin.port}/link/?ticket=")


# -- the HTTP scenarios, over Socket Mode -------------------------------------------------------


def test_classify_is_acked_then_answered_by_updating_its_working_message(socket_bot: SocketModeBot) -> None:
    slack, socket = socket_bot.slack, socket_bot.socket
    seed(socket_bot)
    slack.latency(1.0, method="chat.update")  # the working state is visible first
    envelope = socket_bot.send_command("/classify", "I was charged twice on the invoice")

    ack = socket.wait_for_ack(envelope)
    assert ack.envelope_id == envelope.envelope_id and ack.connection == envelope.connection
    assert ack.payload is None and ack.message == {"envelope_id": envelope.envelope_id}
    assert ack.elapsed is not None and ack.elapsed < ACK_DEADLINE

    (working,) = slack.wait_for("chat.postMessage")
    assert "Classifying" in texts_of(working.params)
    (update,) = slack.wait_for("chat.update")
    assert update.params["ts"] == working.response["ts"]
    socket_bot.settle()
    assert socket_bot.deps is not None
    (logged,) = socket_bot.deps.store.recent_classifications(socket_bot.team)
    said, percent = stated(logged.confidence)
    assert update.params["text"] == f"{said}: billing ({percent})"
    assert f":label: {said}: *billing* ({percent})" in texts_of(update.params)
    actions = block(update.params, "actions")
    assert element(actions, "classify_correct")["value"] == "billing"
    assert actions["block_id"] == f"classify_feedback:{logged.id}"
    assert logged.text == "I was charged twice on the invoice" and logged.user_id == "U0HUMAN"
    assert len(slack.calls("chat.postMessage")) == 1 and len(socket.acks()) == 1


def test_a_refusal_travels_in_the_acks_payload(socket_bot: SocketModeBot) -> None:
    envelope = socket_bot.send_command("/classify", "   ")
    assert envelope.message["accepts_response_payload"] is True
    ack = socket_bot.socket.wait_for_ack(envelope)
    assert ack.envelope_id == envelope.envelope_id
    assert ack.payload == {"text": USAGE, "response_type": "ephemeral"}
    socket_bot.settle()
    # The ack said it all: nothing reached Slack's Web API after the connection was opened.
    assert socket_bot.slack.methods() == ["apps.connections.open"]


def test_a_mention_with_an_image_is_answered_in_its_thread(socket_bot: SocketModeBot) -> None:
    slack, gemini, socket = socket_bot.slack, socket_bot.gemini, socket_bot.socket
    assert gemini is not None
    gemini.latency(3.5, on="generate")  # longer than Slack waits for an ack
    png = image_bytes("PNG", size=(8, 6))
    file = slack.add_file(png, "chart.png", "image/png")
    ts = "1700000001.000100"
    event = {
        "type": "app_mention",
        "user": "U0HUMAN",
        "text": f"<@{BOT}> What is in this chart?",
        "ts": ts,
        "channel": CHANNEL,
        "event_ts": ts,
        "files": [file],
        "upload": False,
    }
    envelope = socket_bot.send_event(event)
    ack = socket.wait_for_ack(envelope)
    assert ack.payload is None and ack.elapsed is not None and ack.elapsed < ACK_DEADLINE

    eventually(lambda: len(gemini.requests("generate")) == 1, timeout=10, what="the question to Gemini")
    socket_bot.settle(15)
    (request,) = gemini.requests("generate")
    (content,) = request.json["contents"]
    inline = [p.get("inlineData") or p.get("inline_data") for p in content["parts"]]
    blobs = [(b.get("mimeType") or b.get("mime_type"), decode_base64(b["data"])) for b in inline if b]
    assert blobs == [("image/png", png)]
    assert " ".join(p["text"] for p in content["parts"] if "text" in p) == "What is in this chart?"
    (download,) = slack.calls("download")
    assert download.token == slack.bot_token

    (message,) = slack.messages(CHANNEL)
    assert message["thread_ts"] == ts
    assert message["text"].startswith("echo: What is in this chart? [image image/png")


def modal_values(view: dict[str, Any], *, set_name: str, label: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The `state.values` Slack sends for the "Add as label example" modal with `set_name` picked and
    `label` typed as a new label (an empty one: nothing typed)."""
    values: dict[str, dict[str, dict[str, Any]]] = {}
    for found in view["blocks"]:
        if found["type"] != "input":
            continue
        control = found["element"]
        if control["type"] == "static_select":
            picked = next((o for o in control["options"] if o["value"] == set_name), None)
            values[found["block_id"]] = {
                control["action_id"]: {"type": "static_select", "selected_option": picked}
            }
        else:
            typed = label if found["block_id"] == "label_new" else ""
            values[found["block_id"]] = {control["action_id"]: {"type": "plain_text_input", "value": typed}}
    return values


def test_the_message_shortcut_opens_its_modal_and_stores_the_example(socket_bot: SocketModeBot) -> None:
    slack, socket = socket_bot.slack, socket_bot.socket
    seed(socket_bot)
    message = {
        "ts": "1700000000.000100",
        "user": "U0AUTHOR",
        "text": "The courier left my parcel in the rain",
    }
    envelope = socket_bot.send_shortcut("add_label_example", message=message, trigger_id="1.2.trigger")
    assert envelope.message["accepts_response_payload"] is False
    ack = socket.wait_for_ack(envelope)
    assert ack.envelope_id == envelope.envelope_id and ack.payload is None
    assert ack.elapsed is not None and ack.elapsed < ACK_DEADLINE

    (opened,) = slack.wait_for("views.open")
    assert opened.params["trigger_id"] == "1.2.trigger"
    (view,) = slack.views().values()
    assert view["type"] == "modal" and view["callback_id"] == "add_label_example_modal"
    assert "The courier left my parcel in the rain" in texts_of(view)
    assert "<@U0AUTHOR> wrote:" in texts_of(view)

    def submit(label: str) -> dict[str, Any] | None:
        sent = socket_bot.send_view_submission(
            "add_label_example_modal",
            values=modal_values(view, set_name="default", label=label),
            private_metadata=view["private_metadata"],
            blocks=view["blocks"],
            view_id=view["id"],
        )
        assert sent.message["accepts_response_payload"] is True
        return socket.wait_for_ack(sent).payload

    # The modal's errors travel in the ack, as they do in the HTTP response.
    assert submit("   ") == {
        "response_action": "errors",
        "errors": {"label_new": "Pick a label above or name a new one."},
    }
    assert submit("weather") is None  # closed, no errors
    (confirmation,) = slack.wait_for_response()
    socket_bot.settle()
    assert confirmation["text"].startswith(":white_check_mark: Added the message as example #")
    assert socket_bot.deps is not None
    (example,) = [
        e
        for e in socket_bot.deps.store.list_examples(socket_bot.team, "default")
        if e.text == message["text"]
    ]
    assert (example.label, example.author) == ("weather", "U0AUTHOR")
    assert example.source_url == "https://standin.slack.com/archives/C0GENERAL/p1700000000000100"


def test_a_redelivered_envelope_is_acked_and_answered_once(socket_bot: SocketModeBot) -> None:
    slack, gemini, socket = socket_bot.slack, socket_bot.gemini, socket_bot.socket
    assert gemini is not None
    gemini.latency(1.0, on="generate")
    event = dm("hi", channel="D0REDELIVER")
    first = socket_bot.send_event(event, event_id="EvRedeliver")
    again = socket_bot.send_event(event, event_id="EvRedeliver", retry_attempt=1, retry_reason="timeout")
    assert again.message["retry_attempt"] == 1 and again.message["retry_reason"] == "timeout"
    assert first.envelope_id != again.envelope_id
    for envelope in (first, again):  # both acked, or Slack would send it a third time
        ack = socket.wait_for_ack(envelope)
        assert ack.payload is None and ack.elapsed is not None and ack.elapsed < ACK_DEADLINE

    eventually(lambda: "echo: hi" in texts_in(slack, "D0REDELIVER"), timeout=10, what="the answer")
    socket_bot.settle()
    time.sleep(0.5)  # a second run, had one started, would have asked Gemini by now
    assert [t for t in texts_in(slack, "D0REDELIVER") if t != "Asking Gemini…"] == ["echo: hi"]
    assert len(gemini.requests("generate")) == 1
    assert socket_bot.deps is not None
    finished_at, attempts, payload = claims(socket_bot.deps.store)["EvRedeliver"]
    assert finished_at is not None and attempts == 1 and payload is None


def test_a_request_is_claimed_while_it_runs_and_finished_after(socket_bot: SocketModeBot) -> None:
    gemini = socket_bot.gemini
    assert gemini is not None and socket_bot.deps is not None
    store = socket_bot.deps.store
    gemini.latency(1.5, on="generate")
    envelope = socket_bot.send_event(dm("hold on", channel="D0CLAIM"), event_id="EvClaimed")
    socket_bot.socket.wait_for_ack(envelope)

    # Acked, and the answer still on its way: the claim is held, with the request to run again.
    eventually(lambda: "EvClaimed" in claims(store), timeout=3, what="the claim")
    finished_at, attempts, payload = claims(store)["EvClaimed"]
    assert finished_at is None and attempts == 1 and payload is not None and '"hold on"' in payload

    eventually(
        lambda: "echo: hold on" in texts_in(socket_bot.slack, "D0CLAIM"), timeout=10, what="the answer"
    )
    socket_bot.settle()
    finished_at, attempts, payload = claims(store)["EvClaimed"]
    assert finished_at is not None and attempts == 1 and payload is None


# -- what only Socket Mode has ------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["refresh_requested", "warning"])
def test_a_disconnect_makes_the_app_reconnect_and_carry_on(socket_bot: SocketModeBot, reason: str) -> None:
    slack, socket = socket_bot.slack, socket_bot.socket
    retired = socket.disconnect(reason)
    old, new = socket.wait_for_connections(2)
    assert old is retired and old.disconnect_reason == reason
    assert [c.token for c in slack.calls("apps.connections.open")] == [socket.app_token] * 2
    assert new.ticket != old.ticket
    eventually(lambda: not old.open, timeout=5, what="the old connection closed")

    seed(socket_bot)
    envelope = socket_bot.send_command("/classify", "where is my package delivery")
    assert envelope.connection == new.number
    ack = socket.wait_for_ack(envelope)
    assert ack.connection == new.number and ack.payload is None
    slack.wait_for("chat.update")
    socket_bot.settle()
    assert "*shipping*" in texts_of(slack.calls("chat.update")[-1].params)
    # One reconnection, no more: the app stays on the new connection.
    assert len(socket.connections()) == 2 and new.open
    assert len(slack.calls("apps.connections.open")) == 2


# -- the command itself --------------------------------------------------------------------------


def test_gembot_serve_socket_answers_over_socket_mode_and_stops_on_sigterm(
    slack_standin: SlackStandIn,
    socket_mode_standin: SocketModeStandIn,
    gemini_standin: GeminiStandIn,
    tmp_path: Path,
) -> None:
    env = server_env(
        slack_standin,
        gemini_standin,
        f"sqlite:///{tmp_path / 'gembot.db'}",
        extra={"SLACK_APP_TOKEN": socket_mode_standin.app_token, "SLACK_SIGNING_SECRET": ""},
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli.main", "serve", "--socket"],
            cwd=tmp_path,  # no .env of the checkout
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            (connection,) = socket_mode_standin.wait_for_connections(1, timeout=60)
            payload = dict(
                parse_qsl(
                    command_body(
                        "/ask",
                        "Are you there?",
                        channel_id="C0SOCKET",
                        team_id=slack_standin.team_id,
                        response_url=slack_standin.response_url(),
                    )
                )
            )
            envelope = socket_mode_standin.send("slash_commands", payload)
            ack = socket_mode_standin.wait_for_ack(envelope)
            assert ack.payload is None and ack.elapsed is not None and ack.elapsed < ACK_DEADLINE
            eventually(
                lambda: "echo: Are you there?" in texts_in(slack_standin, "C0SOCKET"),
                timeout=20,
                what="the answer",
            )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(
                    f"gembot serve --socket ignored SIGTERM:\n{log_path.read_text()}"
                ) from None
    log = log_path.read_text(errors="replace")
    assert code == 0, log
    assert "serving Slack over Socket Mode" in log and "Traceback" not in log, log
    eventually(lambda: not connection.open, timeout=5, what="the connection closed")
    assert [c.token for c in slack_standin.calls("apps.connections.open")] == [socket_mode_standin.app_token]
    for secret in (socket_mode_standin.app_token, slack_standin.bot_token, gemini_standin.api_key):
        assert secret not in log
