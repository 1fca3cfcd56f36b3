"""One settings object, declared once and read once from the environment and an optional `.env` file.

The environment variable names are Gembot's public configuration interface; the README lists
them (tests/core/test_settings_secrets.py checks that the two agree). Each field declares its type,
default, variable name and meaning in one place. Secrets are `Secret`s, which never show up in a
repr, a log line or an error message by accident.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import InvalidInput

GEMINI_DIMENSIONS = (768, 1536, 3072)

# The bot scopes an OAuth install asks for: the same list as manifest.yml's `oauth_config.scopes.bot`
# (tests/bot/test_oauth.py checks that the two agree).
SLACK_BOT_SCOPES = (
    "assistant:write",
    "commands",
    "chat:write",
    "app_mentions:read",
    "im:history",
    "im:write",
    "files:read",
    "files:write",
    "users:read",
    "channels:history",
    "groups:history",
    "channels:join",
)


class Secret(SecretStr):
    """A string that does not print itself; `get()` is the one way to the value."""

    def get(self) -> str:
        """The secret itself, for the one call that needs it (an HTTP header, a cipher)."""
        return self.get_secret_value()


def _env_name(info: ValidationInfo) -> str:
    """The environment variable of the field being validated (its first name, for a choice)."""
    assert info.field_name is not None  # field validators only
    alias = Settings.model_fields[info.field_name].validation_alias
    return str(alias.choices[0] if isinstance(alias, AliasChoices) else alias)


def _switch(value: object, info: ValidationInfo) -> object:
    """on/off (also true/false, yes/no, 1/0)."""
    if not isinstance(value, str):
        return value
    raw = value.lower()
    if raw in ("on", "true", "yes", "1"):
        return True
    if raw in ("off", "false", "no", "0"):
        return False
    raise ValueError(f"{_env_name(info)} must be 'on' or 'off', not {raw!r}")


def _one_of(*choices: str) -> BeforeValidator:
    """A word among `choices`, in any case."""

    def check(value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        if value.lower() not in choices:
            wanted = " or ".join(repr(choice) for choice in choices)
            raise ValueError(f"{_env_name(info)} must be {wanted}, not {value.lower()!r}")
        return value.lower()

    return BeforeValidator(check)


def _ids(value: object) -> object:
    """Comma- (or space-) separated Slack ids, upper-cased; None when there are none."""
    if not isinstance(value, str):
        return value
    return frozenset(part.upper() for part in value.replace(",", " ").split()) or None


def _scopes(value: object) -> object:
    """Comma-separated OAuth scopes; the manifest's when the list is empty."""
    if not isinstance(value, str):
        return value
    return tuple(part.strip() for part in value.split(",") if part.strip()) or SLACK_BOT_SCOPES


def _fernet_keys(value: object, info: ValidationInfo) -> object:
    """Comma-separated Fernet keys (32 bytes in URL-safe base64), the first one first.

    The error never quotes the value: even a mistyped key is mostly a key.
    """
    if not isinstance(value, str):
        return value
    keys = tuple(part.strip() for part in value.split(",") if part.strip())
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.b64decode(key, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            name = _env_name(info)
            which = f"key {position} of {len(keys)} in {name}" if len(keys) > 1 else name
            raise ValueError(
                f"{which} is not a Fernet key (32 bytes in URL-safe base64, 44 characters): make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
    return keys


def _auto(value: object) -> object:
    """`auto` is the calibrated temperature: no fixed one."""
    return None if isinstance(value, str) and value.lower() == "auto" else value


def _above_zero(value: float | None, info: ValidationInfo) -> float | None:
    if value is not None and not value > 0:
        raise ValueError(f"{_env_name(info)} must be above 0, or 'auto'")
    return value


def _share(value: float, info: ValidationInfo) -> float:
    """A share strictly between 0 and 1."""
    if not 0 < value < 1:
        raise ValueError(f"{_env_name(info)} must be between 0 and 1 (say 0.95), not {value:g}")
    return value


def _limit(value: int | None, info: ValidationInfo) -> int | None:
    """A daily limit: None for none, otherwise at least 1."""
    if value is not None and value < 1:
        raise ValueError(f"{_env_name(info)} must be at least 1, not {value} (leave it unset for no limit)")
    return value


Switch = Annotated[bool, BeforeValidator(_switch)]
SlackIds = Annotated[frozenset[str] | None, BeforeValidator(_ids)]
DailyLimit = Annotated[int | None, AfterValidator(_limit)]


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


def _env(name: str, default: Any = None, **rules: Any) -> Any:
    """A field read from the environment variable `name` (rules: `ge=`, `default_factory=`...).

    Its description is the docstring under it (`use_attribute_docstrings`).
    """
    if "default_factory" in rules:
        return Field(validation_alias=name, **rules)
    return Field(default=default, validation_alias=name, **rules)


class Settings(BaseSettings):
    """Everything Gembot reads from its environment, typed and validated once.

    `Settings.from_env()` reads the environment over `.env`; `Settings(field=value, ...)` holds
    the values it is given over the defaults and reads nothing (tests and benchmarks build it so).
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=True,
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        # Belt and braces: our own messages never quote a secret, and pydantic's do not either.
        hide_input_in_errors=True,
        use_attribute_docstrings=True,
    )

    database_url: str = _env("DATABASE_URL", "sqlite:///gembot.db")
    """SQLAlchemy URL; `postgresql://user:pass@host/db` for PostgreSQL (its password is a secret)."""
    gemini_api_key: Secret | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY")
    )
    """Gemini API key; without it /ask, images and cluster titles say Gemini is not configured."""
    # Declared after the key, which picks it: a key alone means Gemini embeddings.
    embedder: Annotated[Literal["local", "gemini"], _one_of("local", "gemini")] = _env(
        "GEMBOT_EMBEDDER", default_factory=lambda data: "gemini" if data.get("gemini_api_key") else "local"
    )
    """`local` (MiniLM on this machine) or `gemini`; `gemini` when a Gemini key is set."""
    embedding_model: str = _env("GEMBOT_EMBEDDING_MODEL", "")
    """Gemini embedding model (empty: the embedder's own default)."""
    embedding_dim: int = _env("GEMBOT_EMBEDDING_DIM", 768)
    """Gemini output dimensionality: 768, 1536 or 3072."""
    gemini_base_url: str | None = _env("GEMINI_BASE_URL")
    """Send Gemini calls to a proxy or gateway instead of Google's."""
    gemini_timeout: float = _env("GEMBOT_GEMINI_TIMEOUT", 60.0, ge=0.001)
    """Seconds per Gemini request attempt."""
    # Retries of 5xx answers, timeouts and per-minute 429s; the first backoff in seconds (it
    # doubles); the longest a per-minute 429's `retryDelay` may ask us to wait before giving up.
    gemini_retries: int = _env("GEMBOT_GEMINI_RETRIES", 3, ge=0)
    """Retries of 5xx answers, timeouts and per-minute 429s."""
    gemini_retry_delay: float = _env("GEMBOT_GEMINI_RETRY_DELAY", 1.0, ge=0)
    """First backoff in seconds; it doubles each time."""
    gemini_max_retry_wait: float = _env("GEMBOT_GEMINI_MAX_RETRY_WAIT", 60.0, ge=0)
    """Longest `retryDelay` a per-minute 429 may ask for before Gembot gives up."""
    # Images that would push a request's size past this many bytes go through the Files API,
    # and an upload must be ACTIVE within `gemini_file_timeout` seconds.
    inline_image_limit: int = _env("GEMBOT_INLINE_IMAGE_LIMIT", 20_000_000, ge=1)
    """Request size in bytes above which images go through the Files API."""
    gemini_file_timeout: float = _env("GEMBOT_GEMINI_FILE_TIMEOUT", 120.0, ge=0)
    """Seconds an uploaded file may take to become ACTIVE."""
    # Embedding requests in flight at once, and the client-side requests-per-minute cap (0: none).
    embed_concurrency: int = _env("GEMBOT_EMBED_CONCURRENCY", 4, ge=1)
    """Gemini embedding requests in flight per process."""
    embed_rpm: int = _env("GEMBOT_EMBED_RPM", 1500, ge=0)
    """Client-side cap on embedding requests per minute per process (0: none)."""
    generation_model: str = _env("GEMBOT_GENERATION_MODEL", "gemini-2.5-flash")
    """Model for /ask, images, cluster titles and unsure classifications."""
    # Prompt experiments (`core.experiments`): a client-side cap on generation requests per minute
    # per model (Gemini's quotas are per model), requests in flight at once, the judge model,
    # prices per million tokens over the built-in table, the cost above which Slack asks before
    # running, how batch jobs are polled and how long one may stay pending, and how long the
    # response cache keeps an answer.
    generate_rpm: int = _env("GEMBOT_GENERATE_RPM", 1000, ge=0)
    """Client-side cap on generation requests per minute per model per process (0: none)."""
    experiment_concurrency: int = _env("GEMBOT_EXPERIMENT_CONCURRENCY", 16, ge=1)
    """Experiment requests in flight at once per process."""
    judge_model: str = _env("GEMBOT_JUDGE_MODEL", "gemini-2.5-flash")
    """Model that grades answers for `--score judge:RUBRIC`."""
    prices: str = _env("GEMBOT_PRICES", "")
    """JSON prices in USD per million tokens over the built-in table (see README)."""
    experiment_confirm_cost: float = _env("GEMBOT_EXPERIMENT_CONFIRM_COST", 1.0, ge=0)
    """Estimated USD above which an experiment sent in Slack waits for a button press."""
    batch_poll_seconds: float = _env("GEMBOT_BATCH_POLL", 30.0, gt=0)
    """First wait between polls of a Gemini batch job; it doubles up to 10 minutes."""
    batch_pending_hours: float = _env("GEMBOT_BATCH_PENDING_HOURS", 24.0, gt=0)
    """Hours a batch job may stay pending before Gembot cancels it."""
    generation_cache_days: float = _env("GEMBOT_GENERATION_CACHE_DAYS", 90.0, ge=0)
    """Days the experiment response cache keeps an answer (0: forever)."""
    grounding: Annotated[Literal["off", "search"], _one_of("off", "search")] = _env("GEMBOT_GROUNDING", "off")
    """`search` lets /ask, mentions and DMs ground answers in Google Search; `off` never does."""
    # Classification: softmax temperature ("auto" = calibrated on the set's own examples) and two
    # optional absolute abstention rules on top of the calibrated one (None: not applied).
    temperature: Annotated[float | None, BeforeValidator(_auto), AfterValidator(_above_zero)] = _env(
        "GEMBOT_TEMPERATURE"
    )
    """Softmax temperature for centroid confidences; `auto` (or unset) calibrates it per set."""
    min_similarity: float | None = _env("GEMBOT_MIN_SIMILARITY")
    """Optional extra rule: also abstain when the best centroid cosine is below this."""
    min_margin: float | None = _env("GEMBOT_MIN_MARGIN")
    """Optional extra rule: also abstain when the top two confidences are closer than this."""
    # The share of a set's own kind of text the classifier should answer (the rest: "not sure"),
    # calibrated on the set's held-out examples; and whether an unsure answer goes to Gemini.
    # 0.98 was chosen on BANKING77 draws not reported (benchmarks/banking77.py --choose).
    target_coverage: Annotated[float, AfterValidator(_share)] = _env("GEMBOT_TARGET_COVERAGE", 0.98)
    """Share of a set's own kind of text to answer; the "not sure" threshold is calibrated to it."""
    escalate: Switch = _env("GEMBOT_ESCALATE", True)
    """Ask Gemini about texts the embeddings are not sure of (only with a Gemini key)."""
    default_team: str = _env("GEMBOT_TEAM", "local")
    """The workspace the command line works on when `--team` is not given."""
    slack_bot_token: Secret | None = _env("SLACK_BOT_TOKEN")
    """The bot token (`xoxb-…`) of a single-workspace install."""
    slack_signing_secret: Secret | None = _env("SLACK_SIGNING_SECRET")
    """Verifies that HTTP requests come from Slack."""
    slack_app_token: Secret | None = _env("SLACK_APP_TOKEN")
    """App-level token (`xapp-…`) for Socket Mode."""
    slack_api_url: str | None = _env("SLACK_API_URL")
    """Send Web API calls elsewhere (a proxy, or the test stand-in)."""
    # OAuth install (several workspaces): the app's client id and secret, the bot scopes asked for,
    # and the redirect URL when the app has more than one (Slack then wants it named).
    slack_client_id: str | None = _env("SLACK_CLIENT_ID")
    """OAuth install: the app's client id."""
    slack_client_secret: Secret | None = _env("SLACK_CLIENT_SECRET")
    """OAuth install: the app's client secret."""
    slack_scopes: Annotated[tuple[str, ...], BeforeValidator(_scopes)] = _env(
        "SLACK_SCOPES", SLACK_BOT_SCOPES
    )
    """Scopes requested at install, comma-separated."""
    slack_redirect_uri: str | None = _env("SLACK_REDIRECT_URI")
    """Only needed when the app has several redirect URLs."""
    # OAuth install: the Fernet keys the stored Slack tokens are encrypted with (the first encrypts,
    # all decrypt); () means a key derived from the client secret (`bot.token_crypto`).
    token_keys: Annotated[tuple[Secret, ...], BeforeValidator(_fernet_keys)] = _env("GEMBOT_TOKEN_KEY", ())
    """Fernet keys of the stored Slack tokens, comma-separated: the first encrypts, all decrypt."""
    port: int = _env("PORT", 3000, ge=0)
    """HTTP port of `gembot serve --http`."""
    # Slack: /similar and /cluster take at most `max_lines` texts (lines, or messages read back);
    # files bigger than this are refused before they are downloaded; lazy listeners (the
    # work done after the 3-second ack) run on this many threads per process; delivered event ids
    # are remembered this many hours, well past Slack's last redelivery (about 5 minutes).
    max_lines: int = _env("GEMBOT_MAX_LINES", 50, ge=2)
    """Most texts /similar and /cluster take."""
    max_image_bytes: int = _env("GEMBOT_MAX_IMAGE_BYTES", 20_000_000, ge=1)
    """Larger Slack files are refused before download."""
    # A CSV sent for bulk classification may have at most this many rows.
    max_csv_rows: int = _env("GEMBOT_MAX_CSV_ROWS", 10_000, ge=1)
    """Most rows of a CSV sent for bulk classification, or to import."""
    # A text typed to the bot (/classify, /ask, /label add, each line of /similar and /cluster, a
    # question in a mention or a DM) may have at most this many characters.
    max_text_chars: int = _env("GEMBOT_MAX_TEXT_CHARS", 4_000, ge=100)
    """Longest text a command, a message added as an example or a CSV row may have."""
    slack_threads: int = _env("GEMBOT_SLACK_THREADS", 8, ge=1)
    """Threads per process for the work done after Slack's 3-second ack."""
    event_retention_hours: float = _env("GEMBOT_EVENT_RETENTION_HOURS", 24.0, ge=0.1)
    """How long the ids of handled requests are remembered, to drop Slack's redeliveries."""
    # `gembot serve --http`: gunicorn worker processes (each loads its own embedding model) and
    # threads per worker.
    http_workers: int = _env("GEMBOT_HTTP_WORKERS", 1, ge=1)
    """Gunicorn worker processes."""
    http_threads: int = _env("GEMBOT_HTTP_THREADS", 8, ge=1)
    """Threads per gunicorn worker."""
    # Shutdown: on SIGTERM a process has this many seconds to finish the work in flight (gunicorn's
    # graceful_timeout; under the 30 s a container orchestrator usually allows) before it is
    # killed. Bulk jobs: a process holds a running job for this many seconds at a time, renewing
    # as it works; a job whose lease lapses is taken over.
    graceful_timeout: int = _env("GEMBOT_GRACEFUL_TIMEOUT", 25, ge=1)
    """Seconds a worker lets work in flight finish on SIGTERM."""
    job_lease_seconds: float = _env("GEMBOT_JOB_LEASE", 60.0, ge=0.5)
    """Seconds before another worker takes over a job whose worker stopped renewing its lease."""
    # Who may change label sets from Slack: "anyone" or "admins" (the ids in `admins`, and the
    # workspace's admins and owners). Gemini calls allowed per user and per workspace each UTC
    # day (None: no limit). The channels Gembot answers in (None: all; DMs with it always).
    curation: Annotated[Literal["anyone", "admins"], _one_of("anyone", "admins")] = _env(
        "GEMBOT_CURATION", "anyone"
    )
    """`anyone` or `admins`: who may change label sets from Slack."""
    admins: Annotated[frozenset[str], BeforeValidator(lambda value: _ids(value) or frozenset())] = _env(
        "GEMBOT_ADMINS", frozenset()
    )
    """Slack user ids counted as admins (workspace admins and owners count too)."""
    user_daily_limit: DailyLimit = _env("GEMBOT_USER_DAILY_LIMIT")
    """Gemini calls per user per UTC day (unset: no limit)."""
    team_daily_limit: DailyLimit = _env("GEMBOT_TEAM_DAILY_LIMIT")
    """Gemini calls per workspace per UTC day (unset: no limit)."""
    allowed_channels: SlackIds = _env("GEMBOT_ALLOWED_CHANNELS")
    """Channel ids Gembot answers in (unset: all; a person's DM with it always)."""
    # With OAuth install, the only workspaces (team ids, or enterprise ids for a grid-wide
    # install) that may install or use Gembot (None: any).
    allowed_teams: SlackIds = _env("GEMBOT_ALLOWED_TEAMS")
    """OAuth: the only workspace (or Enterprise Grid organisation) ids that may install and use Gembot."""
    # Bounds on what a request may bring: a body over `max_body_bytes` is refused with 413 before
    # it is read (Slack's own requests stay far below 1 MiB); a client has `read_timeout` seconds
    # to send each part of its request; a message's first `max_files` files are read.
    max_body_bytes: int = _env("GEMBOT_MAX_BODY_BYTES", 1_048_576, ge=65_536)
    """A request body over this many bytes is refused with 413 before it is read."""
    read_timeout: float = _env("GEMBOT_READ_TIMEOUT", 10.0, ge=0.1)
    """Seconds an HTTP client has to send each part of its request."""
    max_files: int = _env("GEMBOT_MAX_FILES", 4, ge=1)
    """Files read from one message (the rest are named as left out)."""
    # Bounds on what a thread replays to Gemini with each question: its latest `max_thread_turns`
    # turns, and images up to `max_thread_image_bytes` in all (the newest first). Turns and
    # their images older than `conversation_retention_days` are pruned.
    max_thread_turns: int = _env("GEMBOT_MAX_THREAD_TURNS", 20, ge=2)
    """Earlier turns of a thread sent to Gemini with each question."""
    max_thread_image_bytes: int = _env("GEMBOT_MAX_THREAD_IMAGE_BYTES", 20_000_000, ge=0)
    """Bytes of earlier images of a thread sent with each question (newest first)."""
    conversation_retention_days: float = _env("GEMBOT_CONVERSATION_RETENTION_DAYS", 30.0, ge=0.01)
    """Thread turns and their images are deleted after this many days."""
    # The most pixels an image may have to be converted (read from its header, before decoding).
    max_image_pixels: int = _env("GEMBOT_MAX_IMAGE_PIXELS", 50_000_000, ge=1_000_000)
    """Images with more pixels are refused."""
    # Tuning (`gembot tune`, and the background re-tune of a tuned set once its edits have settled
    # for `retune_settle_seconds`): the most seconds the encoder's training steps may take; 720
    # keeps a tune of BANKING77's 10,003 examples, judging and the head included, within 20 minutes.
    tune_budget_seconds: float = _env("GEMBOT_TUNE_BUDGET", 720.0, ge=1.0)
    """Most seconds a tune's training steps may take."""
    retune_settle_seconds: float = _env("GEMBOT_RETUNE_SETTLE", 600.0, ge=0.0)
    """Seconds a set must go without edits before its re-tune runs."""
    retune: Switch = _env("GEMBOT_RETUNE", True)
    """Serving processes re-tune tuned sets in the background; `off` leaves tuning to `gembot tune`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `Settings(...)` is exactly what it is given: a test never picks up the developer's
        # GEMINI_API_KEY. `from_env` is the one place the environment is read.
        return (init_settings,)

    @field_validator("embedding_dim")
    @classmethod
    def _gemini_dimensions(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("embedder") == "gemini" and value not in GEMINI_DIMENSIONS:
            raise ValueError(f"{_env_name(info)} must be one of 768, 1536 or 3072, not {value}")
        return value

    @field_serializer("database_url")
    def _hide_password(self, url: str) -> str:
        # A dump shows DATABASE_URL as a repr does, as `Secret`s dump: without the secret.
        return _masked_url(url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # The plain repr would show DATABASE_URL's password; `Secret`s already show as stars.
        for name, value in super().__repr_args__():
            yield name, _masked_url(value) if name == "database_url" else value

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
        """Settings from `env` (default: `os.environ`) over the `.env` file `dotenv` (default: ./.env).

        A variable set in `env`, even to an empty value, hides the file's. A bad value raises
        `InvalidInput` with one line naming the variable, never quoting a secret.
        """
        source = DotEnvSettingsSource(cls) if dotenv is None else DotEnvSettingsSource(cls, env_file=dotenv)
        merged = {key: value for key, value in source.env_vars.items() if value is not None}
        merged.update(os.environ if env is None else env)
        # Every variable means its default when unset, empty or blank; values are trimmed.
        values = {key: value.strip() for key, value in merged.items() if value.strip()}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise InvalidInput(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    """One line for the first thing wrong: the variable and what it must be.

    A value is quoted back only where a number was wanted: a secret variable takes any string and
    fails only our own validators, which word their messages so as to quote no secret.
    """
    error = next(e for e in exc.errors() if e["type"] != "default_factory_not_called")
    return _sentence(error)


def _sentence(error: ErrorDetails) -> str:
    ctx = error.get("ctx", {})
    if error["type"] == "value_error":
        return str(ctx["error"])
    where = str(error["loc"][0]) if error["loc"] else "a setting"
    field = Settings.model_fields.get(where)
    if field is not None and isinstance(field.validation_alias, str):
        where = field.validation_alias
    given = error["input"]
    if error["type"] in ("int_parsing", "int_from_float", "int_type"):
        return f"{where} must be a whole number, not {given!r}"
    if error["type"] in ("float_parsing", "float_type"):
        return f"{where} must be a number, not {given!r}"
    if error["type"] == "greater_than_equal":
        least = ctx["ge"]
        shown = f"{least:g}" if isinstance(least, float) else str(least)
        return f"{where} must be at least {shown}, not {given}"
    return f"{where} is not valid ({error['msg'].lower()})"
