"""`gembot serve`: run the Slack bot, over Socket Mode or as an HTTP server (gunicorn, gthread workers)."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import TYPE_CHECKING, Any

from bot.cli.context import Context
from core.errors import GembotError
from core.settings import Settings

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.lifecycle import Lifecycle
    from handlers.deps import Deps

log = logging.getLogger("gembot.serve")


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the Slack bot (Socket Mode when SLACK_APP_TOKEN is set, else HTTP)",
        description=(
            "Run the Slack bot. Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN and no public URL; "
            "HTTP mode needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET and serves POST /slack/events "
            "and GET /healthz."
        ),
    )
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument("--socket", dest="mode", action="store_const", const="socket", help="use Socket Mode")
    mode.add_argument("--http", dest="mode", action="store_const", const="http", help="serve HTTP")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP: address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="HTTP: port (default $PORT, else 3000)")
    serve.add_argument(
        "--workers", type=int, help="HTTP: worker processes (default $GEMBOT_HTTP_WORKERS, else 1)"
    )
    serve.add_argument(
        "--threads", type=int, help="HTTP: threads per worker (default $GEMBOT_HTTP_THREADS, else 8)"
    )
    serve.set_defaults(run=run_serve)


def run_serve(ctx: Context) -> int:
    from bot.logs import configure_server_logging

    settings = ctx.settings
    mode = ctx.args.mode or ("socket" if settings.slack_app_token else "http")
    configure_server_logging(settings)
    if mode == "socket":
        return _serve_socket(settings)
    return _serve_http(
        settings,
        host=ctx.args.host,
        port=ctx.args.port if ctx.args.port is not None else settings.port,
        workers=ctx.args.workers or settings.http_workers,
        threads=ctx.args.threads or settings.http_threads,
    )


def _check_slack(settings: Settings) -> None:
    """Fail in one line, before any worker starts, when Slack refuses the bot token."""
    from slack_sdk.errors import SlackApiError, SlackClientError

    from bot.app import SlackNotConfigured, slack_client

    try:
        identity = slack_client(settings).auth_test()
    except SlackApiError as exc:
        raise SlackNotConfigured(
            f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')}): check it in the app's settings"
        ) from None
    except (SlackClientError, OSError) as exc:
        raise SlackNotConfigured(f"cannot reach Slack to check the bot token: {exc}") from None
    log.info("connected to Slack as %s in %s", identity.get("user"), identity.get("team"))


def socket_mode_handler(deps: Deps, lifecycle: Lifecycle) -> SocketModeHandler:
    """The Bolt app for `deps` behind slack_bolt's built-in Socket Mode handler, not connected yet.

    Its lazy listeners run on `lifecycle`'s executor and its requests are tracked by `lifecycle`'s
    deliveries, so that `lifecycle.start(handler.app)` resumes what another process left; requests
    over the app's own WebSocket carry no signature, so the signing secret is optional. The
    handler reaches Slack (`apps.connections.open`) through the app's client, at SLACK_API_URL.
    `gembot serve --socket` runs this; the tests run it against a Socket Mode stand-in.
    """
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import build_app

    settings = deps.settings
    if settings.slack_app_token is None:
        raise GembotError("SLACK_APP_TOKEN is not set: Socket Mode needs the app-level token (xapp-…)")
    verify = bool(settings.slack_signing_secret)
    app = build_app(
        deps, executor=lifecycle.executor, deliveries=lifecycle.deliveries, verify_requests=verify
    )
    return SocketModeHandler(app, settings.slack_app_token.get())


def _serve_socket(settings: Settings) -> int:
    from bot.app import require
    from bot.lifecycle import Lifecycle
    from handlers.deps import Deps

    require(settings, signing_secret=False, app_token=True)
    _check_slack(settings)
    deps = Deps.open(settings)
    lifecycle = Lifecycle(deps)
    handler = None
    try:
        handler = socket_mode_handler(deps, lifecycle)
        lifecycle.start(handler.app)

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        log.info("serving Slack over Socket Mode")
        handler.start()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        if handler is not None:
            handler.close()
        # No new requests now: what is in flight finishes, bulk jobs are recorded for the next start.
        lifecycle.shutdown(settings.graceful_timeout)
        deps.close()
    return 0


def _serve_http(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> int:
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise GembotError(
            "HTTP mode runs on gunicorn, which is not installed: pip install 'gembot[server]'"
        ) from None

    from bot.app import require
    from bot.http_worker import worker_class
    from core.store import Store

    require(settings, signing_secret=True)
    if workers < 1 or threads < 1:
        raise GembotError("--workers and --threads must be at least 1")
    # Migrate once, here, before the workers start: a database problem is one line, not a
    # traceback per worker.
    Store.open(settings.database_url, migrate=True).close()
    if settings.slack_bot_token:  # with OAuth install there is no token to check yet
        _check_slack(settings)

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": [f"{host}:{port}"],
                "workers": workers,
                # gthread, with GEMBOT_READ_TIMEOUT on every read from a client (bot.http_worker).
                "worker_class": worker_class(settings.read_timeout),
                "threads": threads,
                "timeout": 60,
                # SIGTERM: a worker stops accepting, finishes its requests, then `worker_exit`
                # waits for the lazy listeners in flight (bot.lifecycle); past this, it is killed.
                "graceful_timeout": settings.graceful_timeout,
                "worker_exit": _worker_exit,
                "proc_name": "gembot",
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "info",
            }.items():
                self.cfg.set(key, value)
            # gunicorn 27 opens a control socket at a fixed path per user: two Gembot servers on
            # one host would fight over it, and nothing here uses it.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            # Runs in each worker after the fork: every worker has its own pool and threads.
            from bot.wsgi import create_app

            return create_app(settings)

    log.info("serving Slack over HTTP on %s:%d (%d worker(s) × %d threads)", host, port, workers, threads)
    Server().run()
    return 0


def _worker_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook, in the worker once it has stopped serving: stop the app gracefully."""
    app = getattr(worker, "wsgi", None)
    close = getattr(app, "close", None)
    if close is not None:
        close()
