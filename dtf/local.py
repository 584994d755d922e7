"""The embedded cluster `dtf run` starts when no server is configured.

A nats-server on 127.0.0.1 with a temporary store and N worker processes,
all children of the `dtf run` process, their output in a log directory that is kept when
something goes wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dtf.server import LocalServer, start_server


@dataclass
class LocalCluster:
    server: LocalServer
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def spawn(self, name: str, *args: str) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "dtf", *args, "--server", self.url],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C goes to `dtf run`, which stops these in order
        )
        log.close()

    def stop(self, keep_logs: bool = False) -> None:
        """Kill the workers, then stop the server.

        The store is thrown away, so a worker's orderly goodbye (events, consumer cleanup)
        buys nothing here; their pytest processes die with them (dtf.runner.child.lifeline).
        """
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.processes.values():
            proc.wait()
        self.server.stop()
        if not keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)


def start_cluster(
    workers: int,
    *,
    labels: Sequence[str] = (),
    prewarm: Sequence[str] | None = None,
    python: str | None = None,
) -> LocalCluster:
    """The server and N worker processes; `dtf run` runs the coordinator in-process.

    Embedded workers share this machine's files: they run tests in the project directory
    itself (no bundle), and with `prewarm` (pytest arguments) start collecting at once.
    """
    log_dir = Path(tempfile.mkdtemp(prefix="dtf-logs-"))
    # The store is a temporary directory deleted after the run: fsync would buy nothing.
    server = start_server(log_file=log_dir / "nats-server.log", durable=False)
    cluster = LocalCluster(server, log_dir)
    for i in range(workers):
        label_args = [a for label in labels for a in ("--label", label)]
        if prewarm is not None:
            label_args += ["--prewarm", json.dumps(list(prewarm))]
        if python is not None:
            label_args += ["--python", python]
        cluster.spawn(
            f"worker-{i}",
            "worker",
            "--slots",
            "1",
            "--id",
            f"local-{i}",
            "--exit-with-parent",
            str(os.getpid()),
            *label_args,
        )
    return cluster
