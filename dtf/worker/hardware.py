"""What this machine offers: detected with psutil, plus nvidia-smi when it is installed."""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
import sys

import psutil

from events.catalogue import Capabilities, Gpu


def nvidia_gpus() -> tuple[Gpu, ...]:
    """GPUs listed by nvidia-smi; none when it is absent, fails or hangs."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ()
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    gpus = []
    for line in out.splitlines():
        name, _, mem = line.rpartition(",")
        try:
            gpus.append(Gpu("nvidia", name.strip(), round(float(mem) / 1024, 1)))
        except ValueError:
            continue
    return tuple(gpus)


def detect(labels: tuple[str, ...] = (), python: str = "") -> Capabilities:
    """This machine; `python` is the version of the interpreter that runs the tests."""
    return Capabilities(
        platform=sys.platform,
        hostname=socket.gethostname(),
        cpus=psutil.cpu_count(logical=True) or 1,
        memory_gb=round(psutil.virtual_memory().total / 2**30, 1),
        python=python or platform.python_version(),
        gpus=nvidia_gpus(),
        labels=labels,
    )


def load() -> tuple[float, float]:
    """This machine's CPU and memory use now, in percent (CPU since the previous call; the
    first call reads 0).  Cheap enough for every heartbeat."""
    return psutil.cpu_percent(interval=None), psutil.virtual_memory().percent
