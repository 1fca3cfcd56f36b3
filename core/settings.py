"""One settings object, read once from the environment and an optional `.env` file.

The environment variable names are Gembot's public configuration interface; the README lists
them. Secrets are wrapped in `Secret` so that they never show up in a repr, a log line or an
error message by accident.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import InvalidInput

GEMINI_DIMENSIONS = (768, 1536, 3072)

# The bot scopes an OAuth install asks for: the same list as manifest.yml's `oauth_config.scopes.bot`
# (tests/test_slack_oauth.py checks that the two agree).
SLACK_BOT_SCOPES = (
    "commands",
    "chat:write",
    "app_mentions:read",
    "im:history",
    "im:read",
    "im:write",
    "files:read",
    "files:write",
    "users:read",
    "channels:history",
    "groups:history",
    "channels:join",
)


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a `.env` file: KEY=VALUE lines, `#` comments, optional quotes, optional `export`."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float | None = None) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, not {raw!r}") from None
    if minimum is not None and not value >= minimum:
        raise InvalidInput(f"{name} must be at least {minimum:g}, not {raw}")
    return value


def _optional_float(env: Mapping[str, str], name: str) -> float | None:
    """A number, or None when unset or empty."""
    if not env.get(name, "").strip():
        return None
    return _float(env, name, 0.0)


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{name} must be at least {minimum}, not {value}")
    return value


def _optional_secret(env: Mapping[str, str], *names: str) -> Secret | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return Secret(value)
    return None


def _fernet_keys(env: Mapping[str, str], name: str) -> tuple[Secret, ...]:
    """Comma-separated Fernet keys (32 bytes in URL-safe base64), the first one first; () when unset.

    The error never quotes the value: even a mistyped key is mostly a key.
    """
    keys = tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.b64decode(key, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            which = f"key {position} of {len(keys)} in {name}" if len(keys) > 1 else name
            raise InvalidInput(
                f"{which} is not a Fernet key (32 bytes in URL-safe base64, 44 characters): make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
    return tuple(Secret(key) for key in keys)


def _coverage(env: Mapping[str, str], name: str, default: float) -> float:
    """A share strictly between 0 and 1."""
    value = _float(env, name, default)
    if not 0 < value < 1:
        raise InvalidInput(f"{name} must be between 0 and 1 (say 0.95), not {value:g}")
    return value


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """on/off (also true/false, yes/no, 1/0); unset or empty means `default`."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "yes", "1"):
        return True
    if raw in ("off", "false", "no", "0"):
        return False
    raise InvalidInput(f"{name} must be 'on' or 'off', not {raw!r}")


def _limit(env: Mapping[str, str], name: str) -> int | None:
    """A daily limit: unset or empty means none; otherwise a whole number of at least 1."""
    if not env.get(name, "").strip():
        return None
    value = _int(env, name, 0)
    if value < 1:
        raise InvalidInput(f"{name} must be at least 1, not {value} (leave it unset for no limit)")
    return value


def _ids(env: Mapping[str, str], name: str) -> frozenset[str] | None:
    """Comma- (or space-) separated Slack ids, upper-cased; None when the variable is unset or empty."""
    ids = frozenset(part.strip().upper() for part in env.get(name, "").replace(",", " ").split())
    return ids or None


def _url_password(url: str) -> str | None:
    """The password in a database URL (`postgresql://user:PASSWORD@host/db`), if it has one."""
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None


def _masked_url(url: str) -> str:
    """`url` with its password shown as ***, or a mask for the whole of a URL that does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "***"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything Gembot reads from its environment, typed and validated once."""

    database_url: str = "sqlite:///gembot.db"
    embedder: str = "local"
    embedding_model: str = ""
    embedding_dim: int = 768
    gemini_api_key: Secret | None = None
    gemini_base_url: str | None = None
    gemini_timeout: float = 60.0
    # Retries of 5xx answers, timeouts and per-minute 429s; the first backoff in seconds (it
    # doubles); the longest a per-minute 429's `retryDelay` may ask us to wait before giving up.
    gemini_retries: int = 3
    gemini_retry_delay: float = 1.0
    gemini_max_retry_wait: float = 60.0
    # Images that would push a request's size past this many bytes go through the Files API,
    # and an upload must be ACTIVE within `gemini_file_timeout` seconds.
    inline_image_limit: int = 20_000_000
    gemini_file_timeout: float = 120.0
    # Embedding requests in flight at once, and the client-side requests-per-minute cap (0: none).
    embed_concurrency: int = 4
    embed_rpm: int = 1500
    generation_model: str = "gemini-2.5-flash"
    # Classification: softmax temperature ("auto" = calibrated on the set's own examples) and two
    # optional absolute abstention rules on top of the calibrated one (None: not applied).
    temperature: float | None = None
    min_similarity: float | None = None
    min_margin: float | None = None
    # The share of a set's own kind of text the classifier should answer (the rest: "not sure"),
    # calibrated on the set's held-out examples; and whether an unsure answer goes to Gemini.
    # 0.98 was chosen on BANKING77 draws not reported (benchmarks/banking77.py --choose).
    target_coverage: float = 0.98
    escalate: bool = True
    default_team: str = "local"
    slack_bot_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    slack_app_token: Secret | None = None
    slack_api_url: str | None = None
    # OAuth install (several workspaces): the app's client id and secret, the bot scopes asked for,
    # and the redirect URL when the app has more than one (Slack then wants it named).
    slack_client_id: str | None = None
    slack_client_secret: Secret | None = None
    slack_scopes: tuple[str, ...] = SLACK_BOT_SCOPES
    slack_redirect_uri: str | None = None
    # OAuth install: the Fernet keys the stored Slack tokens are encrypted with (the first encrypts,
    # all decrypt); () means a key derived from the client secret (`bot.token_crypto`).
    token_keys: tuple[Secret, ...] = ()
    port: int = 3000
    # Slack: /similar and /cluster take at most `max_lines` texts (lines, or messages read back);
    # files bigger than this are refused before they are downloaded; lazy listeners (the
    # work done after the 3-second ack) run on this many threads per process; delivered event ids
    # are remembered this many hours, well past Slack's last redelivery (about 5 minutes).
    max_lines: int = 50
    max_image_bytes: int = 20_000_000
    # A CSV sent for bulk classification may have at most this many rows.
    max_csv_rows: int = 10_000
    # A text typed to the bot (/classify, /ask, /label add, each line of /similar and /cluster, a
    # question in a mention or a DM) may have at most this many characters.
    max_text_chars: int = 4_000
    slack_threads: int = 8
    event_retention_hours: float = 24.0
    # `gembot serve --http`: gunicorn worker processes (each loads its own embedding model) and
    # threads per worker.
    http_workers: int = 1
    http_threads: int = 8
    # Shutdown: on SIGTERM a process has this many seconds to finish the work in flight (gunicorn's
    # graceful_timeout; under the 30 s a container orchestrator usually allows) before it is
    # killed. Bulk jobs: a process holds a running job for this many seconds at a time, renewing
    # as it works; a job whose lease lapses is taken over.
    graceful_timeout: int = 25
    job_lease_seconds: float = 60.0
    # Who may change label sets from Slack: "anyone" or "admins" (the ids in `admins`, and the
    # workspace's admins and owners). Gemini calls allowed per user and per workspace each UTC
    # day (None: no limit). The channels Gembot answers in (None: all; DMs with it always).
    curation: str = "anyone"
    admins: frozenset[str] = frozenset()
    user_daily_limit: int | None = None
    team_daily_limit: int | None = None
    allowed_channels: frozenset[str] | None = None
    # With OAuth install, the only workspaces (team ids, or enterprise ids for a grid-wide
    # install) that may install or use Gembot (None: any).
    allowed_teams: frozenset[str] | None = None
    # Bounds on what a request may bring: a body over `max_body_bytes` is refused with 413 before
    # it is read (Slack's own requests stay far below 1 MiB); a client has `read_timeout` seconds
    # to send each part of its request; a message's first `max_files` files are read.
    max_body_bytes: int = 1_048_576
    read_timeout: float = 10.0
    max_files: int = 4
    # Bounds on what a thread replays to Gemini with each question: its latest `max_thread_turns`
    # turns, and images up to `max_thread_image_bytes` in all (the newest first). Turns and
    # their images older than `conversation_retention_days` are pruned.
    max_thread_turns: int = 20
    max_thread_image_bytes: int = 20_000_000
    conversation_retention_days: float = 30.0
    # The most pixels an image may have to be converted (read from its header, before decoding).
    max_image_pixels: int = 50_000_000
    # Tuning (`gembot tune`, and the background re-tune of a tuned set once its edits have settled
    # for `retune_settle_seconds`): the most seconds the encoder's training steps may take; 720
    # keeps a tune of BANKING77's 10,003 examples, judging and the head included, within 20 minutes.
    tune_budget_seconds: float = 720.0
    retune_settle_seconds: float = 600.0
    retune: bool = True
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        # The dataclass repr would show DATABASE_URL's password; `Secret`s already show as ***.
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        values["database_url"] = _masked_url(self.database_url)
        shown = ", ".join(f"{name}={value!r}" for name, value in values.items())
        return f"Settings({shown})"

    def secrets(self) -> list[str]:
        """Every secret these settings hold, as plain strings: what logs and errors must never show."""
        held = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.slack_client_secret,
            self.gemini_api_key,
            *self.token_keys,
        ]
        found = [s.get() for s in held if s]
        password = _url_password(self.database_url)
        if password:
            found.append(password)
        return found

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> Settings:
        """Build settings from `env` (default: `os.environ`), with `.env` values underneath."""
        merged: dict[str, str] = dict(read_dotenv(dotenv if dotenv is not None else Path(".env")))
        merged.update(os.environ if env is None else env)

        api_key = _optional_secret(merged, "GEMINI_API_KEY", "GOOGLE_API_KEY")
        embedder = merged.get("GEMBOT_EMBEDDER", "").strip().lower() or ("gemini" if api_key else "local")
        if embedder not in ("local", "gemini"):
            raise InvalidInput(f"GEMBOT_EMBEDDER must be 'local' or 'gemini', not {embedder!r}")
        dim = _int(merged, "GEMBOT_EMBEDDING_DIM", 768)
        if embedder == "gemini" and dim not in GEMINI_DIMENSIONS:
            raise InvalidInput(f"GEMBOT_EMBEDDING_DIM must be one of 768, 1536 or 3072, not {dim}")
        raw_temperature = merged.get("GEMBOT_TEMPERATURE", "").strip().lower()
        temperature = None if raw_temperature in ("", "auto") else _float(merged, "GEMBOT_TEMPERATURE", 0.05)
        if temperature is not None and temperature <= 0:
            raise InvalidInput("GEMBOT_TEMPERATURE must be above 0, or 'auto'")
        curation = merged.get("GEMBOT_CURATION", "").strip().lower() or "anyone"
        if curation not in ("anyone", "admins"):
            raise InvalidInput(f"GEMBOT_CURATION must be 'anyone' or 'admins', not {curation!r}")
        return cls(
            database_url=merged.get("DATABASE_URL", "").strip() or "sqlite:///gembot.db",
            embedder=embedder,
            embedding_model=merged.get("GEMBOT_EMBEDDING_MODEL", "").strip(),
            embedding_dim=dim,
            gemini_api_key=api_key,
            gemini_base_url=merged.get("GEMINI_BASE_URL", "").strip() or None,
            gemini_timeout=_float(merged, "GEMBOT_GEMINI_TIMEOUT", 60.0, minimum=0.001),
            gemini_retries=_int(merged, "GEMBOT_GEMINI_RETRIES", 3, minimum=0),
            gemini_retry_delay=_float(merged, "GEMBOT_GEMINI_RETRY_DELAY", 1.0, minimum=0),
            gemini_max_retry_wait=_float(merged, "GEMBOT_GEMINI_MAX_RETRY_WAIT", 60.0, minimum=0),
            inline_image_limit=_int(merged, "GEMBOT_INLINE_IMAGE_LIMIT", 20_000_000, minimum=1),
            gemini_file_timeout=_float(merged, "GEMBOT_GEMINI_FILE_TIMEOUT", 120.0, minimum=0),
            embed_concurrency=_int(merged, "GEMBOT_EMBED_CONCURRENCY", 4, minimum=1),
            embed_rpm=_int(merged, "GEMBOT_EMBED_RPM", 1500, minimum=0),
            generation_model=merged.get("GEMBOT_GENERATION_MODEL", "").strip() or "gemini-2.5-flash",
            temperature=temperature,
            min_similarity=_optional_float(merged, "GEMBOT_MIN_SIMILARITY"),
            min_margin=_optional_float(merged, "GEMBOT_MIN_MARGIN"),
            target_coverage=_coverage(merged, "GEMBOT_TARGET_COVERAGE", 0.98),
            escalate=_switch(merged, "GEMBOT_ESCALATE", default=True),
            default_team=merged.get("GEMBOT_TEAM", "").strip() or "local",
            slack_bot_token=_optional_secret(merged, "SLACK_BOT_TOKEN"),
            slack_signing_secret=_optional_secret(merged, "SLACK_SIGNING_SECRET"),
            slack_app_token=_optional_secret(merged, "SLACK_APP_TOKEN"),
            slack_api_url=merged.get("SLACK_API_URL", "").strip() or None,
            slack_client_id=merged.get("SLACK_CLIENT_ID", "").strip() or None,
            slack_client_secret=_optional_secret(merged, "SLACK_CLIENT_SECRET"),
            slack_scopes=tuple(s.strip() for s in merged.get("SLACK_SCOPES", "").split(",") if s.strip())
            or SLACK_BOT_SCOPES,
            slack_redirect_uri=merged.get("SLACK_REDIRECT_URI", "").strip() or None,
            token_keys=_fernet_keys(merged, "GEMBOT_TOKEN_KEY"),
            port=_int(merged, "PORT", 3000, minimum=0),
            max_lines=_int(merged, "GEMBOT_MAX_LINES", 50, minimum=2),
            max_text_chars=_int(merged, "GEMBOT_MAX_TEXT_CHARS", 4_000, minimum=100),
            max_image_bytes=_int(merged, "GEMBOT_MAX_IMAGE_BYTES", 20_000_000, minimum=1),
            max_csv_rows=_int(merged, "GEMBOT_MAX_CSV_ROWS", 10_000, minimum=1),
            slack_threads=_int(merged, "GEMBOT_SLACK_THREADS", 8, minimum=1),
            event_retention_hours=_float(merged, "GEMBOT_EVENT_RETENTION_HOURS", 24.0, minimum=0.1),
            http_workers=_int(merged, "GEMBOT_HTTP_WORKERS", 1, minimum=1),
            http_threads=_int(merged, "GEMBOT_HTTP_THREADS", 8, minimum=1),
            graceful_timeout=_int(merged, "GEMBOT_GRACEFUL_TIMEOUT", 25, minimum=1),
            job_lease_seconds=_float(merged, "GEMBOT_JOB_LEASE", 60.0, minimum=0.5),
            curation=curation,
            admins=_ids(merged, "GEMBOT_ADMINS") or frozenset(),
            user_daily_limit=_limit(merged, "GEMBOT_USER_DAILY_LIMIT"),
            team_daily_limit=_limit(merged, "GEMBOT_TEAM_DAILY_LIMIT"),
            allowed_channels=_ids(merged, "GEMBOT_ALLOWED_CHANNELS"),
            allowed_teams=_ids(merged, "GEMBOT_ALLOWED_TEAMS"),
            max_body_bytes=_int(merged, "GEMBOT_MAX_BODY_BYTES", 1_048_576, minimum=65_536),
            read_timeout=_float(merged, "GEMBOT_READ_TIMEOUT", 10.0, minimum=0.1),
            max_files=_int(merged, "GEMBOT_MAX_FILES", 4, minimum=1),
            max_thread_turns=_int(merged, "GEMBOT_MAX_THREAD_TURNS", 20, minimum=2),
            max_thread_image_bytes=_int(merged, "GEMBOT_MAX_THREAD_IMAGE_BYTES", 20_000_000, minimum=0),
            conversation_retention_days=_float(
                merged, "GEMBOT_CONVERSATION_RETENTION_DAYS", 30.0, minimum=0.01
            ),
            max_image_pixels=_int(merged, "GEMBOT_MAX_IMAGE_PIXELS", 50_000_000, minimum=1_000_000),
            tune_budget_seconds=_float(merged, "GEMBOT_TUNE_BUDGET", 720.0, minimum=1.0),
            retune_settle_seconds=_float(merged, "GEMBOT_RETUNE_SETTLE", 600.0, minimum=0.0),
            retune=_switch(merged, "GEMBOT_RETUNE", default=True),
            # Not the token key: `extra` holds plain strings.
            extra={k: v for k, v in merged.items() if k.startswith("GEMBOT_") and k != "GEMBOT_TOKEN_KEY"},
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_env()
