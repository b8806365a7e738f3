"""The `warncast` command: serve, worker and admin commands."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from foundation import logs, loops
from foundation.access.roles import ROLES
from foundation.phones import normalize_phone
from foundation.settings import Settings, SettingsError, parse_processes
from foundation.store.connection import open_redis
from foundation.store.inventory import SAMPLE, render_text, take_inventory
from foundation.supervisor import Supervisor
from publisher import cap_signing
from publisher.dispatch.runner import dispatch_loops
from publisher.scheduler import scheduler_loop
from publisher.subscriber_import import import_subscribers
from warncast import processes
from warncast.demo import demo_logins, load_demo
from warncast.services import Services
from warncast.web.app import create_app

log = logging.getLogger("warncast")
# On SIGTERM (or SIGINT) `serve` lets requests in progress finish for SHUTDOWN_GRACE seconds (aiohttp
# then gives a handler that still runs as long again, and drops it), then the supervisor cancels the
# background loops (`stop_timeout` at most, see foundation.supervisor): an orderly stop takes under
# SIGNAL_DEADLINE even with Redis hung, and a process still stopping then (something that will not
# end) exits anyway.
SHUTDOWN_GRACE = 2.0
SIGNAL_DEADLINE = 9.0
_signalled = threading.Event()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="warncast", description="warncast: public early-warning release")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="web app and background workers in one process")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--processes",
        type=_processes_argument,
        help="serving processes on this host, or 'auto' (one per CPU); default WARNCAST_PROCESSES, else 1",
    )
    serve.add_argument(processes.CHILD_OPTION, type=processes.Child.parse, help=argparse.SUPPRESS)
    commands.add_parser("worker", help="background workers only: dispatch, scheduling and expiry")
    admin = commands.add_parser("admin", help="administration").add_subparsers(dest="admin", required=True)
    for name, what in (("create-user", "a console user"), ("create-token", "an API token for a machine")):
        sub = admin.add_parser(name, help=f"create {what}")
        sub.add_argument("name")
        sub.add_argument("--role", action="append", required=True, choices=ROLES, help="repeat for several roles")
        sub.add_argument("--unit", default="", help="issuing unit id (default: the release centre)")
        if name == "create-user":
            sub.add_argument("--password", help="default: ask, or generate one when not on a terminal")
    mover = admin.add_parser("set-unit", help="move a console user to an issuing unit")
    mover.add_argument("name")
    mover.add_argument("unit", help="a unit id from /api/v1/units")
    pager = admin.add_parser("set-pager", help="where a user is paged when a warning waits for their approval")
    pager.add_argument("name")
    where = pager.add_mutually_exclusive_group(required=True)
    where.add_argument("--sms", metavar="NUMBER", help="a mobile number (E.164, or national)")
    where.add_argument("--telegram", metavar="CHAT_ID", help="the user's Telegram chat id with the bot")
    where.add_argument("--off", action="store_true", help="page this user nowhere")
    admin.add_parser("list-users", help="list console users")
    admin.add_parser("load-demo", help="load the demo city, operators and a demo warning")
    admin.add_parser("verify-audit", help="check the audit log's hash chain")
    importer = admin.add_parser("import-subscribers", help="import residents from CSV (idempotent)")
    importer.add_argument("file", help="CSV with columns channel,address,area,language,min_grade[,drill]")
    stats = admin.add_parser("stats", help="keys and memory per key family, to size Redis")
    stats.add_argument("--json", action="store_true", help="one JSON object, for machines")
    stats.add_argument("--sample", type=int, default=SAMPLE, help="keys per family whose memory is measured")
    admin.add_parser("rotate-cap-key", help="sign CAP with a new generated key (the old certificate stays published)")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"warncast: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_json)
    try:
        if args.command == "serve":
            host, port = args.host or settings.host, args.port or settings.port
            public_url = settings.public_url
            if "WARNCAST_PUBLIC_URL" not in os.environ:
                public_url = f"http://{host}:{port}"
            settings = settings.with_(host=host, port=port, public_url=public_url)
            count = args.processes or settings.processes
            if args.child is None and count > 1:
                return processes.serve(settings, count, child_deadline=SIGNAL_DEADLINE)
            return _serve(settings, args.child)
        if args.command == "worker":
            return loops.run(_worker(settings))
        if args.admin == "rotate-cap-key":  # files only, no Redis
            return _rotate_cap_key(settings)
        return asyncio.run(_admin(settings, args))
    except SettingsError as exc:  # found on connecting: a Redis Cluster, another deployment's secret key
        print(f"warncast: configuration error: {exc}", file=sys.stderr)
        return 2


def _rotate_cap_key(settings: Settings) -> int:
    new, old = cap_signing.rotate(settings)
    if old is not None:
        print(f"retired certificate {old.fingerprint} (still published at /cap/certificates.pem)")
    print(f"new CAP signing certificate {new.fingerprint}; running processes sign with it once restarted")
    return 0


def _processes_argument(value: str) -> int:
    try:
        return parse_processes(value, "--processes")
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _serve(settings: Settings, child: processes.Child | None = None) -> int:
    """One serving process: on its own, or one of `warncast serve --processes N`'s children
    (warncast/processes.py), which shares the port (SO_REUSEPORT) and the host's limits."""
    if child is None:
        print(f"warncast: serving on http://{settings.host}:{settings.port}", flush=True)
    loop = loops.new_event_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # aiohttp's own handling, plus the deadline
        loop.add_signal_handler(sig, _stop_serving)
    app = create_app(settings)
    if child is not None:
        child.install(app, settings, loop, stop=_stop_serving)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=SHUTDOWN_GRACE,
        access_log=None,
        handle_signals=False,
        reuse_port=True if child is not None else None,
        loop=loop,
    )
    return 0


def _stop_serving() -> None:
    if _arm_deadline():  # the first signal starts the shutdown; a second one only waits for it
        raise web.GracefulExit()


def _arm_deadline() -> bool:
    """Make sure the process ends within SIGNAL_DEADLINE seconds of the first stop signal (True
    for that one)."""
    if _signalled.is_set():
        return False
    _signalled.set()
    timer = threading.Timer(SIGNAL_DEADLINE, _exit_now)
    timer.daemon = True
    timer.start()
    return True


def _exit_now() -> None:
    log.error("still stopping %.0f s after the signal: exiting now", SIGNAL_DEADLINE)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(1)


async def _worker(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main, connected = asyncio.current_task(), False

    def on_signal() -> None:
        _arm_deadline()
        stop.set()
        if not connected and main is not None:
            main.cancel()  # still waiting for Redis: stop waiting

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        async with open_redis(settings) as redis:
            connected = True
            services = await Services.build(settings, redis)
            await services.start_channels()
            try:
                async with Supervisor() as supervisor:  # stops (cancels and awaits) every loop on the way out
                    supervisor.add(scheduler_loop(services.registry, redis, services.warnings))
                    supervisor.add(*dispatch_loops(services.dispatch))
                    log.info("worker running")
                    await stop.wait()
            finally:
                await services.close_channels()
    except asyncio.CancelledError:
        if connected or not stop.is_set():
            raise
        log.info("worker stopped before Redis answered")
        return 0
    log.info("worker stopped")
    return 0


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    async with open_redis(settings) as redis:
        services = await Services.build(settings, redis)
        handler: Callable[[Services, argparse.Namespace], Awaitable[int]] = ADMIN[args.admin]
        try:
            return await handler(services, args)
        except ValueError as exc:
            print(f"warncast: {exc}", file=sys.stderr)
            return 2


async def _create_user(services: Services, args: argparse.Namespace) -> int:
    password = args.password
    generated = False
    if password is None:
        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {args.name}: ")
        else:
            password, generated = secrets.token_urlsafe(12), True
    if await services.accounts.user_exists(args.name):
        raise ValueError(f"user {args.name} exists already")
    unit = await _unit(services, args.unit)
    await services.accounts.create_user(args.name, args.role, password, unit=unit)
    await services.audit.append("cli", "user.create", args.name, roles=sorted(args.role), unit=unit)
    print(f"created user {args.name} ({', '.join(sorted(set(args.role)))})")
    if generated:
        print(f"password: {password}")
    return 0


async def _create_token(services: Services, args: argparse.Namespace) -> int:
    unit = await _unit(services, args.unit)
    token = await services.accounts.create_token(args.name, args.role, unit)
    await services.audit.append("cli", "token.create", args.name, roles=sorted(args.role), unit=unit)
    print(token)
    return 0


async def _unit(services: Services, unit: str) -> str:
    """A unit id that exists ("" stays the release centre)."""
    if unit and (await services.warnings.units.organisation()).find(unit) is None:
        raise ValueError(f"no unit {unit}; see /api/v1/units")
    return unit


async def _set_unit(services: Services, args: argparse.Namespace) -> int:
    unit = await _unit(services, args.unit)
    await services.accounts.set_unit(args.name, unit)
    await services.audit.append("cli", "user.unit", args.name, unit=unit)
    print(f"{args.name} now belongs to {unit or 'the release centre'}")
    return 0


async def _set_pager(services: Services, args: argparse.Namespace) -> int:
    if args.sms:
        channel, address = "sms", normalize_phone(args.sms)  # ValueError: printed as the error
    elif args.telegram:
        if not args.telegram.lstrip("-").isdigit():
            raise ValueError(f"a Telegram chat id is a number, got {args.telegram!r}")
        channel, address = "telegram", args.telegram
    else:
        channel, address = "", ""
    await services.accounts.set_pager(args.name, channel, address)
    await services.audit.append("cli", "user.pager", args.name, channel=channel)
    print(f"{args.name} is paged {f'by {channel}' if channel else 'nowhere'}")
    return 0


async def _list_users(services: Services, args: argparse.Namespace) -> int:
    for user in await services.accounts.list_users():
        disabled = "\t(disabled)" if user["disabled"] else ""
        unit = f"\t{user['unit']}" if user.get("unit") else ""
        print(f"{user['name']}\t{','.join(user['roles'])}{unit}{disabled}")  # type: ignore[arg-type]  # list_users' records are untyped JSON
    return 0


async def _load_demo(services: Services, args: argparse.Namespace) -> int:
    for note in await load_demo(services):
        print(f"warncast: {note}")
    print(f"demo operator logins (console: {services.settings.public_url}/console):")
    for name, password in demo_logins(services):
        print(f"  {name:<10} {password}")
    return 0


async def _verify_audit(services: Services, args: argparse.Namespace) -> int:
    problems = await services.audit.verify()
    total = await services.audit.count()
    if problems:
        print(f"audit log: {len(problems)} problem(s) in {total} entries", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"audit log intact: {total} entries")
    return 0


async def _import_subscribers(services: Services, args: argparse.Namespace) -> int:
    try:
        text = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {args.file}: {exc}") from exc
    report = await import_subscribers(services.subscribers, services.registry, text)
    await services.audit.append(
        "cli",
        "subscribers.import",
        args.file,
        imported=report.imported,
        unchanged=report.unchanged,
        errors=len(report.errors),
    )
    print(
        f"imported {report.imported}, unchanged {report.unchanged}, "
        f"kept stopped {report.skipped_stopped}, errors {len(report.errors)}"
    )
    for error in report.errors:
        print(f"  {error}", file=sys.stderr)
    return 1 if report.errors else 0


async def _stats(services: Services, args: argparse.Namespace) -> int:
    inventory = await take_inventory(services.redis, sample=max(1, args.sample))
    print(json.dumps(inventory.as_json(), indent=2) if args.json else render_text(inventory))
    return 0


ADMIN: dict[str, Callable[[Services, argparse.Namespace], Awaitable[int]]] = {
    "create-user": _create_user,
    "create-token": _create_token,
    "set-unit": _set_unit,
    "set-pager": _set_pager,
    "list-users": _list_users,
    "load-demo": _load_demo,
    "verify-audit": _verify_audit,
    "import-subscribers": _import_subscribers,
    "stats": _stats,
}

if __name__ == "__main__":
    sys.exit(main())
