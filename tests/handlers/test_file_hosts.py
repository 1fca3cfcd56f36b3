"""The bot token goes to Slack's file host and nowhere else, whatever a file object says.

Each attack is sent through the running HTTP app as a signed event (an image by mention, an image by
DM, a PDF by mention, a text file by DM, a CSV by DM), with a second loopback server standing for
the outside world next to the Slack stand-in: a remote file (`files.remote.add`) whose `url_private`
is on the outside host, the same file sent as a stub that `files.info` completes, a crafted file
object whose `url_private_download` names the outside host, and a file on Slack's host that answers
a redirect to the outside host. The outside host must receive nothing, and the person is told why.
The rule itself (`handlers.downloads`) is tested directly too: which URLs match which origin,
redirects within the origin followed and bounded, Slack's sign-in page still recognised (on Slack's
host, through the app, and directly).
"""

from __future__ import annotations

import csv
import io
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.errors import InvalidInput
from handlers import downloads
from tests.support.gemini_support import image_bytes
from tests.support.loopback import Loopback
from tests.support.slack_fixtures import BotServer
from tests.support.slack_standin import SlackStandIn

BOT = "U0GEMBOT"
CHANNEL = "C0GENERAL"
DM = "D0HUMAN"
REFUSED = "I can only read files uploaded to Slack"
LABELS_CSV = b"text,label\nmy card was charged twice,billing\nwhere is my parcel,shipping\n"
_clock = itertools.count(1)


# -- the outside world -----------------------------------------------------------------------------


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request the outside host received."""

    method: str
    path: str
    headers: dict[str, str]


class OutsideWorld(Loopback):
    """Any host that is not Slack, on 127.0.0.1 and a port of its own: it records every request
    and answers it with what the attacker would serve (a real image or CSV, so that a download
    that reached it would go on to succeed)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self.body, self.content_type = image_bytes("PNG"), "image/png"

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Answer:
        with self._lock:
            self._seen.append(Seen(method, target, dict(headers)))
        return _Answer(200, self.body, self.content_type)

    def _failure(self, exc: Exception) -> _Answer:
        return _Answer(500, repr(exc).encode(), "text/plain")

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def assert_untouched(self, token: str) -> None:
        seen = self.requests()
        leaked = [s for s in seen if any(token in v for v in s.headers.values())]
        assert not leaked, f"the bot token reached the outside host: {leaked}"
        assert seen == [], f"the outside host was asked for {[s.path for s in seen]}"


@pytest.fixture
def outside() -> Iterator[OutsideWorld]:
    with OutsideWorld() as world:
        yield world


# -- the surfaces ----------------------------------------------------------------------------------


def _ts() -> str:
    return f"1700003{next(_clock):03d}.000300"


def _mention(text: str, found: list[dict[str, Any]]) -> dict[str, Any]:
    ts = _ts()
    return {
        "type": "app_mention",
        "user": "U0HUMAN",
        "text": f"<@{BOT}> {text}",
        "ts": ts,
        "event_ts": ts,
        "channel": CHANNEL,
        "files": found,
        "upload": False,
    }


def _direct(text: str, found: list[dict[str, Any]]) -> dict[str, Any]:
    ts = _ts()
    return {
        "type": "message",
        "subtype": "file_share",
        "user": "U0HUMAN",
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel": DM,
        "channel_type": "im",
        "files": found,
        "upload": True,
    }


@dataclass(frozen=True)
class Surface:
    """Where a file reaches the bot: the file it is, the event that carries it, what success says."""

    name: str
    mimetype: str
    data: bytes
    event: Callable[[list[dict[str, Any]]], dict[str, Any]]
    channel: str
    answered: str


PNG = image_bytes("PNG", size=(5, 4))
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
SURFACES = [
    pytest.param(
        Surface("chart.png", "image/png", PNG, lambda f: _mention("what is this?", f), CHANNEL, "echo:"),
        id="image-by-mention",
    ),
    pytest.param(
        Surface("photo.png", "image/png", PNG, lambda f: _direct("what is this?", f), DM, "echo:"),
        id="image-by-dm",
    ),
    pytest.param(
        Surface("report.pdf", "application/pdf", PDF, lambda f: _mention("summarise", f), CHANNEL, "echo:"),
        id="pdf-by-mention",
    ),
    pytest.param(
        Surface("notes.txt", "text/plain", b"ship on Friday\n", lambda f: _direct("when?", f), DM, "echo:"),
        id="text-by-dm",
    ),
    pytest.param(
        Surface(
            "labels.csv", "text/csv", LABELS_CSV, lambda f: _direct("import", f), DM, "Imported 2 examples"
        ),
        id="csv-by-dm",
    ),
]


def texts_of(params: dict[str, Any]) -> str:
    found = [str(params.get("text") or "")]
    for block in params.get("blocks") or []:
        if "text" in block:
            found.append(block["text"]["text"])
    return " ".join(found)


def _serve(outside: OutsideWorld, surface: Surface) -> str:
    """Make the outside host serve what the surface wants; the URL of it there."""
    outside.body, outside.content_type = surface.data, surface.mimetype
    return outside.url(f"/files-pri/T0STANDIN-F0EVIL/download/{surface.name}")


def remote(slack: SlackStandIn, outside: OutsideWorld, surface: Surface) -> dict[str, Any]:
    return slack.add_remote_file(surface.name, _serve(outside, surface), surface.mimetype)


def remote_stub(slack: SlackStandIn, outside: OutsideWorld, surface: Surface) -> dict[str, Any]:
    full = remote(slack, outside, surface)
    return {"id": full["id"], "mode": "file_access", "file_access": "check_file_info"}


def crafted(slack: SlackStandIn, outside: OutsideWorld, surface: Surface) -> dict[str, Any]:
    hosted = slack.add_file(surface.data, surface.name, surface.mimetype)
    return {**hosted, "url_private_download": _serve(outside, surface)}


def redirected(slack: SlackStandIn, outside: OutsideWorld, surface: Surface) -> dict[str, Any]:
    hosted = slack.add_file(surface.data, surface.name, surface.mimetype)
    slack.redirect_file(hosted["id"], _serve(outside, surface))
    return hosted


ATTACKS = [
    pytest.param(remote, "is stored outside Slack", id="remote-file"),
    pytest.param(remote_stub, "is stored outside Slack", id="remote-file-stub"),
    pytest.param(crafted, "is not on Slack's file host", id="crafted-url"),
    pytest.param(redirected, "was sent on to another host", id="redirect-off-slack"),
]


def _nothing_done(server: BotServer, surface: Surface) -> None:
    assert server.gemini is not None and server.gemini.requests("generate") == []
    assert server.deps is not None and server.deps.store.list_sets(server.team) == []


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(("attack", "why"), ATTACKS)
def test_the_outside_host_receives_nothing_and_the_person_is_told(
    bot_server: BotServer,
    outside: OutsideWorld,
    surface: Surface,
    attack: Callable[[SlackStandIn, OutsideWorld, Surface], dict[str, Any]],
    why: str,
) -> None:
    slack = bot_server.slack
    file = attack(slack, outside, surface)
    assert bot_server.send_event(surface.event([file])).status == 200
    (update,) = slack.wait_for("chat.update")
    bot_server.settle()

    outside.assert_untouched(slack.bot_token)
    assert f":warning: {REFUSED}; {surface.name} {why}" in texts_of(update.params)
    assert update.params["channel"] == surface.channel
    # Slack's own host is the only one asked, and only when the file is really on it.
    downloads = slack.calls("download")
    assert len(downloads) == (1 if attack is redirected else 0)
    assert all(d.token == slack.bot_token for d in downloads)
    _nothing_done(bot_server, surface)


@pytest.mark.parametrize("surface", SURFACES)
def test_a_file_on_slacks_host_is_still_read(
    bot_server: BotServer, outside: OutsideWorld, surface: Surface
) -> None:
    slack = bot_server.slack
    file = slack.add_file(surface.data, surface.name, surface.mimetype)
    bot_server.send_event(surface.event([file]))
    # Gemini's answers (about an image or a document) stream; a CSV's import replaces the
    # working message.
    if surface.answered == "echo:":
        (shown,) = slack.wait_for_streams()
    else:
        shown = slack.wait_for("chat.update")[0].params
    assert surface.answered in texts_of(shown)
    (download,) = slack.calls("download")
    assert download.token == slack.bot_token
    assert outside.requests() == []


@pytest.mark.parametrize("surface", SURFACES)
def test_slacks_sign_in_page_is_not_taken_for_the_file(bot_server: BotServer, surface: Surface) -> None:
    slack = bot_server.slack
    file = slack.add_file(surface.data, surface.name, surface.mimetype)
    slack.hide_file(file["id"])  # as for a token without files:read: the sign-in page, status 200
    bot_server.send_event(surface.event([file]))
    (update,) = slack.wait_for("chat.update")
    shown = texts_of(update.params)
    assert f"sign-in page instead of {surface.name}" in shown and "files:read" in shown
    (download,) = slack.calls("download")
    assert download.token == slack.bot_token
    _nothing_done(bot_server, surface)


def test_a_redirect_within_slacks_host_is_followed_with_the_token(bot_server: BotServer) -> None:
    slack = bot_server.slack
    moved = slack.add_file(PNG, "moved.png", "image/png")
    first = slack.add_file(b"", "first.png", "image/png")
    slack.redirect_file(first["id"], moved["url_private_download"])
    bot_server.send_event(_mention("and this?", [first]))
    (update,) = slack.wait_for_streams()
    assert "echo: and this? [image image/png" in texts_of(update)
    assert [d.token for d in slack.calls("download")] == [slack.bot_token] * 2


def test_a_file_on_another_slacks_host_is_refused_unfetched(bot_server: BotServer) -> None:
    # Another workspace's stand-in is another origin (same host, another port): never asked.
    with SlackStandIn(bot_token="xoxb-someone-else") as elsewhere:
        file = elsewhere.add_file(PNG, "secret.png", "image/png")
        bot_server.send_event(_mention("what is this?", [file]))
        (update,) = bot_server.slack.wait_for("chat.update")
        assert elsewhere.calls() == []
    assert f"{REFUSED}; secret.png is not on Slack's file host" in texts_of(update.params)


# -- the rule itself -------------------------------------------------------------------------------


def test_slacks_api_serves_files_from_files_slack_com_only() -> None:
    assert downloads.files_origin("https://slack.com/api/") == "https://files.slack.com"
    assert downloads.files_origin("https://slack.com/api") == "https://files.slack.com"
    assert downloads.files_origin("https://SLACK.com:443/api/") == "https://files.slack.com"
    assert downloads.files_origin("https://gateway.example.com/slack/api/") == "https://gateway.example.com"
    assert downloads.files_origin("http://127.0.0.1:8123/api/") == "http://127.0.0.1:8123"
    assert downloads.files_origin("https://user@slack.com/api/") == ""  # matches nothing
    slack = downloads.origin_of(downloads.SLACK_FILES_ORIGIN)
    for url in [
        "https://files.slack.com/files-pri/T1-F1/download/a.png",
        "https://FILES.Slack.com/files-pri/T1-F1/a.png",
        "https://files.slack.com:443/files-pri/T1-F1/a.png?t=1",
        "https://files.slack.com",
    ]:
        assert downloads.origin_of(url) == slack, url


@pytest.mark.parametrize(
    "url",
    [
        "https://files.slack.com.evil.com/files-pri/T1-F1/a.png",
        "https://evil.com/files.slack.com/files-pri/T1-F1/a.png",
        "https://evil.com/?https://files.slack.com/",
        "https://files.slack.com@evil.com/files-pri/T1-F1/a.png",
        "https://files.slack.com:443@evil.com/a.png",
        "https://user:secret@files.slack.com/files-pri/T1-F1/a.png",
        "https://files.slack.com\\@evil.com/a.png",
        "https://files.slack.com%2eevil.com/a.png",
        "https://files.slack.com\t.evil.com/a.png",
        "https://files.slack.com /a.png",
        "https://files.slack.com:8443/files-pri/T1-F1/a.png",
        "https://files.slack.com:99999/a.png",
        "http://files.slack.com/files-pri/T1-F1/a.png",
        "https://slack.com/files-pri/T1-F1/a.png",
        "https://evil-files.slack.com/a.png",
        "ftp://files.slack.com/a.png",
        "file:///etc/passwd",
        "//files.slack.com/a.png",
        "files.slack.com/a.png",
    ],
)
def test_any_other_url_is_refused_before_a_request(url: str) -> None:
    file = {"id": "F1", "name": "a.png", "mimetype": "image/png", "url_private_download": url}
    # A request would end in "I couldn't fetch" (nothing resolves here); the refusal comes first.
    with pytest.raises(InvalidInput, match=f"^{REFUSED}; a.png is not on Slack's file host"):
        downloads.download(file, token="xoxb-secret", max_bytes=1000)


def test_a_gateways_origin_is_that_origin_only(slack_standin: SlackStandIn, outside: OutsideWorld) -> None:
    allowed = downloads.files_origin(slack_standin.api_url)
    hosted = slack_standin.add_file(PNG, "a.png", "image/png")
    assert (
        downloads.download(hosted, token=slack_standin.bot_token, max_bytes=10_000, allowed_origin=allowed)
        == PNG
    )
    path = hosted["url_private_download"].split(str(slack_standin.port), 1)[1]
    for url in [
        outside.url(path),  # the same host, another port
        f"http://localhost:{slack_standin.port}{path}",
        f"https://127.0.0.1:{slack_standin.port}{path}",
        f"http://127.0.0.1:{slack_standin.port}@127.0.0.1:{outside.port}{path}",
        f"https://files.slack.com{path}",
    ]:
        with pytest.raises(InvalidInput, match=f"^{REFUSED}"):
            downloads.download(
                {**hosted, "url_private_download": url},
                token=slack_standin.bot_token,
                max_bytes=10_000,
                allowed_origin=allowed,
            )
    assert len(slack_standin.calls("download")) == 1
    outside.assert_untouched(slack_standin.bot_token)


@pytest.mark.parametrize(
    "marks", [{"is_external": True}, {"mode": "external"}, {"is_external": True, "mode": "external"}]
)
def test_an_external_file_is_never_fetched_even_from_slacks_host(
    slack_standin: SlackStandIn, marks: dict[str, Any]
) -> None:
    hosted = slack_standin.add_file(PNG, "linked.png", "image/png")
    with pytest.raises(InvalidInput, match=f"^{REFUSED}; linked.png is stored outside Slack"):
        downloads.download(
            {**hosted, **marks},
            token=slack_standin.bot_token,
            max_bytes=10_000,
            allowed_origin=slack_standin.base_url,
        )
    assert slack_standin.calls("download") == []


def test_redirects_are_followed_within_the_origin_and_bounded(slack_standin: SlackStandIn) -> None:
    token, origin = slack_standin.bot_token, slack_standin.base_url
    chain = [slack_standin.add_file(PNG, "end.png", "image/png")]
    for n in range(downloads.MAX_REDIRECTS):
        chain.append(slack_standin.add_file(b"", f"hop{n}.png", "image/png"))
        slack_standin.redirect_file(chain[-1]["id"], chain[-2]["url_private_download"])
    assert downloads.download(chain[-1], token=token, max_bytes=10_000, allowed_origin=origin) == PNG
    assert [c.token for c in slack_standin.calls("download")] == [token] * (downloads.MAX_REDIRECTS + 1)

    slack_standin.clear_calls()
    loop = slack_standin.add_file(b"", "loop.png", "image/png")
    slack_standin.redirect_file(loop["id"], loop["url_private"])
    with pytest.raises(InvalidInput, match=r"^I couldn't fetch loop.png from Slack \(too many redirects\)"):
        downloads.download(loop, token=token, max_bytes=10_000, allowed_origin=origin)
    assert len(slack_standin.calls("download")) == downloads.MAX_REDIRECTS + 1


def test_a_redirect_to_another_origin_sends_it_nothing(
    slack_standin: SlackStandIn, outside: OutsideWorld
) -> None:
    hosted = slack_standin.add_file(PNG, "a.png", "image/png")
    for location in [outside.url("/a.png"), f"https://127.0.0.1:{slack_standin.port}/a.png"]:
        slack_standin.redirect_file(hosted["id"], location)
        with pytest.raises(InvalidInput, match=f"^{REFUSED}; a.png was sent on to another host"):
            downloads.download(
                hosted, token=slack_standin.bot_token, max_bytes=10_000, allowed_origin=slack_standin.base_url
            )
    outside.assert_untouched(slack_standin.bot_token)


def test_a_redirect_to_a_workspace_page_is_slacks_sign_in() -> None:
    # What files.slack.com answers a token that may not read the file: a 302 to the workspace.
    slack = downloads.origin_of(downloads.SLACK_FILES_ORIGIN)
    assert slack is not None
    assert downloads._is_slack_page("https://acme.slack.com/?redir=%2Ffiles-pri%2FT1-F1%2Fa.png", slack)
    assert not downloads._is_slack_page("https://acme.slack.com.evil.com/?redir=x", slack)
    assert not downloads._is_slack_page("http://acme.slack.com/", slack)
    standin = downloads.origin_of("http://127.0.0.1:8123")
    assert standin is not None and not downloads._is_slack_page("https://acme.slack.com/", standin)


def test_slacks_sign_in_page_is_still_recognised(slack_standin: SlackStandIn) -> None:
    # A workspace whose token is not ours answers the download with its HTML sign-in page.
    with SlackStandIn(bot_token="xoxb-someone-else") as elsewhere:
        file = elsewhere.add_file(PNG, "secret.png", "image/png")
        with pytest.raises(InvalidInput, match=r"^Slack sent a sign-in page instead of secret\.png"):
            downloads.download(
                file, token=slack_standin.bot_token, max_bytes=10_000, allowed_origin=elsewhere.base_url
            )
        (download,) = elsewhere.calls("download")
    assert download.token == slack_standin.bot_token


def test_the_size_cap_still_holds(slack_standin: SlackStandIn) -> None:
    rows = [("text", "label")] + [(f"row {n}", "x") for n in range(500)]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    data = out.getvalue().encode()
    hosted = slack_standin.add_file(data, "big.csv", "text/csv")
    kwargs: dict[str, Any] = {"token": slack_standin.bot_token, "allowed_origin": slack_standin.base_url}
    with pytest.raises(InvalidInput, match=r"^big\.csv is 0\.0 MB; the limit is 0\.0 MB"):
        downloads.download(hosted, max_bytes=100, **kwargs)
    assert slack_standin.calls("download") == []
    unsized = {k: v for k, v in hosted.items() if k != "size"}
    with pytest.raises(InvalidInput, match=r"^big\.csv is larger than the limit"):
        downloads.download(unsized, max_bytes=100, **kwargs)
    assert downloads.download(unsized, max_bytes=len(data), **kwargs) == data
