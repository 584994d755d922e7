"""Real dtf processes against one server: workers, coordinators and `dtf run`, each logging to
its own file under the test's temp directory, all killed at the end of the test."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.polling import eventually

PY = sys.executable


@dataclass
class Cluster:
    url: str  # one or more comma-separated server URLs
    tmp: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DTF_SERVER": self.url}

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - kept by the child
        proc = subprocess.Popen(
            [PY, "-m", "dtf", "--log-level", "INFO", *args],
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs[name] = proc
        return proc

    def worker(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = self.start(
            name,
            "worker",
            "--id",
            name,
            "--cache-dir",
            str(self.tmp / f"cache-{name}"),
            *args,
            env=env,
        )
        eventually(lambda: "ready" in (self.tmp / f"{name}.log").read_text(), timeout=30)
        return proc

    def run(self, project: Path, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [PY, "-m", "dtf", "run", "--no-progress", *args],
            cwd=project,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    """A project directory `proj` under tmp_path holding `files` (name -> text)."""
    root = tmp_path / "proj"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    return root
