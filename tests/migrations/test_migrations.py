"""The Alembic migrations: they build exactly the models' schema, go down and up, and are safe to race."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, String, Text, inspect, text

from core.errors import DatabaseUnavailable
from core.store import ExampleInput, Store
from core.store import db as store_db
from core.store.db import MIGRATIONS_DIR, current_revision, downgrade, head_revision, make_engine, upgrade
from core.store.schema import Base

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "label_sets",
    "labels",
    "examples",
    "embeddings",
    "classifications",
    "slack_events",
    "conversation_turns",
    "turn_images",
    "evaluations",
    # slack_sdk's OAuth stores (migration 0003)
    "slack_installations",
    "slack_bots",
    "slack_oauth_states",
    # bulk jobs (migration 0004)
    "jobs",
    "job_rows",
    # usage limits and the label-set change log (migration 0005)
    "usage_counters",
    "label_changes",
    # Gemini's answers for unsure classifications (migration 0010)
    "escalations",
    # fitted classifiers kept per set version (migration 0011)
    "trained_models",
    # tuned encoders and their re-tune jobs (migration 0013)
    "tuned_encoders",
    "tune_jobs",
    # Gemini's answers in Slack and the feedback on them (migration 0014)
    "answers",
    "answer_feedback",
    # prompt experiments, their results and batches, and the response cache (migration 0015)
    "experiments",
    "experiment_results",
    "experiment_batches",
    "generation_cache",
}


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_database_url)
    yield engine
    engine.dispose()


def schema_differences(engine: Engine) -> list[object]:
    """What `alembic check` reports: the differences between the database and the models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_upgrade_builds_exactly_the_models_schema(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    assert schema_differences(engine) == []


def test_the_comparison_notices_drift(engine: Engine) -> None:
    # Guards the test above: a schema that differs from the models must not compare clean.
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_classifications_team_id_created_at"))
    assert schema_differences(engine) != []


def test_the_oauth_tables_are_exactly_slack_sdks(engine: Engine) -> None:
    # slack_sdk's stores read and write these tables; the migration must build what they define.
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    upgrade(engine)
    theirs = MetaData()
    SQLAlchemyInstallationStore.build_installations_table(theirs, "slack_installations")
    SQLAlchemyInstallationStore.build_bots_table(theirs, "slack_bots")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(theirs, "slack_oauth_states")
    assert set(theirs.tables) <= set(Base.metadata.tables)
    # The one departure (migration 0007): the token columns hold encrypted tokens, longer than
    # slack_sdk's VARCHAR(200), and are TEXT.
    from bot.token_crypto import TOKEN_COLUMNS

    for table in ("slack_installations", "slack_bots"):
        for column in theirs.tables[table].c:
            if column.name in TOKEN_COLUMNS:
                assert isinstance(column.type, String) and column.type.length == 200
                column.type = Text()

    def only_theirs(name: str | None, type_: str, parent_names: object) -> bool:
        return type_ != "table" or name in theirs.tables

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": only_theirs})
        assert list(compare_metadata(context, theirs)) == []
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX slack_bots_idx"))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": only_theirs})
        assert list(compare_metadata(context, theirs)) != []  # the comparison does look


def test_examples_columns_one_by_one(engine: Engine) -> None:
    upgrade(engine)
    inspector = inspect(engine)
    columns = {c["name"]: c for c in inspector.get_columns("examples")}
    expected = {
        # name: (type as the database reports it, nullable, length)
        "id": ("INTEGER", False, None),
        "label_id": ("INTEGER", False, None),
        "text": ("TEXT", False, None),
        "text_hash": ("VARCHAR", False, 64),
        "author": ("VARCHAR", True, 200),
        "source_url": ("TEXT", True, None),
        "created_at": ("TIMESTAMP" if engine.dialect.name == "postgresql" else "DATETIME", False, None),
        # who added it, and whether `author` is a file's claim (migration 0008)
        "added_by": ("VARCHAR", True, 200),
        "author_from_file": ("BOOLEAN", False, None),
    }
    assert list(columns) == list(expected)
    for name, (type_name, nullable, length) in expected.items():
        column = columns[name]
        assert type(column["type"]).__name__ == type_name, name
        assert column["nullable"] is nullable, name
        assert getattr(column["type"], "length", None) == length, name
    if engine.dialect.name == "postgresql":
        assert columns["created_at"]["type"].timezone is True  # type: ignore[attr-defined]
    primary_key = inspector.get_pk_constraint("examples")
    assert (primary_key["name"], primary_key["constrained_columns"]) == ("pk_examples", ["id"])
    (unique,) = inspector.get_unique_constraints("examples")
    assert (unique["name"], unique["column_names"]) == (
        "uq_examples_label_id_text_hash",
        ["label_id", "text_hash"],
    )
    (fk,) = inspector.get_foreign_keys("examples")
    assert (fk["name"], fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]) == (
        "fk_examples_label_id_labels",
        ["label_id"],
        "labels",
        ["id"],
    )
    assert fk["options"].get("ondelete") == "CASCADE"


def test_escalations_columns_and_key(engine: Engine) -> None:
    upgrade(engine)
    inspector = inspect(engine)
    columns = {c["name"]: c for c in inspector.get_columns("escalations")}
    expected = {
        # name: (type as the database reports it, nullable, length)
        "team_id": ("VARCHAR", False, 64),
        "set_name": ("VARCHAR", False, 100),
        "set_version": ("INTEGER", False, None),
        "model": ("VARCHAR", False, 200),
        "text_hash": ("VARCHAR", False, 64),
        "prompt_hash": ("VARCHAR", False, 64),
        "label": ("VARCHAR", True, 200),
        "created_at": ("TIMESTAMP" if engine.dialect.name == "postgresql" else "DATETIME", False, None),
    }
    assert list(columns) == list(expected)
    for name, (type_name, nullable, length) in expected.items():
        column = columns[name]
        assert type(column["type"]).__name__ == type_name, name
        assert column["nullable"] is nullable, name
        assert getattr(column["type"], "length", None) == length, name
    primary_key = inspector.get_pk_constraint("escalations")
    assert (primary_key["name"], primary_key["constrained_columns"]) == (
        "pk_escalations",
        ["team_id", "set_name", "set_version", "model", "text_hash"],
    )
    downgrade(engine, "0009")
    assert "escalations" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert schema_differences(engine) == []


def test_answers_and_feedback_columns_and_keys(engine: Engine) -> None:
    upgrade(engine)
    inspector = inspect(engine)
    stamp = "TIMESTAMP" if engine.dialect.name == "postgresql" else "DATETIME"
    expected = {
        "answers": {
            # name: (type as the database reports it, nullable, length)
            "id": ("INTEGER", False, None),
            "team_id": ("VARCHAR", False, 64),
            "channel_id": ("VARCHAR", False, 64),
            "message_ts": ("VARCHAR", True, 32),
            "model": ("VARCHAR", False, 200),
            "created_at": (stamp, False, None),
        },
        "answer_feedback": {
            "answer_id": ("INTEGER", False, None),
            "user_id": ("VARCHAR", False, 64),
            "good": ("BOOLEAN", False, None),
            "updated_at": (stamp, False, None),
        },
    }
    for table, wanted in expected.items():
        columns = {c["name"]: c for c in inspector.get_columns(table)}
        assert list(columns) == list(wanted), table
        for name, (type_name, nullable, length) in wanted.items():
            column = columns[name]
            assert type(column["type"]).__name__ == type_name, (table, name)
            assert column["nullable"] is nullable, (table, name)
            assert getattr(column["type"], "length", None) == length, (table, name)
    primary_key = inspector.get_pk_constraint("answer_feedback")
    assert (primary_key["name"], primary_key["constrained_columns"]) == (
        "pk_answer_feedback",
        ["answer_id", "user_id"],
    )
    (fk,) = inspector.get_foreign_keys("answer_feedback")
    assert (fk["name"], fk["referred_table"], fk["options"].get("ondelete")) == (
        "fk_answer_feedback_answer_id_answers",
        "answers",
        "CASCADE",
    )
    assert {i["name"] for i in inspector.get_indexes("answers")} == {
        "ix_answers_team_id_created_at",
        "ix_answers_created_at",
    }
    downgrade(engine, "0013")
    assert not {"answers", "answer_feedback"} & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert schema_differences(engine) == []


def test_upgrading_from_0007_keeps_the_examples_and_the_rights_they_had(engine: Engine) -> None:
    # A database at 0007 with a set, an example added by /label add (the change log names its
    # adder) and one imported: 0008 keeps both, marks neither author as a file's claim (they were
    # trusted before), and records with the first the adder the change log names.
    upgrade(engine)
    downgrade(engine, "0007")
    assert "added_by" not in {c["name"] for c in inspect(engine).get_columns("examples")}
    now = "2026-11-30 12:00:00"

    def insert(conn: Connection, sql: str, **values: object) -> int:
        # Ids as the database hands them out, so that its sequences (PostgreSQL) stay in step.
        return int(conn.execute(text(sql + " RETURNING id"), {"now": now, **values}).scalar_one())

    with engine.begin() as conn:
        set_id = insert(
            conn,
            "INSERT INTO label_sets (team_id, name, version, created_at, updated_at) "
            "VALUES ('T1', 'support', 3, :now, :now)",
        )
        label_id = insert(
            conn, "INSERT INTO labels (set_id, name, created_at) VALUES (:set_id, 'bug', :now)", set_id=set_id
        )
        added, imported = (
            insert(
                conn,
                "INSERT INTO examples (label_id, text, text_hash, author, source_url, created_at) "
                "VALUES (:label_id, :text, :hash, :author, NULL, :now)",
                label_id=label_id,
                text=words,
                hash=f"{n:064d}",
                author=author,
            )
            for n, words, author in ((1, "It crashes", "U0ANA"), (2, "It freezes", "U0BO"))
        )
        insert(
            conn,
            "INSERT INTO label_changes (team_id, set_name, actor, action, label, example_id, text, "
            "count, created_at) VALUES ('T1', 'support', 'U0CURATOR', 'add', 'bug', :example, "
            "'It crashes', 1, :now)",
            example=added,
        )
        insert(
            conn,
            "INSERT INTO label_changes (team_id, set_name, actor, action, label, example_id, text, "
            "count, created_at) VALUES ('T1', 'support', 'U0HUMAN', 'import', 'bug', NULL, NULL, 1, :now)",
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []
    store = Store(engine)
    first, second = store.list_examples("T1", "support")
    assert (first.id, first.text, first.author, first.added_by, first.author_from_file) == (
        added,
        "It crashes",
        "U0ANA",
        "U0CURATOR",
        False,
    )
    assert (second.id, second.author, second.added_by, second.author_from_file) == (
        imported,
        "U0BO",
        None,
        False,
    )
    assert store.example_added_by("T1", added) == "U0CURATOR"  # from the change log, now its own
    assert store.example_added_by("T1", imported) is None  # an import named no example
    assert store.get_set("T1", "support").version == 3
    # New rows after the upgrade carry their own provenance.
    (new,) = store.add_examples(
        "T1",
        "support",
        [ExampleInput("bug", "It hangs", author="U0CLAIMED")],
        added_by="U0NEW",
        author_from_file=True,
    ).ids
    record = store.get_example("T1", "support", new)
    assert (record.added_by, record.author_from_file, store.example_added_by("T1", new)) == (
        "U0NEW",
        True,
        "U0NEW",
    )
    # Down to 0007 and up again (SQLite copies the table each way), the rows and constraints stay.
    downgrade(engine, "0007")
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM examples")) == 3
    upgrade(engine)
    assert schema_differences(engine) == []
    (fk,) = inspect(engine).get_foreign_keys("examples")
    assert fk["options"].get("ondelete") == "CASCADE"
    assert [e.text for e in store.list_examples("T1", "support")] == ["It crashes", "It freezes", "It hangs"]


def test_downgrade_to_base_and_up_again(engine: Engine) -> None:
    upgrade(engine)
    store = Store(engine)
    store.add_examples("T1", "support", [ExampleInput("bug", "It crashes")])
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []
    assert store.list_sets("T1") == []


def test_upgrade_twice_is_a_no_op(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrade(engine)
    Store(engine).add_examples("T1", "support", [ExampleInput("bug", "It crashes")])

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("upgrade ran migrations on a database already at head")

    monkeypatch.setattr(store_db, "_migrate", must_not_run)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert [r.text for r in Store(engine).list_examples("T1", "support")] == ["It crashes"]


def test_workers_upgrading_at_once_all_succeed(empty_database_url: str) -> None:
    # Several workers starting together against a new database: one migrates, the others wait
    # for the lock, see the schema at head and carry on.
    engines = [make_engine(empty_database_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        try:
            barrier.wait()
            upgrade(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert current_revision(engines[0]) == head_revision()
        assert schema_differences(engines[0]) == []
    finally:
        for e in engines:
            e.dispose()


def test_a_database_from_a_newer_gembot_is_refused(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(
        DatabaseUnavailable, match="revision '9999', which this version of Gembot does not know"
    ):
        upgrade(engine)
    with pytest.raises(DatabaseUnavailable, match="does not know"):
        Store.open(engine.url.render_as_string(hide_password=False), migrate=False)


def test_the_alembic_command_line_uses_the_same_migrations(empty_database_url: str) -> None:
    # What a developer runs from the checkout: `alembic upgrade head` with alembic.ini.
    env = {**os.environ, "DATABASE_URL": empty_database_url}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    engine = make_engine(empty_database_url)
    try:
        assert current_revision(engine) == head_revision()
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_migrations_are_found_next_to_the_package() -> None:
    assert MIGRATIONS_DIR == ROOT / "migrations"
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert head_revision() == "0015"
