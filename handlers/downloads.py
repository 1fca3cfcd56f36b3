"""Files people share with the bot: fetched from `url_private_download` with the bot token, size-capped.

The request carries the bot token, so where it goes is decided here, not by the file object: a
file object's URLs are whatever the event or `files.info` says, and a remote file
(`files.remote.add`) has `url_private` on any host its app chose, a crafted one on any host an
attacker chose. So a file is fetched only from Slack's file host (`https://files.slack.com`, or
the origin of SLACK_API_URL when that points at a gateway), checked before any request is made; a
file Slack itself calls external is never fetched at all; and a redirect is followed only within
that origin (at most MAX_REDIRECTS of them), never with the token to another scheme, host or port.

Slack answers a request it will not serve (a token without `files:read`, a file the bot cannot
see) with its HTML sign-in page and status 200, or with a redirect to the workspace's own
`*.slack.com` page, not with an error; `download` recognises both and says what to fix, so the
page is never handed on as if it were the file.
"""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.client import HTTPMessage
from typing import IO, Any, NamedTuple
from urllib.parse import urlsplit

from core.errors import InvalidInput

log = logging.getLogger(__name__)

TIMEOUT = 30.0
SLACK_FILES_ORIGIN = "https://files.slack.com"
# Slack's file host may hand a download on within itself; more than this is a loop.
MAX_REDIRECTS = 3

# The scheme and authority of an http(s) URL, in a form every parser reads the same way: no
# userinfo, no percent-escapes, backslashes or spaces in the host (where `urlsplit`, urllib's
# Request and http.client could each see a different host), an optional numeric port.
_URL = re.compile(
    r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
    r"(?:[/?#][!-~]*)?",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    """Scheme, host and port: what must match, exactly, for a URL to receive the bot token."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"


def origin_of(url: str) -> Origin | None:
    """The origin of an http(s) URL, or None for anything else (userinfo, odd characters, no host)."""
    found = _URL.fullmatch(url)
    if found is None:
        return None
    scheme, host = found["scheme"].lower(), found["host"].lower()
    split = urlsplit(url)
    port = int(found["port"]) if found["port"] else _DEFAULT_PORTS[scheme]
    # The regex and urlsplit must agree, or some parser may send the request elsewhere.
    if split.scheme.lower() != scheme or (split.hostname or "") != host.strip("[]") or not 0 < port < 65536:
        return None
    return Origin(scheme, host, port)


def files_origin(api_url: str) -> str:
    """Where files may be fetched from for the Web API at `api_url` (the WebClient's `base_url`).

    Slack's own API (`https://slack.com/api/`) serves files from `https://files.slack.com`; any
    other API URL (a gateway, a test stand-in) is taken to serve them from its own origin.
    """
    api = origin_of(api_url)
    if api is None:
        return ""  # no origin at all: nothing may be fetched
    if api == Origin("https", "slack.com", 443):
        return SLACK_FILES_ORIGIN
    return str(api)


def file_name(file: Mapping[str, Any]) -> str:
    return str(file.get("name") or file.get("title") or file.get("id") or "that file")


def is_external(file: Mapping[str, Any]) -> bool:
    """Whether Slack says the file lives outside Slack (a remote file, a Google Drive link...)."""
    return file.get("is_external") is True or file.get("mode") == "external"


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _not_on_slack(name: str, where: str) -> InvalidInput:
    return InvalidInput(f"I can only read files uploaded to Slack; {name} {where}")


def _sign_in_page(name: str) -> InvalidInput:
    return InvalidInput(
        f"Slack sent a sign-in page instead of {name}: the app needs the files:read scope "
        "(reinstall it from manifest.yml)"
    )


class _LeftOrigin(Exception):
    """A redirect that would have taken the token out of the allowed origin; nothing was sent."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only within `allowed`; anything else ends the download unsent."""

    max_repeats = MAX_REDIRECTS
    max_redirections = MAX_REDIRECTS

    def __init__(self, allowed: Origin) -> None:
        super().__init__()
        self.allowed = allowed

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin_of(new.full_url) != self.allowed:
            fp.close()
            raise _LeftOrigin(new.full_url)
        return new


def _is_slack_page(url: str, allowed: Origin) -> bool:
    """Whether `url` is a page of Slack itself (a workspace's sign-in page) next to its file host."""
    found = origin_of(url)
    return (
        allowed == origin_of(SLACK_FILES_ORIGIN)
        and found is not None
        and found.scheme == "https"
        and (found.host == "slack.com" or found.host.endswith(".slack.com"))
    )


def download(
    file: Mapping[str, Any],
    *,
    token: str,
    max_bytes: int,
    timeout: float = TIMEOUT,
    allowed_origin: str = SLACK_FILES_ORIGIN,
) -> bytes:
    """The bytes of a Slack file object (from an event's `files`), at most `max_bytes` of them.

    Only a file Slack hosts is fetched, and only from `allowed_origin` (see the module doc); the
    token goes nowhere else, redirects included. Raises InvalidInput, worded for the user, when
    the file is external or elsewhere, too large (checked before any byte is fetched when Slack
    gave its size), cannot be fetched, or Slack sent its sign-in page.
    """
    name = file_name(file)
    if is_external(file):
        raise _not_on_slack(name, "is stored outside Slack (upload the file itself)")
    size = file.get("size")
    if isinstance(size, int) and size > max_bytes:
        raise InvalidInput(f"{name} is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}")
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    if not url:
        raise InvalidInput(f"Slack did not say where to fetch {name} from (is it an external file?)")
    allowed = origin_of(allowed_origin)
    found = origin_of(url)
    if allowed is None or found != allowed:
        log.warning("refused to fetch %s from %s: files come from %s", name, found, allowed_origin)
        raise _not_on_slack(name, f"is not on Slack's file host ({found or 'no such host'})")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    opener = urllib.request.build_opener(_SameOriginRedirects(allowed))
    try:
        with opener.open(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
            content_type = str(response.headers.get("Content-Type") or "")
    except _LeftOrigin as left:
        if _is_slack_page(left.url, allowed):
            raise _sign_in_page(name) from None
        elsewhere = origin_of(left.url)
        log.warning("refused a redirect of %s from %s to %s", name, allowed, elsewhere or left.url)
        raise _not_on_slack(name, f"was sent on to another host ({elsewhere or 'no such host'})") from None
    except urllib.error.HTTPError as exc:
        reason: object = "too many redirects" if 300 <= exc.code < 400 else exc.code
        raise InvalidInput(f"I couldn't fetch {name} from Slack ({reason}); try sharing it again") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise InvalidInput(f"I couldn't fetch {name} from Slack ({reason}); try sharing it again") from None
    if len(data) > max_bytes:
        raise InvalidInput(f"{name} is larger than the limit of {_megabytes(max_bytes)}")
    if content_type.startswith("text/html") and not str(file.get("mimetype") or "").startswith("text/html"):
        raise _sign_in_page(name)
    return data
