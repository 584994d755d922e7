"""The `dtf` command line.  Every DtfError becomes one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import cast, get_args

from rich.console import Console

from dtf.cli.analysis_args import COMMANDS as ANALYSIS_COMMANDS
from dtf.cli.args import build_parser
from dtf.client.config import load_settings, server_url, servers
from dtf.client.options import RunOptions
from dtf.core import requirements
from dtf.core.scheduling import strategy
from dtf.errors import ConfigError, DtfError, StoreError
from events.catalogue import Category

DEFAULT_LOCAL = "nats://127.0.0.1:4222"


def _connect_url(args: argparse.Namespace) -> list[str]:
    url = server_url(args.server, load_settings(Path.cwd())) or DEFAULT_LOCAL
    return servers(url)


async def _serve(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run a daemon until SIGINT/SIGTERM, which set `stop` so it can shut down in order.

    A second signal while it shuts down exits at once (the impatient operator's Ctrl-C).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            print("dtf: stopping now, without finishing the shutdown", file=sys.stderr)
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await body(stop)


async def _coordinator(args: argparse.Namespace) -> int:
    from dtf.coordinator.service import Coordinator
    from dtf.nats.store import EventStore

    store = await EventStore.connect(_connect_url(args), name="dtf-coordinator")
    try:
        coord = Coordinator(
            store,
            strategy(args.strategy),
            coordinator_id=args.id,
            lost_after=args.lost_after,
            straggler_after=args.straggler_after,
            snapshot_every=args.snapshot_every,
        )
        await _serve(coord.run)
    finally:
        await store.close()
    return 0


async def _worker_admin(args: argparse.Namespace) -> int:
    """An operator's request about one worker, recorded as an event."""
    from dtf.client.admin import check, request
    from dtf.nats.store import EventStore

    check(args.action, args.target or "")
    store = await EventStore.connect(_connect_url(args), name="dtf-admin", timeout=3.0)
    try:
        await request(store, args.action, args.target or "")
    finally:
        await store.close()
    print(f"{args.action}: recorded for worker {args.target}")
    return 0


async def _worker(args: argparse.Namespace, console: Console) -> int:
    from dtf.nats.store import EventStore
    from dtf.worker.interpreter import probe, resolve
    from dtf.worker.service import Worker

    if args.action == "install":
        from dtf.cli.install import install

        return install(args, console)
    if args.install_target is not None:
        raise ConfigError("--target goes with `dtf worker install`")
    if args.action:
        return await _worker_admin(args)
    if args.slots < 1:
        raise ConfigError("--slots must be at least 1")
    simulated = _simulated_error(args.simulate_error) if args.simulate_error else None
    if args.exit_with_parent:  # started by `dtf run`: never outlive it
        from dtf.runner.child.lifeline import exit_with_parent

        exit_with_parent(args.exit_with_parent)
    settings = load_settings(Path.cwd())
    python = resolve(args.python) if args.python else settings.python or None
    interpreter = await asyncio.to_thread(probe, python)  # a bad one fails before connecting
    urls, relay = _connect_url(args), None
    if args.simulate_disconnect is not None:
        if not 0 < args.simulate_disconnect < float("inf"):
            raise ConfigError("--simulate-disconnect takes a number of seconds above 0")
        from dtf.worker.relay import Relay

        relay = Relay(urls[0])
        urls = [await relay.start()]
    store = await EventStore.connect(urls, name="dtf-worker")
    try:
        worker = Worker(
            store,
            # A worker key is for one worker: its name is the worker's id.
            worker_id=args.id or _key_name(),
            slots=args.slots,
            labels=tuple(args.label),
            cache_dir=args.cache_dir,
            prewarm=tuple(json.loads(args.prewarm)) if args.prewarm else None,
            interpreter=interpreter,
            simulate_error=simulated,
            simulate_disconnect=(
                None if relay is None else lambda: relay.cut(args.simulate_disconnect)
            ),
        )
        await _serve(worker.run)
    finally:
        await store.close()
        if relay is not None:
            await relay.stop()
    return 0


def _simulated_error(value: str) -> tuple[Category, str]:
    """`--simulate-error`'s CATEGORY[:MESSAGE]."""
    category, _, message = value.partition(":")
    known = [c for c in get_args(Category) if c != "cancelled"]
    if category not in known:
        raise ConfigError(
            f"--simulate-error: unknown category {category!r} (one of: {', '.join(known)})"
        )
    return cast(Category, category), message.strip() or f"simulated {category} error"


def _key_name() -> str | None:
    creds = os.environ.get("DTF_CREDS")
    return Path(creds).stem if creds else None


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _server(args: argparse.Namespace) -> int:
    from dtf.nats.server import start_cluster_servers, start_server

    authorization = None
    if args.auth is not None:
        from dtf.nats import auth

        authorization = auth.render(auth.load_users(args.auth))
        auth.read_seed(args.auth / f"admin{auth.KEY_SUFFIX}")  # it sets the streams up
    elif args.host not in LOOPBACK and not args.insecure:
        raise ConfigError(
            f"refusing to listen on {args.host} without --auth: anyone reaching the port "
            "could run code on every worker (dtf auth init --dir DIR, then --auth DIR; "
            "or --insecure)"
        )
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert is not None else None
    for path in tls or ():
        if not path.is_file():
            raise ConfigError(f"no such file {path}")
    if args.insecure and args.auth is None and args.host not in LOOPBACK:
        print(
            f"dtf: warning: listening on {args.host} with no authorization (--insecure): "
            "anyone who reaches the port can submit commands to every worker",
            file=sys.stderr,
        )
    watch: Callable[[], None] = lambda: None  # noqa: E731 - reloads users, with --auth
    if args.cluster:
        if args.cluster < 1:
            raise ConfigError("--cluster needs a number of nodes, e.g. --cluster 3")
        cluster = start_cluster_servers(
            args.cluster, args.store, authorization=authorization, tls=tls
        )
        servers = cluster.nodes
        print(
            f"{args.cluster}-node cluster (store and logs in {args.store}); give clients all URLs:"
        )
        print(f"  --server {','.join(cluster.urls)}")
        stop = cluster.stop
    else:
        log = args.store / "nats-server.log"
        server = start_server(
            store_dir=args.store,
            host=args.host,
            port=args.port,
            log_file=log,
            authorization=authorization,
            tls=tls,
        )
        servers = [server]
        print(f"nats-server listening on {server.url}; Ctrl-C stops it")
        print(f"  store {args.store}, log {log}")
        stop = server.stop
    if args.auth is not None:
        try:
            asyncio.run(_set_up_as_admin([s.url for s in servers], args.auth, args.tls_ca))
        except BaseException:
            stop()
            raise
        print(f"  users and roles from {args.auth} (reloaded when they change)")
        watch = _auth_watch(servers, args.auth, args.tls_ca)
    # SIGTERM stops the servers as Ctrl-C does, instead of orphaning them.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while all(s.process.poll() is None for s in servers):
            time.sleep(0.5)  # until Ctrl-C, or a node dies
            watch()
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    dead = [s for s in servers if s.process.returncode not in (None, 0, -15)]
    if dead:
        raise StoreError(dead[0].death())
    return 0


async def _set_up_as_admin(
    urls: list[str],
    directory: Path,
    tls_ca: Path | None,
    reload: Callable[[str], None] | None = None,
) -> None:
    """With the admin key (the other roles may not): create every stream and bucket, and
    publish the registry of signing keys.

    With `reload` (users changed while the server runs), new keys are published before the
    server is told of them, so no reader meets an event signed by a key it cannot look up;
    revocations after, with the last sequence the revoked key can have written.
    """
    from dtf.nats import auth
    from dtf.nats.signing import KeyEntry, publish_registry
    from dtf.nats.store import EventStore

    users = auth.load_users(directory)
    store = await EventStore.connect(
        urls,
        name="dtf-server",
        creds=directory / f"admin{auth.KEY_SUFFIX}",
        tls_ca=tls_ca,
        timeout=30 if len(urls) > 1 else 5,  # a new cluster elects its JetStream leader first
    )
    try:
        if reload is None:
            await store.ensure_topology(with_leases=True)
        last = await store.last_seq()
        active = {u.public_key: KeyEntry(u.name, u.role) for u in users if not u.revoked}
        await publish_registry(store.js, active, enforced_from=last + 1)
        if reload is not None:
            reload(auth.render(users))
            last = await store.last_seq()
        revoked = {
            u.public_key: KeyEntry(u.name, u.role, revoked_after=max(1, last))
            for u in users
            if u.revoked
        }
        await publish_registry(store.js, revoked, enforced_from=last + 1)
    finally:
        await store.close()


def _auth_watch(servers: list, directory: Path, tls_ca: Path | None) -> Callable[[], None]:
    """A check, run every half second, that reloads the servers' users when `dtf auth add`
    or `revoke` rewrote them."""
    from dtf.nats import auth
    from dtf.nats.server import write_authorization

    path = directory / auth.CONF

    def stamp() -> tuple[int, int]:
        try:
            st = path.stat()
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    seen = stamp()

    def check() -> None:
        nonlocal seen
        now = stamp()
        if now == seen:
            return
        seen = now
        try:

            def reload(text: str) -> None:
                for server in servers:
                    write_authorization(server, text)

            asyncio.run(_set_up_as_admin([s.url for s in servers], directory, tls_ca, reload))
        except DtfError as exc:
            print(f"dtf: warning: users not reloaded: {exc}", file=sys.stderr)
            return
        print("users and roles reloaded", flush=True)

    return check


def _auth(args: argparse.Namespace, console: Console) -> int:
    from dtf.nats import auth

    if args.auth_action == "init":
        for path in auth.init(args.dir):
            console.print(f"wrote {path}", markup=False)
        console.print(
            f"start the server with: dtf server --host 0.0.0.0 --auth {args.dir}; give each "
            "machine only its key (--creds FILE)",
            markup=False,
        )
    elif args.auth_action == "add":
        path = auth.add(args.dir, args.role, args.name)
        console.print(f"wrote {path} ({args.role})", markup=False)
    elif args.auth_action == "revoke":
        user = auth.revoke(args.dir, args.name)
        console.print(f"revoked {user.name} ({user.role})", markup=False)
    else:
        for user in auth.load_users(args.dir):
            state = "  (revoked)" if user.revoked else ""
            console.print(f"{user.name:<24} {user.role:<12} {user.public_key}{state}", markup=False)
    return 0


async def _run(args: argparse.Namespace, pytest_args: list[str], console: Console) -> int:
    from dtf.client.run import RunClient

    return await RunClient(_run_options(args, pytest_args), console).execute()


async def _ci(args: argparse.Namespace, pytest_args: list[str], console: Console) -> int:
    from dtf.ci.command import CiRequest, run_ci

    request = CiRequest(
        provider=args.provider,
        output_dir=args.output_dir,
        fail_on_regression=args.fail_on_regression,
        baseline=args.baseline,
        db=args.db,
        threshold=args.threshold,
        alpha=args.alpha,
    )
    opts = _run_options(args, pytest_args)
    if args.analyze:
        from dtf.ci.analyze import analyze

        return await asyncio.to_thread(analyze, opts, console)
    return await run_ci(opts, request, console, os.environ)


def _run_options(args: argparse.Namespace, pytest_args: list[str]) -> RunOptions:
    """The options of `dtf run` (and `dtf ci`): flags over `[tool.dtf]`, checked."""
    from dtf.client.config import quarantine_patterns
    from dtf.client.coverage import parse_reports
    from dtf.client.run import options_from

    try:
        req = requirements.parse(args.requires)
    except ValueError as exc:
        raise ConfigError(f"--requires: {exc}") from None
    if args.command and (args.paths or pytest_args):
        raise ConfigError("give test paths or --command, not both")
    if args.cov_report and args.cov is None:
        raise ConfigError("--cov-report needs --cov")
    if args.cov is not None and args.command:
        raise ConfigError("--cov measures pytest runs, not --command")
    parse_reports(args.cov_report or [])  # a bad one is refused before anything starts
    tags = {}
    for tag in args.tag:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag must be KEY=VALUE, got {tag!r}")
        tags[key] = value
    settings = load_settings(Path.cwd())
    return options_from(
        settings,
        tags=tags,
        # No path given: none is passed on, so pytest uses the project's testpaths as it would.
        paths=args.paths or [],
        pytest_args=pytest_args,
        commands=args.command,
        repeat=args.repeat,
        server=args.server,
        workers=args.workers,
        split=args.split,
        timeout=args.timeout,
        strategy=args.strategy,
        requires=req,
        priority=args.priority,
        reruns=args.reruns,
        max_attempts=args.max_attempts,
        junit_xml=args.junit_xml,
        json=args.json,
        slowest=args.durations,
        verbose=args.verbose,
        progress=not args.no_progress,
        quarantine=quarantine_patterns(settings, args.quarantine_file),
        coverage=args.cov,
        coverage_reports=args.cov_report,
    )


# Off a terminal, tables of the inspection and analysis commands get this width unless
# $COLUMNS says otherwise: at pytest's 80 their ids and statuses would be cut to "disabl…".
TABLE_WIDTH = 200


def _status(args: argparse.Namespace, console: Console) -> int:
    from dtf.cli import inspection

    return asyncio.run(inspection.status(_connect_url(args), console))


def _show(args: argparse.Namespace, console: Console) -> int:
    from dtf.cli import inspection
    from dtf.cli.analysis import parse_age

    urls = _connect_url(args)
    now = time.time()
    since = now - parse_age(args.since, "--since") if args.since else None
    until = now - parse_age(args.until, "--until") if args.until else None
    return asyncio.run(inspection.show(urls, args.kind, args.id, console, since=since, until=until))


def _audit(args: argparse.Namespace, console: Console) -> int:
    from dtf.cli import audit

    return asyncio.run(audit.verify(_connect_url(args), console))


def _events(args: argparse.Namespace, console: Console) -> int:
    from dtf.cli import inspection

    urls = _connect_url(args)
    return asyncio.run(
        inspection.tail(urls, console, from_start=args.all, last=args.last, subject=args.subject)
    )


def _dashboard(args: argparse.Namespace) -> int:
    from tui import launch

    urls = _connect_url(args)
    if args.serve:
        return launch.serve(urls, args.db, theme=args.theme, host=args.host, port=args.port)
    return launch.run(urls, args.db, theme=args.theme, mute=args.mute)


def _analysis(args: argparse.Namespace, console: Console) -> int:
    # Imported only for these commands: the statistics behind them take a second to import.
    from dtf.cli import analysis

    return analysis.run(args, console, _connect_url)


Handler = Callable[[argparse.Namespace, list[str], Console], int]
# Each command's handler: (parsed arguments, the arguments after `--`, the console) -> exit code.
COMMANDS: dict[str, Handler] = {
    "run": lambda args, pytest_args, console: asyncio.run(_run(args, pytest_args, console)),
    "ci": lambda args, pytest_args, console: asyncio.run(_ci(args, pytest_args, console)),
    "coordinator": lambda args, _, __: asyncio.run(_coordinator(args)),
    "worker": lambda args, _, console: asyncio.run(_worker(args, console)),
    "server": lambda args, _, __: _server(args),
    "status": lambda args, _, console: _status(args, console),
    "show": lambda args, _, console: _show(args, console),
    "events": lambda args, _, console: _events(args, console),
    "audit": lambda args, _, console: _audit(args, console),
    "auth": lambda args, _, console: _auth(args, console),
    "dashboard": lambda args, _, __: _dashboard(args),
    **{name: (lambda args, _, console: _analysis(args, console)) for name in ANALYSIS_COMMANDS},
}


def console_width(environ: Mapping[str, str], is_terminal: bool, default: int = 80) -> int | None:
    """pytest's terminal width: $COLUMNS, else the terminal's, else `default` (pytest: 80);
    under 40 means 80.

    None on a terminal without $COLUMNS: rich then measures it, and follows it when resized.
    """
    columns = environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        width = int(columns)
    elif is_terminal:
        return None
    else:
        width = default
    # pytest's `get_terminal_width` distrusts a tiny width the same way.
    return width if width >= 40 else 80


def _use_creds(args: argparse.Namespace) -> None:
    """Put the key file of `--creds` (or $DTF_CREDS, or `[tool.dtf] creds`) in $DTF_CREDS,
    checked: every connection of this process and of its children signs in with it."""
    if not hasattr(args, "creds"):
        return
    from dtf.client.config import creds_path, tls_ca_path
    from dtf.nats.auth import read_seed

    settings = load_settings(Path.cwd())
    path = creds_path(args.creds, settings)
    if path is not None:
        read_seed(path)  # one clear line for a bad or readable-by-others file, before connecting
        os.environ["DTF_CREDS"] = str(path.resolve())
    ca = tls_ca_path(args.tls_ca, settings)
    if ca is not None:
        if not ca.is_file():
            raise ConfigError(f"--tls-ca: no such file {ca}")
        os.environ["DTF_TLS_CA"] = str(ca.resolve())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    default = 80 if args.cmd in ("run", "ci") else TABLE_WIDTH  # `dtf run` reads as pytest does
    width = console_width(os.environ, sys.stdout.isatty(), default)
    # soft_wrap: a long line is one line, as pytest writes it (and as logs are grepped),
    # never broken at the console's width; tables and rules still fit the width.
    console = Console(highlight=False, width=width, soft_wrap=True)
    try:
        _use_creds(args)
        return COMMANDS[args.cmd](args, pytest_args, console)
    except DtfError as exc:
        print(f"dtf: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dtf: interrupted", file=sys.stderr)
        return 2
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
