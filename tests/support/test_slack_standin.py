"""The Slack stand-in, driven by the real slack_sdk WebClient: what colleagues' scenario tests rely on."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from tests.support.slack_standin import SIGN_IN_PAGE, SlackStandIn


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


def client(slack: SlackStandIn, token: str | None = None, **options: object) -> WebClient:
    return WebClient(token=token or slack.bot_token, base_url=slack.api_url, **options)  # type: ignore[arg-type]


def test_auth_test_and_a_wrong_token(slack: SlackStandIn) -> None:
    assert client(slack).auth_test()["user_id"] == slack.bot_user_id
    with pytest.raises(SlackApiError) as caught:
        client(slack, "xoxb-wrong").auth_test()
    assert caught.value.response["error"] == "invalid_auth"
    assert [c.token for c in slack.calls("auth.test")] == [slack.bot_token, "xoxb-wrong"]


def test_post_update_delete_and_what_the_channel_shows(slack: SlackStandIn) -> None:
    web = client(slack)
    posted = web.chat_postMessage(
        channel="C1", text="working", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "w"}}]
    )
    web.chat_update(channel="C1", ts=posted["ts"], text="done", blocks=[])
    other = web.chat_postMessage(channel="C1", text="bye", thread_ts=posted["ts"])
    assert [m["text"] for m in slack.messages("C1")] == ["done", "bye"]
    web.chat_delete(channel="C1", ts=other["ts"])
    assert [m["text"] for m in slack.messages("C1")] == ["done"]
    assert slack.last("chat.postMessage").params["thread_ts"] == posted["ts"]
    assert slack.calls("chat.postMessage")[0].params["blocks"][0]["type"] == "section"  # JSON decoded
    web.chat_postEphemeral(channel="C1", user="U1", text="psst")
    assert len(slack.messages("C1")) == 1  # ephemeral messages are not in the channel
    link = web.chat_getPermalink(channel="C1", message_ts="1700000000.000100")["permalink"]
    assert link.endswith("/archives/C1/p1700000000000100")


def test_history_and_replies_are_seeded(slack: SlackStandIn) -> None:
    slack.add_message("C1", "first", ts="1.000001")
    slack.add_message("C1", "second", ts="1.000002")
    slack.add_message("C1", "in thread", ts="1.000003", thread_ts="1.000001")
    web = client(slack)
    history = web.conversations_history(channel="C1", limit=1)
    assert [m["text"] for m in history["messages"]] == ["second"]  # newest first
    assert history["has_more"] is True
    rest = web.conversations_history(channel="C1", cursor=history["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["first"]
    assert [m["text"] for m in web.conversations_replies(channel="C1", ts="1.000001")["messages"]] == [
        "first",
        "in thread",
    ]


def test_membership_and_joining(slack: SlackStandIn) -> None:
    slack.add_channel("C2", member=False)
    slack.add_channel("G2", member=False, private=True)
    web = client(slack)
    with pytest.raises(SlackApiError, match="not_in_channel"):
        web.chat_postMessage(channel="C2", text="hi")
    web.conversations_join(channel="C2")
    web.chat_postMessage(channel="C2", text="hi")
    with pytest.raises(SlackApiError, match="method_not_supported_for_channel_type"):
        web.conversations_join(channel="G2")


def test_files_upload_v2_end_to_end(slack: SlackStandIn) -> None:
    web = client(slack)
    done = web.files_upload_v2(
        channel="C1",
        content=b"\x89PNG...",
        filename="chart.png",
        title="Chart",
        initial_comment="here",
        thread_ts="1.1",
    )
    (upload,) = slack.uploads()
    assert (upload.data, upload.filename, upload.title, upload.channels) == (
        b"\x89PNG...",
        "chart.png",
        "Chart",
        ["C1"],
    )
    assert (upload.initial_comment, upload.thread_ts) == ("here", "1.1")
    info = web.files_info(file=done["file"]["id"])["file"]
    assert info["name"] == "chart.png" and info["mimetype"] == "image/png"
    assert slack.methods() == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
        "files.info",
    ]


def test_downloads_need_the_bot_token(slack: SlackStandIn) -> None:
    file = slack.add_file(b"GIF89a...", "cat.gif", "image/gif")

    def get(url: str, token: str | None) -> tuple[int, str, bytes]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()

    assert get(file["url_private_download"], slack.bot_token) == (200, "image/gif", b"GIF89a...")
    assert get(file["url_private"], slack.bot_token)[2] == b"GIF89a..."
    status, content_type, body = get(file["url_private_download"], None)
    assert (status, body) == (200, SIGN_IN_PAGE) and content_type.startswith("text/html")
    assert get(file["url_private_download"], "xoxb-wrong")[2] == SIGN_IN_PAGE
    assert client(slack).files_info(file=file["id"])["file"]["size"] == len(b"GIF89a...")


def test_views_and_app_home(slack: SlackStandIn) -> None:
    web = client(slack)
    opened = web.views_open(
        trigger_id="1.2.abc",
        view={"type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": []},
    )
    view_id = opened["view"]["id"]
    web.views_update(
        view_id=view_id, view={"type": "modal", "title": {"type": "plain_text", "text": "Hi 2"}, "blocks": []}
    )
    assert slack.views()[view_id]["title"]["text"] == "Hi 2"
    web.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    assert slack.home_views()["U1"]["type"] == "home"


def test_users_info(slack: SlackStandIn) -> None:
    slack.add_user("U1", name="ada", real_name="Ada Lovelace")
    web = client(slack)
    assert web.users_info(user="U1")["user"]["real_name"] == "Ada Lovelace"
    assert web.users_info(user="U9")["user"]["id"] == "U9"
    with pytest.raises(SlackApiError, match="user_not_found"):
        web.users_info(user="nobody")


def test_response_urls_record_what_is_posted(slack: SlackStandIn) -> None:
    url = slack.response_url()
    assert WebhookClient(url).send(text="hello", response_type="ephemeral").status_code == 200
    assert slack.response_posts(url) == [{"text": "hello", "response_type": "ephemeral"}]
    assert slack.response_posts(slack.response_url()) == []


def test_faults(slack: SlackStandIn) -> None:
    slack.fail_next("chat.postMessage", error="not_in_channel")
    with pytest.raises(SlackApiError, match="not_in_channel"):
        client(slack).chat_postMessage(channel="C1", text="x")
    client(slack).chat_postMessage(channel="C1", text="x")  # only the next one failed

    slack.fail_next("chat.update", status=429, retry_after=0)
    slack.fail_next("chat.delete", status=500, n=2)
    web = client(
        slack, retry_handlers=[RateLimitErrorRetryHandler(), ServerErrorRetryHandler(max_retry_count=2)]
    )
    ts = web.chat_postMessage(channel="C1", text="x")["ts"]
    web.chat_update(channel="C1", ts=ts, text="y")
    web.chat_delete(channel="C1", ts=ts)
    assert [c.status for c in slack.calls("chat.update")] == [429, 200]
    assert [c.status for c in slack.calls("chat.delete")] == [500, 500, 200]
    with pytest.raises(ValueError):
        slack.fail_next("chat.update")


def test_wait_for_sees_calls_made_later(slack: SlackStandIn) -> None:
    def later() -> None:
        time.sleep(0.2)
        client(slack).chat_postMessage(channel="C1", text="late")

    threading.Thread(target=later).start()
    (call,) = slack.wait_for("chat.postMessage", timeout=5)
    assert call.params["text"] == "late" and call.ok
    with pytest.raises(AssertionError, match=r"waited 0.1 s for 1 chat.update"):
        slack.wait_for("chat.update", timeout=0.1)


def test_latency(slack: SlackStandIn) -> None:
    slack.latency(0.3, method="auth.test")
    started = time.monotonic()
    client(slack).auth_test()
    assert time.monotonic() - started >= 0.3


def test_handlers_download_reads_files_and_refuses_the_sign_in_page(slack: SlackStandIn) -> None:
    from core.errors import InvalidInput
    from handlers.downloads import download

    file = slack.add_file(b"\x89PNG" + b"0" * 100, "cat.png", "image/png")
    assert (
        download(file, token=slack.bot_token, max_bytes=1000, allowed_origin=slack.base_url)
        == b"\x89PNG" + b"0" * 100
    )
    with pytest.raises(
        InvalidInput, match=r"sign-in page instead of cat\.png: the app needs the files:read scope"
    ):
        download(file, token="xoxb-without-files-read", max_bytes=1000, allowed_origin=slack.base_url)
    with pytest.raises(InvalidInput, match=r"cat.png is 0.0 MB; the limit is 0.0 MB"):
        download(
            file, token=slack.bot_token, max_bytes=50, allowed_origin=slack.base_url
        )  # refused from its declared size
    with pytest.raises(InvalidInput, match="larger than the limit"):
        download(
            {**file, "size": None}, token=slack.bot_token, max_bytes=50, allowed_origin=slack.base_url
        )  # refused while reading
    slack.fail_next("download", status=500)
    with pytest.raises(InvalidInput, match=r"couldn't fetch cat.png from Slack \(500\)"):
        download(file, token=slack.bot_token, max_bytes=1000, allowed_origin=slack.base_url)
    assert len(slack.calls("download")) == 4


# -- streaming ------------------------------------------------------------------------------------


def test_a_stream_grows_one_message_in_the_thread_until_it_is_stopped(slack: SlackStandIn) -> None:
    web = client(slack)
    started = web.chat_startStream(
        channel="C1",
        thread_ts="1.000001",
        markdown_text="Hello",
        recipient_user_id="U1",
        recipient_team_id="T1",
    )
    assert started["ok"] and started["channel"] == "C1" and started["ts"]
    web.chat_appendStream(channel="C1", ts=started["ts"], markdown_text=", wor")
    streamer = web.chat_stream(channel="C1", thread_ts="1.000001", buffer_size=1)
    streamer.append(markdown_text="other")  # chunks, as slack_sdk's helper sends them
    stopped = web.chat_stopStream(
        channel="C1", ts=started["ts"], markdown_text="ld!", blocks=[{"type": "divider"}]
    )
    assert stopped["message"]["text"] == "Hello, world!"
    first, second = slack.messages("C1")
    assert first["text"] == "Hello, world!" and first["thread_ts"] == "1.000001"
    assert first["blocks"] == [{"type": "divider"}]
    assert second["text"] == "other"
    with pytest.raises(SlackApiError) as appended:
        web.chat_appendStream(channel="C1", ts=started["ts"], markdown_text="more")
    assert appended.value.response["error"] == "message_not_in_streaming_state"


def test_a_stream_needs_a_thread(slack: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as refused:
        client(slack).api_call("chat.startStream", json={"channel": "C1", "markdown_text": "hi"})
    assert refused.value.response["error"] == "invalid_arguments"


def test_an_updated_stream_is_no_longer_streaming(slack: SlackStandIn) -> None:
    web = client(slack)
    started = web.chat_startStream(channel="C1", thread_ts="1.000001", markdown_text="a")
    web.chat_update(channel="C1", ts=started["ts"], text="all of it")
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        web.chat_stopStream(channel="C1", ts=started["ts"])


def test_stream_faults_are_injected_like_any_other(slack: SlackStandIn) -> None:
    slack.fail_next("chat.startStream", error="not_allowed")
    with pytest.raises(SlackApiError, match="not_allowed"):
        client(slack).chat_startStream(channel="C1", thread_ts="1.000001", markdown_text="a")
    assert slack.messages("C1") == []


def test_the_thread_status_is_accepted_with_its_loading_messages(slack: SlackStandIn) -> None:
    web = client(slack)
    web.assistant_threads_setStatus(
        channel_id="D1", thread_ts="1.000001", status="is thinking…", loading_messages=["Reading…"]
    )
    assert slack.last("assistant.threads.setStatus").params["loading_messages"] == ["Reading…"]
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        web.api_call("assistant.threads.setStatus", json={"channel_id": "D1", "status": "x"})
