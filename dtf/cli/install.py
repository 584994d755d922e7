"""`dtf worker install`: write a deployment unit for a worker on this machine, and say how to
install it (`dtf.worker.units` renders them)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from rich.console import Console

from dtf import __version__
from dtf.client.config import load_settings, server_url
from dtf.client.reports import write_atomically
from dtf.errors import ConfigError
from dtf.worker import units


def install(args: argparse.Namespace, console: Console) -> int:
    target = args.install_target
    if target is None:
        raise ConfigError(f"dtf worker install needs --target ({', '.join(units.TARGETS)})")
    if args.slots < 1 or args.cpu_workers < 0 or args.gpu_workers < 0:
        raise ConfigError("--slots must be at least 1, --cpu-workers and --gpu-workers >= 0")
    server = server_url(args.server, load_settings(Path.cwd()))
    if target != "docker" and server is None:
        raise ConfigError("a worker unit needs the fleet's server: --server nats://host:4222")
    spec = units.UnitSpec(
        python=sys.executable,
        server=server or "",
        creds=os.environ.get("DTF_CREDS", ""),  # --creds, checked and made absolute already
        slots=args.slots,
        labels=tuple(args.label),
        cache_dir=str(args.cache_dir.expanduser().resolve()) if args.cache_dir else "",
        tests_python=args.python or "",
        user=args.user,
        run_as="" if args.user else getpass.getuser(),
    )
    out: Path = args.output_dir
    files: dict[str, bytes] = {}
    if target == "systemd":
        files[f"{units.SERVICE_NAME}.service"] = units.systemd(spec).encode()
    elif target == "launchd":
        logs = str(Path.home() / "Library" / "Logs") if args.user else "/Library/Logs"
        files[f"{units.LAUNCHD_LABEL}.plist"] = units.launchd(spec, logs)
    elif target == "windows":
        files[f"install-{units.SERVICE_NAME}.ps1"] = units.windows(spec).encode()
    else:
        files["Dockerfile"] = units.dockerfile(f"dtf=={__version__}").encode()
        files["compose.yaml"] = units.compose(spec, args.cpu_workers, args.gpu_workers).encode()
    for name, data in files.items():
        try:
            write_atomically(out / name, data)
        except OSError as exc:
            raise ConfigError(f"cannot write {out / name}: {exc.strerror or exc}") from None
        console.print(f"wrote {out / name}", markup=False)
    for line in _next_steps(target, out, args.user):
        console.print(line, markup=False)
    return 0


def _next_steps(target: str, out: Path, user: bool) -> list[str]:
    unit = out / f"{units.SERVICE_NAME}.service"
    plist = out / f"{units.LAUNCHD_LABEL}.plist"
    if target == "systemd" and user:
        return [
            "install it for your user (and keep it running after you log out):",
            f"  mkdir -p ~/.config/systemd/user && cp {unit} ~/.config/systemd/user/",
            f"  systemctl --user daemon-reload && systemctl --user enable --now {unit.stem}",
            "  loginctl enable-linger $USER",
        ]
    if target == "systemd":
        return [
            "install it for the system:",
            f"  sudo cp {unit} /etc/systemd/system/",
            f"  sudo systemctl daemon-reload && sudo systemctl enable --now {unit.stem}",
            f"  journalctl -u {unit.stem} -f      # its log",
        ]
    if target == "launchd" and user:
        return [
            "install it for your user:",
            f"  cp {plist} ~/Library/LaunchAgents/",
            f"  launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/{plist.name}",
        ]
    if target == "launchd":
        return [
            "install it for the system:",
            f"  sudo cp {plist} /Library/LaunchDaemons/",
            f"  sudo launchctl bootstrap system /Library/LaunchDaemons/{plist.name}",
        ]
    if target == "windows":
        return [f"run it in an elevated PowerShell: {out / f'install-{units.SERVICE_NAME}.ps1'}"]
    return [
        f"the keys and the fleet are described at the top of {out / 'compose.yaml'}; then:",
        f"  cd {out} && docker compose up -d --build",
    ]
