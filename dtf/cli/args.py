"""The `dtf` command line's arguments: one function per command (the analysis commands' are
in `analysis_args`).  `dtf.cli.main` parses with them and dispatches."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dtf import __version__
from dtf.cli import analysis_args, ci_args
from dtf.core import snapshot
from dtf.core.scheduling import DEFAULT_STRATEGY, STRATEGIES
from events import topology


def server_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        metavar="URL",
        help="NATS URL(s), comma-separated (default: $DTF_SERVER, [tool.dtf] server"
        f"{', else the embedded server' if p.prog.endswith('run') else ''})",
    )
    p.add_argument(
        "--creds",
        metavar="FILE",
        help="the key file to sign in with, from `dtf auth` (default: $DTF_CREDS, "
        "[tool.dtf] creds; none for a server without --auth)",
    )
    p.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="the CA certificate that signed the servers' (tls:// URLs; default: $DTF_TLS_CA, "
        "[tool.dtf] tls-ca, else the system's authorities)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of every `dtf` command."""
    parser = argparse.ArgumentParser(
        prog="dtf", description="Distributed testing and benchmarking on NATS JetStream."
    )
    parser.add_argument("--version", action="version", version=f"dtf {__version__}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("DTF_LOG_LEVEL", "WARNING"),
        help="logging level for daemons (default: WARNING)",
    )
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    _add_run(sub)
    ci_args.add_command(sub, add_run_options)
    _add_coordinator(sub)
    _add_worker(sub)
    _add_server(sub)
    _add_auth(sub)
    _add_inspection(sub)
    _add_dashboard(sub)
    analysis_args.add_commands(sub, server_arg)
    return parser


def _add_run(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run a pytest suite or commands across the workers",
        description="Collect a pytest suite (or take --command), split it into "
        "tasks, run them on the workers and print a pytest-like "
        "summary. Exit codes follow pytest: 0 passed, 1 failures, "
        "2 interrupted/usage, 5 nothing collected. Arguments after "
        "'--' go to pytest (e.g. -- -k smoke -x).",
    )
    add_run_options(run)


def add_run_options(run: argparse.ArgumentParser) -> None:
    """The options of a run, shared by `dtf run` and `dtf ci`."""
    run.add_argument("paths", nargs="*", default=None, help="test files or directories")
    server_arg(run)
    run.add_argument("-n", "--workers", type=int, help="embedded workers (default: CPUs)")
    run.add_argument("--split", choices=["file", "test"], help="task granularity (default file)")
    run.add_argument("--timeout", type=float, help="seconds per task (default 600)")
    run.add_argument(
        "--strategy",
        choices=sorted(STRATEGIES),
        help=f"scheduling strategy of the embedded coordinator (default {DEFAULT_STRATEGY})",
    )
    run.add_argument(
        "--requires",
        default="",
        metavar="SPEC",
        help="hardware every task needs, e.g. gpus=1,memory_gb=16,label=fast",
    )
    run.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    run.add_argument(
        "--reruns",
        type=int,
        default=0,
        metavar="N",
        help="rerun a failing test up to N times; a later pass counts as flaky",
    )
    run.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        metavar="N",
        help="attempts per task after infrastructure errors or timeouts (default 3)",
    )
    run.add_argument(
        "--command",
        action="append",
        default=[],
        metavar="CMD",
        help="run this shell-quoted command as a task instead of pytest "
        "(repeatable); metrics go to the JSON file in $DTF_RESULTS_FILE",
    )
    run.add_argument("--repeat", type=int, default=1, help="submit each --command N times")
    run.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label the run (repeatable); commit and branch come from git",
    )
    run.add_argument("--junit-xml", type=Path, metavar="PATH", help="write a JUnit XML report")
    run.add_argument("--json", type=Path, metavar="PATH", help="write a JSON report")
    run.add_argument(
        "--durations",
        type=int,
        metavar="N",
        help="show the N slowest tests, 0 for all, as pytest's --durations (default: pytest's "
        "--durations after -- or in addopts, else none; negative: none)",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="list skips, xfails and xpasses in the short summary too, as pytest's -ra",
    )
    run.add_argument("--no-progress", action="store_true", help="no live progress display")
    run.add_argument(
        "--quarantine-file",
        type=Path,
        metavar="FILE",
        help="tests (node ids, paths or wildcards, one a line) that run but cannot fail the "
        "run; adds to [tool.dtf] quarantine",
    )
    run.add_argument(
        "--cov",
        action="append",
        nargs="?",
        const="",
        metavar="SOURCE",
        help="measure coverage on every worker (coverage.py; repeatable: a package or path "
        "each, none for coverage.py's default) and report it combined here, as pytest --cov",
    )
    run.add_argument(
        "--cov-report",
        action="append",
        metavar="TYPE",
        help="term (default), term-missing, xml[:PATH], html[:DIR] or json[:PATH]; repeatable",
    )


def _count(text: str) -> int:
    """A whole number, zero or more (argparse's `type`)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def _seconds(text: str) -> float:
    """A number of seconds above zero (argparse's `type`)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return value


def _add_coordinator(sub: Any) -> None:
    coord = sub.add_parser("coordinator", help="run a coordinator (schedules tasks)")
    server_arg(coord)
    coord.add_argument("--strategy", choices=sorted(STRATEGIES), default=DEFAULT_STRATEGY)
    coord.add_argument("--id", help="coordinator id (default: random)")
    coord.add_argument(
        "--straggler-after",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="with the queue empty and a worker idle, give a task running over 4x its "
        "expected time and over S seconds a second attempt (default 10)",
    )
    coord.add_argument(
        "--snapshot-every",
        type=_count,
        default=snapshot.EVERY,
        metavar="N",
        help="while leading, snapshot the folded state after N new events (at most once a "
        f"minute), so that a start replays only what came after (default {snapshot.EVERY:,}; "
        "0: never)",
    )
    coord.add_argument(
        "--lost-after",
        type=_seconds,
        default=topology.HEARTBEAT_TTL_S,
        metavar="S",
        help="declare a worker lost after S seconds without "
        f"a heartbeat (default {topology.HEARTBEAT_TTL_S:g})",
    )


def _add_worker(sub: Any) -> None:
    worker = sub.add_parser(
        "worker",
        help="run a worker daemon, or drain/enable/disable one",
        description="Without ACTION: run a worker daemon that executes tasks (SIGTERM drains "
        "it). With ACTION and ID: ask worker ID to drain (finish its tasks, then stop), or "
        "enable it (after a quarantine) or disable it (no new work). `install --target T` "
        "writes a unit that runs this worker as a service: systemd, launchd, a Windows "
        "service (NSSM), or a Dockerfile and compose file for a small fleet.",
    )
    worker.add_argument("action", nargs="?", choices=["drain", "enable", "disable", "install"])
    worker.add_argument("target", nargs="?", metavar="ID", help="the worker to act on")
    server_arg(worker)
    worker.add_argument("--slots", type=int, default=1, help="tasks at once (default 1)")
    worker.add_argument("--id", help="worker id (default: host-pid-random)")
    worker.add_argument("--label", action="append", default=[], help="a label (repeatable)")
    worker.add_argument("--cache-dir", type=Path, help="bundle cache (default ~/.cache/dtf)")
    worker.add_argument(
        "--python",
        metavar="PATH",
        help="the interpreter that runs the tests and commands, e.g. a project's "
        ".venv/bin/python (default: [tool.dtf] python, else dtf's own)",
    )
    testing = worker.add_argument_group("exercising the error pipeline")
    testing.add_argument(
        "--simulate-error",
        metavar="CATEGORY[:MESSAGE]",
        help="fail every task (not health checks) with this error category (infrastructure, "
        "timeout, environment, internal, test), carrying the system context a real one "
        "would: to try retries, quarantine and alerts",
    )
    testing.add_argument(
        "--simulate-disconnect",
        type=float,
        metavar="SECONDS",
        help="once the first task has started here, cut this worker's connection to the "
        "server for SECONDS (a relay on 127.0.0.1 drops it and refuses reconnects), while "
        "the task runs on: past the coordinator's --lost-after the worker is declared lost, "
        "its attempt is retried elsewhere, and it rejoins when the connection is back.  The "
        "coordinator declares nobody lost while no heartbeat at all reaches it, so try it "
        "with a second worker running",
    )
    install = worker.add_argument_group("install")
    install.add_argument(
        "--target",
        dest="install_target",
        choices=["systemd", "launchd", "windows", "docker"],
        help="what `install` writes",
    )
    install.add_argument(
        "--user", action="store_true", help="a unit of your user's, not the system's"
    )
    install.add_argument(
        "--output-dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where `install` writes (default .)",
    )
    install.add_argument(
        "--cpu-workers", type=int, default=2, metavar="N", help="docker: CPU workers (default 2)"
    )
    install.add_argument(
        "--gpu-workers", type=int, default=1, metavar="N", help="docker: GPU workers (default 1)"
    )
    worker.add_argument("--exit-with-parent", type=int, metavar="PID", help=argparse.SUPPRESS)
    worker.add_argument("--prewarm", metavar="JSON", help=argparse.SUPPRESS)


def _add_server(sub: Any) -> None:
    server = sub.add_parser("server", help="run a nats-server with dtf's nats.conf")
    server.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=4222)
    server.add_argument(
        "--cluster",
        type=int,
        default=0,
        metavar="N",
        help="start an N-node JetStream cluster on loopback (random ports) "
        "instead of one server; streams get 3 replicas when N >= 3",
    )
    server.add_argument(
        "--store",
        type=Path,
        default=Path("dtf-store"),
        help="JetStream store directory (default ./dtf-store)",
    )
    server.add_argument(
        "--auth",
        type=Path,
        metavar="DIR",
        help="let in only the keys of DIR (dtf auth init --dir DIR), each with its role's "
        "permissions; required to listen on anything but loopback",
    )
    server.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="serve TLS only, with this certificate"
    )
    server.add_argument(
        "--tls-key", type=Path, metavar="FILE", help="the certificate's private key"
    )
    server.add_argument(
        "--tls-ca",
        type=Path,
        metavar="FILE",
        help="the CA that signed --tls-cert, for the server's own set-up connection",
    )
    server.add_argument(
        "--insecure",
        action="store_true",
        help="listen on a non-loopback address without --auth: anyone who reaches the port "
        "can run code on every worker",
    )


def _add_auth(sub: Any) -> None:
    auth = sub.add_parser(
        "auth",
        help="keys and roles for a server started with --auth",
        description="One key per user, each with a role: submitter (dtf run), worker, "
        "coordinator, viewer (read only) and admin. Key files are written with mode 0600; "
        "give each machine only the key it needs (--creds FILE or $DTF_CREDS). A running "
        "`dtf server --auth DIR` reloads when keys are added or revoked.",
    )
    actions = auth.add_subparsers(dest="auth_action", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="create one key per role and the server's users")
    init.add_argument("--dir", type=Path, required=True, help="where the keys go (new)")
    add = actions.add_parser("add", help="a key for one more user, e.g. add worker gpu-box-7")
    add.add_argument("role", choices=["submitter", "worker", "coordinator", "viewer", "admin"])
    add.add_argument("name", help="its name; a worker's is its worker id")
    add.add_argument("--dir", type=Path, required=True)
    revoke = actions.add_parser("revoke", help="remove a user and delete its key file")
    revoke.add_argument("name")
    revoke.add_argument("--dir", type=Path, required=True)
    listing = actions.add_parser("list", help="the users, their roles and public keys")
    listing.add_argument("--dir", type=Path, required=True)


def _add_dashboard(sub: Any) -> None:
    dash = sub.add_parser(
        "dashboard",
        help="the live dashboard of the fleet (a terminal app, or served to a browser)",
        description="A live view of workers, runs, errors, trends and topology, with alerts "
        "and sound. Live state comes from the event stream and the heartbeats; history "
        "(errors over days, benchmark trends) from a read model built by `dtf replay`. "
        "Press ? in the app for its keys.",
    )
    server_arg(dash)
    dash.add_argument(
        "--db",
        type=Path,
        metavar="FILE",
        help="the read model for the history panels (from `dtf replay --db FILE`; it may be "
        "held by `dtf replay --follow`); without one they say how to get it",
    )
    dash.add_argument("--theme", choices=["dark", "light"], default="dark")
    dash.add_argument("--mute", action="store_true", help="start with the alert sounds off")
    dash.add_argument(
        "--serve", action="store_true", help="serve the dashboard to browsers instead"
    )
    dash.add_argument("--host", default="127.0.0.1", help="with --serve (default: 127.0.0.1)")
    dash.add_argument("--port", type=int, default=8000, help="with --serve (default: 8000)")


def _add_inspection(sub: Any) -> None:
    status = sub.add_parser("status", help="workers, queue and running tasks")
    server_arg(status)

    show = sub.add_parser(
        "show",
        help="the event history (audit trail) of a run, task or worker, or of a time range",
        description="Read straight from the event stream (works with no coordinator and with "
        "stale read models): every event with its sequence, time, actor and leader term. "
        "`dtf show all --since 1h` lists everything in a time range.",
    )
    server_arg(show)
    show.add_argument("kind", choices=["run", "task", "worker", "all"])
    show.add_argument("id", nargs="?", help="run, task or worker id (not for 'all')")
    show.add_argument("--since", metavar="AGE", help="only events newer than AGE (e.g. 30m, 6h)")
    show.add_argument("--until", metavar="AGE", help="only events older than AGE")

    audit = sub.add_parser(
        "audit",
        help="check the event stream's signatures and signers",
        description="Verify every event of the stream as the coordinator and the read models "
        "do: its signature against the server's keys (dtf server --auth) and its signer "
        "against what its role and the task's assignment allow. Prints the refused events "
        "and counts of valid, unsigned, invalid and unreadable ones; exits 1 when any event "
        "was refused.",
    )
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    server_arg(audit_sub.add_parser("verify", help="check the whole stream"))

    events = sub.add_parser("events", help="event stream tools")
    events_sub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    tail = events_sub.add_parser("tail", help="print events live, pretty")
    server_arg(tail)
    tail.add_argument("--all", action="store_true", help="start from the first event")
    tail.add_argument("--last", type=int, default=20, help="start N events back (default 20)")
    tail.add_argument("--subject", default="dtf.evt.>", help="filter (default dtf.evt.>)")
