"""Files people share with the bot: fetched from `url_private_download` with the bot token, size-capped.

Slack answers a request it will not serve (a token without `files:read`, a file the bot cannot
see) with its HTML sign-in page and status 200, not with an error; `download` recognises that page
and says what to fix, so it is never handed on as if it were the file.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from core.errors import InvalidInput

TIMEOUT = 30.0


def file_name(file: Mapping[str, Any]) -> str:
    return str(file.get("name") or file.get("title") or file.get("id") or "that file")


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def download(file: Mapping[str, Any], *, token: str, max_bytes: int, timeout: float = TIMEOUT) -> bytes:
    """The bytes of a Slack file object (from an event's `files`), at most `max_bytes` of them.

    Raises InvalidInput, worded for the user, when the file is too large (checked before any
    byte is fetched when Slack gave its size), cannot be fetched, or Slack sent its sign-in page.
    """
    name = file_name(file)
    size = file.get("size")
    if isinstance(size, int) and size > max_bytes:
        raise InvalidInput(f"{name} is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}")
    url = file.get("url_private_download") or file.get("url_private")
    if not url:
        raise InvalidInput(f"Slack did not say where to fetch {name} from (is it an external file?)")
    request = urllib.request.Request(str(url), headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
            content_type = str(response.headers.get("Content-Type") or "")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "code", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise InvalidInput(f"I couldn't fetch {name} from Slack ({reason}); try sharing it again") from None
    if len(data) > max_bytes:
        raise InvalidInput(f"{name} is larger than the limit of {_megabytes(max_bytes)}")
    if content_type.startswith("text/html") and not str(file.get("mimetype") or "").startswith("text/html"):
        raise InvalidInput(
            f"Slack sent a sign-in page instead of {name}: the app needs the files:read scope "
            "(reinstall it from manifest.yml)"
        )
    return data
