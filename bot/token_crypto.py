"""Slack tokens encrypted at rest in the OAuth tables.

`EncryptedInstallationStore` is slack_sdk's `SQLAlchemyInstallationStore` with its token columns
(`bot_token`, `bot_refresh_token`, `user_token`, `user_refresh_token`) encrypted with Fernet: what
Bolt hands to `save` / `save_bot` (at install, and after a token rotation) is written encrypted,
and the `Installation` / `Bot` that `find_installation` / `find_bot` return carry the tokens in
clear, so Bolt, token rotation and `bot.lifecycle` use the store as they would slack_sdk's.

A stored value is `gembot-enc1:` followed by the Fernet token. A value without the prefix is a
row written before encryption, read as it is; `encrypt_stored_tokens` (run at start) and the
row's next save encrypt it.

The key is GEMBOT_TOKEN_KEY, or, when that is unset, one derived from SLACK_CLIENT_SECRET with
HKDF, so that encryption needs no set-up. The derived key also stays the last decryption key when
GEMBOT_TOKEN_KEY is set, so setting it later loses nothing: the next start re-encrypts every row
with it, after which the client secret can be rotated freely. Several comma-separated keys rotate
GEMBOT_TOKEN_KEY itself: the first encrypts, the others only decrypt until the next start has
re-encrypted the rows.

A row no key opens (the key changed) is logged as one line, without token or key, and reads as
"not installed": Bolt then tells the user that Gembot needs installing again.
"""

from __future__ import annotations

import base64
import copy
import logging
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import Engine, Table, and_, select
from sqlalchemy.exc import SQLAlchemyError

from core.settings import Settings

PREFIX = "gembot-enc1:"
TOKEN_COLUMNS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
# Fixed, public: HKDF needs the input (the client secret) to be secret, not the salt.
HKDF_SALT = b"gembot/slack-token-key/v1"
HKDF_INFO = b"gembot: Fernet key for Slack tokens at rest"

_Entity = TypeVar("_Entity", Installation, Bot)


class UnreadableToken(Exception):
    """A stored token that none of the keys decrypts. Carries no part of the token or the keys."""


def derive_key(client_secret: str) -> bytes:
    """A Fernet key derived from the app's client secret (HKDF-SHA256, Gembot's salt and info)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(client_secret.encode()))


class TokenCipher:
    """Encrypts with the first key, decrypts with any; `None` stays `None`."""

    def __init__(self, keys: Iterable[bytes | str]) -> None:
        fernets = [Fernet(key) for key in keys]
        if not fernets:
            raise ValueError("TokenCipher needs at least one key")
        self._first = fernets[0]
        self._any = MultiFernet(fernets)

    def encrypt(self, value: str | None) -> str | None:
        """The stored form of `value`; a value already stored encrypted is left as it is."""
        if value is None or value.startswith(PREFIX):
            return value
        return PREFIX + self._any.encrypt(value.encode()).decode()

    def decrypt(self, value: str | None) -> str | None:
        """The token a stored value holds; a value without the prefix is a plain-text legacy row."""
        if value is None or not value.startswith(PREFIX):
            return value
        try:
            return self._any.decrypt(value[len(PREFIX) :]).decode()
        except InvalidToken:
            raise UnreadableToken() from None

    def up_to_date(self, value: str | None) -> bool:
        """True when `value` is absent, or encrypted with the first key."""
        if value is None:
            return True
        if not value.startswith(PREFIX):
            return False
        try:
            self._first.decrypt(value[len(PREFIX) :])
        except InvalidToken:
            return False
        return True

    def reencrypt(self, value: str) -> str:
        """`value` (plain, or encrypted with any key) encrypted with the first key."""
        if not value.startswith(PREFIX):
            return PREFIX + self._any.encrypt(value.encode()).decode()
        try:
            return PREFIX + self._any.rotate(value[len(PREFIX) :]).decode()
        except InvalidToken:
            raise UnreadableToken() from None


def cipher_for(settings: Settings) -> TokenCipher:
    """GEMBOT_TOKEN_KEY's keys, then the key derived from SLACK_CLIENT_SECRET."""
    assert settings.slack_client_secret is not None
    keys: list[bytes | str] = [key.get() for key in settings.token_keys]
    keys.append(derive_key(settings.slack_client_secret.get()))
    return TokenCipher(keys)


class EncryptedInstallationStore(SQLAlchemyInstallationStore):
    """slack_sdk's SQLAlchemy installation store, with the token columns encrypted by `cipher`."""

    def __init__(
        self, client_id: str, engine: Engine, *, cipher: TokenCipher, logger: logging.Logger
    ) -> None:
        super().__init__(client_id=client_id, engine=engine, logger=logger)
        self.cipher = cipher

    # -- writing: slack_sdk stores what `to_dict()` gives, so it is handed an encrypted copy --------

    def save(self, installation: Installation) -> None:
        # slack_sdk's `save` then calls `self.save_bot(copy.to_bot())`, whose tokens are encrypted
        # already: `TokenCipher.encrypt` leaves those as they are.
        super().save(self._encrypted(installation))

    def save_bot(self, bot: Bot) -> None:
        super().save_bot(self._encrypted(bot))

    def _encrypted(self, entity: _Entity) -> _Entity:
        # A copy: the caller (Bolt after a rotation) goes on using the tokens it saved.
        stored = copy.copy(entity)
        for column in TOKEN_COLUMNS:
            if hasattr(stored, column):
                setattr(stored, column, self.cipher.encrypt(getattr(stored, column)))
        return stored

    # -- reading: every row slack_sdk finds becomes an entity here ----------------------------------
    # slack_sdk declares these as classmethods but calls them on the instance (`self.build_…`);
    # they need the instance's cipher. `None` (a row that cannot be decrypted) is what its finders
    # return when nothing is found.

    def build_installation_entity(self, row: Mapping[str, Any]) -> Installation | None:  # type: ignore[override]
        opened = self._decrypted(row, self.installations)
        return None if opened is None else super().build_installation_entity(opened)

    def build_bot_entity(self, row: Mapping[str, Any]) -> Bot | None:  # type: ignore[override]
        opened = self._decrypted(row, self.bots)
        return None if opened is None else super().build_bot_entity(opened)

    def _decrypted(self, row: Mapping[str, Any], table: Table) -> dict[str, Any] | None:
        opened = dict(row)
        try:
            for column in TOKEN_COLUMNS:
                if column in opened:
                    opened[column] = self.cipher.decrypt(opened[column])
        except UnreadableToken:
            self._log_unreadable(row, table)
            return None
        return opened

    def _log_unreadable(self, row: Mapping[Any, Any], table: Table) -> None:
        team = row.get("team_id") or "-"
        where = f"{row['enterprise_id']}/{team}" if row.get("enterprise_id") else team
        self.logger.error(
            "the Slack tokens stored for workspace %s (%s row %s) cannot be decrypted with "
            "GEMBOT_TOKEN_KEY, or the key derived from SLACK_CLIENT_SECRET when it is unset: the key "
            "changed since they were saved; restore it or reinstall Gembot there (until then the "
            "workspace counts as not installed)",
            where,
            table.name,
            row.get("id"),
        )

    # -- at start: rows in plain text, or encrypted with an older key, are encrypted again ----------

    def encrypt_stored_tokens(self) -> int:
        """Encrypt, with the first key, every stored token that is not: plain-text rows from before
        encryption, and rows under a key listed after the first. Returns how many rows changed.

        Each update only applies if the row still holds what was read, so workers starting at
        once, or an install saving meanwhile, are never overwritten with stale tokens.
        """
        changed = 0
        with self.engine.begin() as conn:
            for table in (self.installations, self.bots):
                columns = [table.c[name] for name in TOKEN_COLUMNS if name in table.c]
                query = select(table.c.id, table.c.enterprise_id, table.c.team_id, *columns).where(
                    table.c.client_id == self.client_id
                )
                for row in conn.execute(query).mappings().all():
                    try:
                        updates = {
                            column.name: self.cipher.reencrypt(row[column.name])
                            for column in columns
                            if not self.cipher.up_to_date(row[column.name])
                        }
                    except UnreadableToken:
                        self._log_unreadable(row, table)
                        continue
                    if not updates:
                        continue
                    unchanged = and_(
                        table.c.id == row["id"],
                        *(table.c[name] == row[name] for name in updates),
                    )
                    changed += conn.execute(table.update().where(unchanged).values(**updates)).rowcount
        return changed

    def encrypt_stored_tokens_at_start(self) -> None:
        """`encrypt_stored_tokens`, logged; a database that does not answer yet only postpones it."""
        try:
            changed = self.encrypt_stored_tokens()
        except SQLAlchemyError as exc:
            self.logger.warning(
                "could not check the stored Slack tokens' encryption (%s): the next start will",
                type(exc).__name__,
            )
            return
        if changed:
            self.logger.info("encrypted the Slack tokens of %d stored installation rows", changed)
