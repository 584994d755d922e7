"""Deployment units for a worker that outlives logins and reboots: `dtf worker install`.

One `UnitSpec` (the worker's command line and environment) rendered as a systemd unit, a
launchd property list, a Windows service script (NSSM wraps the interpreter as a service,
`sc.exe` sets the failure actions) or a Dockerfile with a compose file for a whole small fleet.

Every target stops the worker the way it drains: systemd sends SIGTERM to the main process only
(`KillMode=mixed`) and waits `drain_s` before SIGKILL to the rest; launchd sends SIGTERM and
waits `ExitTimeOut`; compose waits `stop_grace_period`; NSSM sends Ctrl-C and waits.
Pure: text in, text out.
"""

from __future__ import annotations

import json
import plistlib
import re
from dataclasses import dataclass, field
from typing import Any

TARGETS = ("systemd", "launchd", "windows", "docker")
SERVICE_NAME = "dtf-worker"
LAUNCHD_LABEL = "io.dtf.worker"
# A drain waits for the running tasks: the default task timeout and a margin to report.
DEFAULT_DRAIN_S = 630


@dataclass(frozen=True, slots=True)
class UnitSpec:
    python: str  # the interpreter dtf is installed in (absolute)
    server: str  # nats://host:4222 (one or more, comma-separated)
    tests_python: str = ""  # the interpreter of the tests, the worker's --python (default: dtf's)
    creds: str = ""  # the worker's key file (absolute), handed over in $DTF_CREDS
    slots: int = 1
    labels: tuple[str, ...] = ()
    cache_dir: str = ""
    user: bool = False  # a per-user unit (systemd --user, a LaunchAgent) instead of the system's
    run_as: str = ""  # the account a system unit runs as
    drain_s: int = DEFAULT_DRAIN_S
    extra_env: dict[str, str] = field(default_factory=dict)

    def argv(self) -> list[str]:
        """`python -m dtf worker ...` as the unit runs it."""
        args = [self.python, "-m", "dtf", "worker", "--server", self.server]
        args += ["--slots", str(self.slots)]
        for label in self.labels:
            args += ["--label", label]
        if self.cache_dir:
            args += ["--cache-dir", self.cache_dir]
        if self.tests_python:
            args += ["--python", self.tests_python]
        return args

    def environment(self) -> dict[str, str]:
        # INFO: the service's log (journal, launchd's file, NSSM's) says when it is ready,
        # which tasks it runs and why it stopped.
        env = {"PYTHONUNBUFFERED": "1", "DTF_LOG_LEVEL": "INFO", **self.extra_env}
        if self.creds:
            env["DTF_CREDS"] = self.creds
        return env


# --- systemd ----------------------------------------------------------------------------


def systemd(spec: UnitSpec) -> str:
    """A unit file: restarted after a crash (not after a drain's clean exit), SIGTERM to the
    worker alone so that it drains, limits on files and tasks, no privilege escalation."""
    env_lines = [f"Environment={_systemd_quote(f'{k}={v}')}" for k, v in spec.environment().items()]
    service = [
        "Type=exec",
        f"ExecStart={' '.join(_systemd_quote(a) for a in spec.argv())}",
        *env_lines,
        *([f"User={spec.run_as}"] if spec.run_as and not spec.user else []),
        # A crash or a lost server brings it back; `dtf worker drain` (exit 0) does not.
        "Restart=on-failure",
        "RestartSec=5",
        # SIGTERM to the worker only: it stops taking tasks and finishes the running ones;
        # what is left after the drain gets SIGKILL, children included.
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={spec.drain_s}",
        "LimitNOFILE=65536",
        "TasksMax=8192",
        "NoNewPrivileges=yes",
    ]
    return "\n".join(
        [
            "# dtf worker: written by `dtf worker install --target systemd`.",
            "# Install: see the lines printed with it, or docs/deploy.md.",
            "[Unit]",
            "Description=dtf worker (distributed tests and benchmarks)",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            *service,
            "",
            "[Install]",
            f"WantedBy={'default.target' if spec.user else 'multi-user.target'}",
            "",
        ]
    )


def _systemd_quote(arg: str) -> str:
    """One word of ExecStart or Environment: `%` and `$` doubled (systemd expands both), and
    double quotes around anything with spaces, quotes or backslashes."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if text and not re.search(r'[\s"\'\\;]', text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- launchd ----------------------------------------------------------------------------


def launchd(spec: UnitSpec, log_dir: str) -> bytes:
    """A property list: started at load, kept alive unless it exited cleanly (a drain),
    SIGTERM with `drain_s` to finish before SIGKILL, output in `log_dir`."""
    plist = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": spec.argv(),
        "EnvironmentVariables": spec.environment(),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 5,
        "ExitTimeOut": spec.drain_s,
        "ProcessType": "Background",
        "StandardOutPath": f"{log_dir}/dtf-worker.log",
        "StandardErrorPath": f"{log_dir}/dtf-worker.log",
    }
    if spec.run_as and not spec.user:
        plist["UserName"] = spec.run_as
    return plistlib.dumps(plist, sort_keys=False)


# --- Windows ----------------------------------------------------------------------------


def windows(spec: UnitSpec) -> str:
    """A PowerShell script (run as Administrator) that installs the worker as a service with
    NSSM, which Windows' service manager needs around an interpreter, and sets its restart
    policy with sc.exe."""
    python, *args = spec.argv()
    env = " ".join(_ps_quote(f"{k}={v}") for k, v in spec.environment().items())
    return "\n".join(
        [
            "# dtf worker as a Windows service: written by `dtf worker install --target windows`.",
            "# Run in an elevated PowerShell. Needs NSSM (https://nssm.cc, `winget install nssm`).",
            '$ErrorActionPreference = "Stop"',
            f"$Name = {_ps_quote(SERVICE_NAME)}",
            f"$Python = {_ps_quote(python)}",
            f"$Arguments = @({', '.join(_ps_quote(a) for a in args)})",
            "$Nssm = (Get-Command nssm.exe -ErrorAction SilentlyContinue).Source",
            "if (-not $Nssm) { throw 'nssm.exe is not on PATH: winget install nssm, then run this "
            "again' }",
            '$Logs = Join-Path $env:ProgramData "dtf"',
            "New-Item -ItemType Directory -Force -Path $Logs | Out-Null",
            "& $Nssm install $Name $Python @Arguments",
            f"& $Nssm set $Name AppEnvironmentExtra {env}",
            "# Stopping sends Ctrl-C, which makes the worker drain; it gets this long (ms).",
            f"& $Nssm set $Name AppStopMethodConsole {spec.drain_s * 1000}",
            '& $Nssm set $Name AppStdout (Join-Path $Logs "worker.log")',
            '& $Nssm set $Name AppStderr (Join-Path $Logs "worker.log")',
            "& $Nssm set $Name Start SERVICE_AUTO_START",
            "# Restart after a crash: 5 s, 5 s, then a minute; the count resets after a day.",
            "sc.exe failure $Name reset= 86400 actions= restart/5000/restart/5000/restart/60000",
            "Start-Service $Name",
            'Write-Host "dtf worker installed and started as service $Name; logs in $Logs"',
            "",
        ]
    )


def _ps_quote(text: str) -> str:
    """A PowerShell single-quoted string: nothing in it is expanded; `'` is doubled."""
    return "'" + text.replace("'", "''") + "'"


# --- Docker -----------------------------------------------------------------------------


def dockerfile(package: str) -> str:
    return "\n".join(
        [
            "# dtf in a container: written by `dtf worker install --target docker`.",
            "# DTF_PACKAGE is what pip installs: a version from your index, a wheel copied into",
            "# the build context, or a git URL. Add the tests' own dependencies below it.",
            "FROM python:3.12-slim",
            f'ARG DTF_PACKAGE="{package}"',
            'RUN pip install --no-cache-dir "$DTF_PACKAGE"',
            "# RUN pip install --no-cache-dir -r requirements.txt",
            "ENV PYTHONUNBUFFERED=1",
            'ENTRYPOINT ["python", "-m", "dtf"]',
            "",
        ]
    )


def compose(spec: UnitSpec, cpu_workers: int, gpu_workers: int) -> str:
    """A compose file: a dtf server with authorization (keys in ./keys), a coordinator,
    `cpu_workers` CPU workers and `gpu_workers` workers with one NVIDIA GPU reserved each.

    Each worker has a key of its own (a worker key is for the worker of that id):
    `dtf auth add worker worker-1`, ... (docs/deploy.md)."""
    server = "nats://server:4222"
    common = {
        "build": ".",
        "image": "dtf:local",
        "restart": "unless-stopped",
        "volumes": ["./keys:/keys:ro"],
    }
    services: dict[str, dict[str, Any]] = {
        "server": {
            **common,
            "command": ["server", "--host", "0.0.0.0", "--auth", "/keys", "--store", "/data"],
            "ports": ["4222:4222"],
            "volumes": ["./keys:/keys:ro", "dtf-store:/data"],
        },
        "coordinator": {
            **common,
            "command": ["coordinator", "--server", server],
            "environment": {"DTF_CREDS": "/keys/coordinator.nk"},
            "depends_on": ["server"],
        },
    }
    names = [f"worker-{n}" for n in range(1, cpu_workers + 1)]
    names += [f"gpu-worker-{n}" for n in range(1, gpu_workers + 1)]
    for name in names:
        command = ["worker", "--server", server, "--slots", str(spec.slots)]
        command += [a for label in spec.labels for a in ("--label", label)]
        if name.startswith("gpu-"):
            command += ["--label", "gpu"]
        worker: dict[str, Any] = {
            **common,
            "command": command,
            "environment": {"DTF_CREDS": f"/keys/{name}.nk"},
            "depends_on": ["server"],
            # A drain finishes the running tasks before the container goes.
            "stop_grace_period": f"{spec.drain_s}s",
        }
        if name.startswith("gpu-"):
            worker["deploy"] = {
                "resources": {
                    "reservations": {
                        "devices": [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
                    }
                }
            }
        services[name] = worker
    doc = {"name": "dtf", "services": services, "volumes": {"dtf-store": {}}}
    header = [
        "# A small dtf fleet: written by `dtf worker install --target docker`.",
        "# Keys first, in ./keys: dtf auth init --dir keys, then one worker key per worker:",
        *(f"#   dtf auth add worker {name} --dir keys" for name in names),
        "# then: docker compose up -d --build",
    ]
    return "\n".join(header) + "\n" + _yaml(doc) + "\n"


def _yaml(value: object, indent: int = 0) -> str:
    """Block-style YAML of dicts, lists and scalars; strings written as JSON strings (valid
    YAML scalars), so that nothing in them is read as YAML syntax."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for key, item in value.items():
            nested = isinstance(item, dict) or (
                isinstance(item, list) and any(isinstance(v, dict | list) for v in item)
            )
            if nested and item:
                lines.append(f"{pad}{key}:\n{_yaml(item, indent + 1)}")
            else:
                lines.append(f"{pad}{key}: {_yaml(item, 0)}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        if all(not isinstance(v, dict | list) for v in value):
            return f"{pad}[{', '.join(_yaml(v) for v in value)}]"
        out = []
        for item in value:
            body = _yaml(item, indent + 1).lstrip()
            out.append(f"{pad}- {body}")
        return "\n".join(out)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(str(value))
