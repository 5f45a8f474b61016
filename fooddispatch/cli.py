"""The `fooddispatch` command line: serve, migrate, demo, simulate, token.

Operational failures (a port in use, an unreachable database, a bad setting)
print one line to stderr and exit 1; bad flags exit 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import asyncpg

from fooddispatch.config import ConfigError, Settings
from fooddispatch.embedded import EmbeddedError, embedded_servers
from fooddispatch.migrate import MigrationError, apply_migrations


class CliError(Exception):
    """An operational failure reported as one line and exit code 1."""


INSTANCE_HEADER = "X-Fooddispatch-Instance"


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    changes = {}
    if getattr(args, "host", None):
        changes["host"] = args.host
    if getattr(args, "port", None) is not None:
        changes["port"] = args.port
    return settings.replace(**changes) if changes else settings


@contextlib.contextmanager
def servers_for(settings: Settings, *, need_redis: bool = True, live_cluster: int = 0) -> Iterator[Settings]:
    """Start embedded PostgreSQL/Redis for whatever is not configured; yield resolved settings. With
    `live_cluster`, the live store is a local Valkey Cluster of that many primaries instead."""
    if live_cluster and settings.redis_url:
        raise CliError("--live-cluster starts a local Valkey Cluster: unset REDIS_URL (or drop --live-cluster)")
    with embedded_servers(
        settings.data_dir, postgres=settings.database_url is None,
        redis=need_redis and settings.redis_url is None and not live_cluster,
    ) as (pg_url, redis_url):
        resolved = settings.replace(database_url=settings.database_url or pg_url,
                                    redis_url=settings.redis_url or redis_url)
        if not live_cluster:
            yield resolved
            return
        from fooddispatch.valkey_cluster import local_cluster

        with local_cluster(settings.data_dir.resolve() / "valkey-cluster", live_cluster) as cluster:
            yield resolved.replace(redis_url=cluster.url, redis_cluster=True)


async def migrate_database(database_url: str) -> list[str]:
    try:
        conn = await asyncpg.connect(database_url, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise CliError(f"cannot reach the database at {_redact(database_url)}: {exc}") from None
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


async def check_connection_budget(database_url: str, settings: Settings, processes: int) -> None:
    """CliError when `processes` servers, each with its PostgreSQL connection budget, would not fit in
    the server's max_connections (less the superuser reserve)."""
    from fooddispatch.database import connections_per_process

    per_process = connections_per_process(settings)
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        allowed = int(await conn.fetchval("SHOW max_connections"))
        reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
    finally:
        await conn.close()
    if processes * per_process > allowed - reserved:
        raise CliError(
            f"{processes} worker(s) × {per_process} PostgreSQL connections each (FOODDISPATCH_DB_POOL_MAX="
            f"{settings.db_pool_max} + the payments processor's and the liveness lock's) = "
            f"{processes * per_process}, more than the {allowed - reserved} the server allows "
            f"(max_connections {allowed}, {reserved} reserved): lower FOODDISPATCH_DB_POOL_MAX or --workers")


def _check_live_store(settings: Settings) -> str:
    from fooddispatch.livestore import LiveStoreError, check_live_store

    try:
        return asyncio.run(check_live_store(settings))
    except LiveStoreError as exc:
        raise CliError(str(exc)) from None


def _redact(url: str) -> str:
    from fooddispatch.livestore import redact

    return redact(url)


async def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await main(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def serve_app(settings: Settings, stop: asyncio.Event, *, announce: bool = True,
                    listening: asyncio.Event | None = None, instance: str | None = None,
                    reuse_port: bool = False) -> None:
    """Serve until `stop`. `listening` is set once the port is ours; with `instance`, every response
    carries it in `INSTANCE_HEADER`, so a client (the demo) can tell this server from another one.
    `reuse_port`: bind with SO_REUSEPORT, beside the other workers of `serve --workers N`."""
    from aiohttp import web

    from fooddispatch.app import create_app
    from fooddispatch.httpserver import BoundedAppRunner

    app = create_app(settings)
    if instance is not None:
        async def stamp(request: web.Request, response: web.StreamResponse) -> None:
            response.headers[INSTANCE_HEADER] = instance

        app.on_response_prepare.append(stamp)
    # Slow or idle clients do not hold connections for ever (slowloris): see fooddispatch/httpserver.py.
    runner = BoundedAppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5,
                              header_timeout=settings.http_header_timeout_seconds,
                              idle_timeout=settings.http_idle_timeout_seconds)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as exc:
            raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
        if listening is not None:
            listening.set()
        if announce:
            print(f"fooddispatch serving on http://{settings.host}:{settings.port} "
                  f"(docs: /docs, health: /readyz). Ctrl-C stops.", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _logging(settings)
    workers = getattr(args, "workers", None) or 1
    with servers_for(settings, live_cluster=getattr(args, "live_cluster", None) or 0) as resolved:
        store = _check_live_store(resolved)
        asyncio.run(migrate_database(resolved.database_url or ""))
        asyncio.run(check_connection_budget(resolved.database_url or "", resolved, workers))
        if workers == 1:
            asyncio.run(run_until_signalled(lambda stop: serve_app(resolved, stop)))
        else:
            return serve_workers(resolved, workers, store)
    return 0


def serve_workers(settings: Settings, count: int, store: str) -> int:
    """`serve --workers N` (N >= 2): the parent of N worker processes (fooddispatch/workers.py)."""
    from fooddispatch.workers import WorkerPool, WorkerStartError, reserve_port

    try:
        held = reserve_port(settings.host, settings.port)
    except OSError as exc:
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
    port = held.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": settings.database_url or "", "REDIS_URL": settings.redis_url or "",
           "FOODDISPATCH_REDIS_CLUSTER": "true" if settings.redis_cluster else "false",
           "FOODDISPATCH_HOST": settings.host, "FOODDISPATCH_PORT": str(port),
           "FOODDISPATCH_DATA_DIR": str(settings.data_dir)}

    def ready() -> None:
        print(f"fooddispatch serving on http://{settings.host}:{port} with {count} workers, live store: {store} "
              f"(docs: /docs, health: /readyz). Ctrl-C stops.", file=sys.stderr, flush=True)

    try:
        return WorkerPool(count, env, on_ready=ready).run()
    except WorkerStartError as exc:
        raise CliError(str(exc)) from None
    finally:
        held.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with servers_for(settings, need_redis=False) as resolved:
        applied = asyncio.run(migrate_database(resolved.database_url or ""))
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from kernel.http import STAFF

    if args.role == STAFF and not args.tenant:
        raise CliError("--role staff needs --tenant ID")
    if args.role != STAFF and args.tenant:
        raise CliError("--tenant goes with --role staff only")
    data_dir = _data_folder_for_token(os.environ)
    settings = _settings(args)

    async def issue(database_url: str) -> tuple[str, str]:
        from fooddispatch.identity import IdentityService, Tokens

        await migrate_database(database_url)
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            identity = IdentityService(pool, Tokens({settings.jwt_kid: settings.jwt_secret}, settings.jwt_kid,
                                                    args.ttl or settings.jwt_ttl_seconds))
            who = await identity.first_account(args.role, args.tenant)
            if who is None:
                who = await identity.create_account(args.role, name=f"local {args.role}", tenant_id=args.tenant)
            return identity.tokens.issue(who, args.ttl), who.account_id
        finally:
            await pool.close()

    with servers_for(settings, need_redis=False) as resolved:
        token, account_id = asyncio.run(issue(resolved.database_url or ""))
    db = f"the database in {data_dir}" if settings.database_url is None else _redact(settings.database_url)
    key = "FOODDISPATCH_JWT_SECRET" if os.environ.get("FOODDISPATCH_JWT_SECRET") else f"the secret in {data_dir}"
    # The token alone on stdout (TOKEN=$(fooddispatch token ...)); which server takes it on stderr.
    print(token)
    print(f"fooddispatch: {args.role} token for {account_id} (account in {db}, signed with {key})", file=sys.stderr)
    return 0


def _data_folder_for_token(env: Mapping[str, str]) -> Path:
    """The data folder a running server uses, or CliError when there is none to use. A token is only
    worth something to the server whose database holds its account and whose secret signed it; a
    fresh folder would hold neither (and reading the settings would create one), so none is made."""
    data_dir = Path(env.get("FOODDISPATCH_DATA_DIR") or ".fooddispatch").resolve()
    missing = []
    if not env.get("DATABASE_URL") and not (data_dir / "pg").is_dir():
        missing.append("no database")
    if not env.get("FOODDISPATCH_JWT_SECRET") and not (data_dir / "secrets" / "jwt_secret").is_file():
        missing.append("no signing secret")
    if missing:
        raise CliError(
            f"no fooddispatch data folder at {data_dir} ({' and '.join(missing)}): run this where `fooddispatch "
            "serve` (or `demo`) runs, or point FOODDISPATCH_DATA_DIR at its data folder; `fooddispatch migrate` "
            "starts a new one")
    return data_dir


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        from fooddispatch import demo
    except ImportError:
        print("the demo city is not built yet; starting `fooddispatch serve` instead", file=sys.stderr)
        return cmd_serve(args)
    return demo.run(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    from dispatch import replay_cli

    return replay_cli.run(args)


def _logging(settings: Settings) -> None:
    from fooddispatch.logs import configure_logging

    configure_logging(settings.log_level, settings.log_json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fooddispatch",
        description="Real-time food delivery platform. With no DATABASE_URL/REDIS_URL it runs embedded "
        "PostgreSQL and Redis in FOODDISPATCH_DATA_DIR (default ./.fooddispatch).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP and websocket server")
    serve.add_argument("--host", help="interface to bind (FOODDISPATCH_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (FOODDISPATCH_PORT, default 8080)")
    serve.add_argument("--workers", type=_positive(64), default=1, metavar="N",
                       help="server processes sharing the port (SO_REUSEPORT), restarted when they die (default 1)")
    serve.add_argument("--live-cluster", type=_positive(16), metavar="K",
                       help="run the live store as a local Valkey Cluster of K primaries (instead of one server)")
    serve.set_defaults(run=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(run=cmd_migrate)

    demo = sub.add_parser("demo", help="run a simulated city on the real API (the README's main command)")
    demo.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    demo.add_argument("--port", type=int, help="port to bind (default 8080)")
    _add_demo_arguments(demo)
    demo.set_defaults(run=cmd_demo)

    simulate = sub.add_parser("simulate", help="replay a Grubhub MDRP instance through the dispatcher")
    _add_simulate_arguments(simulate)
    simulate.set_defaults(run=cmd_simulate)

    token = sub.add_parser("token", help="print a bearer token for a local account of a role")
    token.add_argument("--role", required=True, choices=["customer", "courier", "staff", "operator"])
    token.add_argument("--tenant", help="tenant id (required for --role staff)")
    token.add_argument("--ttl", type=int, help="token lifetime in seconds")
    token.set_defaults(run=cmd_token)
    return parser


def _positive(most: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(f"{value} is out of range [1, {most}]")
        return value

    return parse


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        from fooddispatch import demo
    except ImportError:
        return
    demo.add_arguments(parser)


def _add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        from dispatch import replay_cli
    except ImportError:
        return
    replay_cli.add_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (CliError, ConfigError, EmbeddedError, MigrationError) as exc:
        print(f"fooddispatch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
