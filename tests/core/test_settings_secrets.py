"""The settings: declared once (the README lists exactly the variables they read), read from the
environment over `.env`, and never showing a secret: not in `repr()`, an error, or a server log line."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import AliasChoices, ValidationError

from bot.logs import configure_server_logging
from core.errors import InvalidInput
from core.settings import Secret, Settings
from tests.support.cli_support import on_database

TOKEN_KEY = Fernet.generate_key().decode()
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-111-222-botsecretvalue",
    "SLACK_SIGNING_SECRET": "signing-secret-value-0123",
    "SLACK_APP_TOKEN": "xapp-1-A111-appsecretvalue",
    "SLACK_CLIENT_SECRET": "client-secret-value-4567",
    "GEMINI_API_KEY": "AIzaGeminiKeyValue89",
    "GEMBOT_TOKEN_KEY": TOKEN_KEY,
}
DB_PASSWORD = "db-password-hunter2"
ENV = {**SECRETS, "DATABASE_URL": f"postgresql+psycopg://gembot:{DB_PASSWORD}@db.internal:5432/gembot"}


def test_repr_shows_no_password_key_or_token() -> None:
    shown = repr(Settings.from_env(ENV, dotenv=None))
    for value in [*SECRETS.values(), DB_PASSWORD]:
        assert value not in shown
    # What is not secret still shows, so the repr stays useful.
    assert "db.internal" in shown and "gembot" in shown


def test_secrets_lists_every_secret_the_settings_hold() -> None:
    held = set(Settings.from_env(ENV, dotenv=None).secrets())
    assert held == {*SECRETS.values(), DB_PASSWORD}


@pytest.mark.parametrize("url", ["sqlite:///gembot.db", "not a url at all"])
def test_a_url_without_a_password_adds_none(url: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": url}, dotenv=None)
    assert settings.secrets() == []
    assert "Settings(" in repr(settings)


def test_server_logging_masks_every_secret_of_the_settings() -> None:
    settings = Settings.from_env(ENV, dotenv=None)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_server_logging(settings)
        stream = io.StringIO()
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        log = logging.getLogger("gembot.test")
        for name, value in [*SECRETS.items(), ("DATABASE_URL", DB_PASSWORD)]:
            log.warning("%s is %s", name, value)
        try:
            raise RuntimeError(f"connect failed for {ENV['DATABASE_URL']}")
        except RuntimeError:
            log.exception("while connecting")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    written = stream.getvalue()
    assert "SLACK_CLIENT_SECRET is ***" in written
    for value in [*SECRETS.values(), DB_PASSWORD]:
        assert value not in written


def test_coverage_and_escalation_settings_are_checked() -> None:
    assert Settings.from_env({}, dotenv=None).escalate is True
    assert Settings.from_env({"GEMBOT_ESCALATE": "off"}, dotenv=None).escalate is False
    assert Settings.from_env({"GEMBOT_TARGET_COVERAGE": "0.9"}, dotenv=None).target_coverage == 0.9
    for env, words in (
        ({"GEMBOT_TARGET_COVERAGE": "1"}, "between 0 and 1"),
        ({"GEMBOT_ESCALATE": "sometimes"}, "'on' or 'off'"),
    ):
        with pytest.raises(InvalidInput, match=words):
            Settings.from_env(env, dotenv=None)


# -- declared once: the README, the environment, `.env` -----------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"
NO_DOTENV = Path("/nonexistent/.env")


def readme_names() -> set[str]:
    """The variable names in the first column of the README's configuration table."""
    section = README.read_text(encoding="utf-8").split("\n## Configuration\n", 1)[1]
    rows = section.split("\n| variable |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])}


def field_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(map(str, alias.choices) if isinstance(alias, AliasChoices) else [str(alias)])
    return names


def test_the_readme_lists_every_variable_the_settings_read_and_no_other() -> None:
    assert len(readme_names()) > 50  # the table was found
    assert readme_names() == field_names()
    assert all(field.description for field in Settings.model_fields.values())


def test_each_variable_is_read_by_its_exact_name() -> None:
    assert Settings.from_env({"GEMBOT_MAX_LINES": "7"}, dotenv=NO_DOTENV).max_lines == 7
    assert Settings.from_env({"gembot_max_lines": "7"}, dotenv=NO_DOTENV).max_lines == 50
    assert Settings.from_env({"GOOGLE_API_KEY": "g"}, dotenv=NO_DOTENV).secrets() == ["g"]
    # An empty GEMINI_API_KEY is unset, so the other name still counts.
    both = Settings.from_env({"GEMINI_API_KEY": " ", "GOOGLE_API_KEY": "g"}, dotenv=NO_DOTENV)
    assert both.secrets() == ["g"] and both.embedder == "gemini"


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / "settings.env"
    dotenv.write_text(
        "# a comment\n"
        "export GEMBOT_MAX_LINES=7\n"
        'GEMBOT_TEAM="T0FILE"\n'
        "GEMBOT_CURATION='admins'\n"
        "GEMBOT_MAX_FILES=9\n"
        "SLACK_BOT_TOKEN=xoxb-from-the-file\n",
        encoding="utf-8",
    )
    read = Settings.from_env({"GEMBOT_TEAM": "T0ENV", "GEMBOT_MAX_FILES": ""}, dotenv=dotenv)
    assert (read.max_lines, read.curation, read.secrets()) == (7, "admins", ["xoxb-from-the-file"])
    assert read.default_team == "T0ENV"  # the environment wins
    assert read.max_files == 4  # set, even empty, in the environment: the file's value is hidden


def test_the_process_environment_and_dotenv_in_the_working_directory_are_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GEMBOT_MAX_LINES=7\nGEMBOT_MAX_FILES=9\n", encoding="utf-8")
    monkeypatch.setenv("GEMBOT_MAX_FILES", "3")
    read = Settings.from_env()
    assert (read.max_lines, read.max_files) == (7, 3)
    # Built directly, settings are what they are given: neither the environment nor `.env`.
    assert (Settings().max_lines, Settings().max_files) == (50, 4)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GEMBOT_MAX_LINES": "many"}, "GEMBOT_MAX_LINES must be a whole number, not 'many'"),
        ({"GEMBOT_MAX_LINES": "1"}, "GEMBOT_MAX_LINES must be at least 2, not 1"),
        ({"GEMBOT_READ_TIMEOUT": "0.01"}, "GEMBOT_READ_TIMEOUT must be at least 0.1, not 0.01"),
        ({"GEMBOT_MIN_MARGIN": "lots"}, "GEMBOT_MIN_MARGIN must be a number, not 'lots'"),
        ({"GEMBOT_TEMPERATURE": "0"}, "GEMBOT_TEMPERATURE must be above 0, or 'auto'"),
        ({"GEMBOT_EMBEDDER": "Remote"}, "GEMBOT_EMBEDDER must be 'local' or 'gemini', not 'remote'"),
        (
            {"GEMBOT_EMBEDDER": "gemini", "GEMBOT_EMBEDDING_DIM": "512"},
            "GEMBOT_EMBEDDING_DIM must be one of 768, 1536 or 3072, not 512",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        Settings.from_env(env, dotenv=NO_DOTENV)
    assert str(err.value) == message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_no_secret_reaches_a_validation_error() -> None:
    # A secret pasted into the wrong variable, next to every real one.
    pasted = SECRETS["SLACK_CLIENT_SECRET"]
    for env in (
        {**ENV, "GEMBOT_TOKEN_KEY": pasted},
        {**ENV, "GEMBOT_TOKEN_KEY": f"{TOKEN_KEY},{pasted}"},
        {**ENV, "GEMBOT_MAX_LINES": "1"},
    ):
        with pytest.raises(InvalidInput) as err:
            Settings.from_env(env, dotenv=NO_DOTENV)
        assert "\n" not in str(err.value)
        for value in [*SECRETS.values(), DB_PASSWORD]:
            assert value not in str(err.value)
    # Built directly, a bad value raises pydantic's error, which does not quote it either.
    with pytest.raises(ValidationError) as raw:
        Settings(token_keys=pasted)
    assert pasted not in str(raw.value) and pasted not in repr(raw.value.errors(include_input=False))


def test_secrets_never_print() -> None:
    settings = Settings.from_env(ENV, dotenv=NO_DOTENV)
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())):
        for value in [*SECRETS.values(), DB_PASSWORD]:
            assert value not in shown
    key = Secret("AIzaGeminiKeyValue89")
    assert "AIza" not in repr(key) + str(key) + f"{key}" and key.get() == "AIzaGeminiKeyValue89"


def test_the_command_line_says_what_is_wrong_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gembot = on_database(
        f"sqlite:///{tmp_path / 'x.db'}", tmp_path, monkeypatch, capsys, GEMBOT_TOKEN_KEY=TOKEN_KEY[:-4]
    )
    run = gembot("labels", "sets")
    assert run.code == 1 and "Traceback" not in run.err and TOKEN_KEY[:-4] not in run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: GEMBOT_TOKEN_KEY is not a Fernet key")
