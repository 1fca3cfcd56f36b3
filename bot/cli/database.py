"""`gembot db …`: the database schema."""

from __future__ import annotations

import argparse

from bot.cli.context import Context
from bot.cli.output import emit_json
from core.store import Store
from core.store.db import current_revision, head_revision, make_engine


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    db = commands.add_parser("db", help="database schema")
    sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    sub.add_parser(
        "upgrade", parents=[common], help="migrate the database to the latest schema"
    ).set_defaults(run=run_upgrade)
    sub.add_parser("status", parents=[common], help="show the schema revision").set_defaults(run=run_status)


def run_upgrade(ctx: Context) -> int:
    store = Store.open(ctx.settings.database_url, migrate=True)
    revision = current_revision(store.engine)
    if ctx.args.json:
        emit_json({"revision": revision, "head": head_revision()})
    else:
        print(f"database is at revision {revision} (latest)")
    return 0


def run_status(ctx: Context) -> int:
    engine = make_engine(ctx.settings.database_url)
    revision, head = current_revision(engine), head_revision()
    if ctx.args.json:
        emit_json({"revision": revision, "head": head, "up_to_date": revision == head})
    else:
        state = "up to date" if revision == head else "out of date: run `gembot db upgrade`"
        print(f"database revision {revision or 'none'}, latest {head}: {state}")
    return 0
