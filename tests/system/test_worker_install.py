"""`dtf worker install`: every target's artefacts validated as their tools would (systemd's
own verifier, a property-list parser, the compose specification's schema), the systemd
unit's command line run for real against a server and stopped the way systemd stops it, and
the docker fleet's key commands run as written."""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dtf.nats.server import LocalServer
from tests.support.polling import eventually

DTF = [sys.executable, "-m", "dtf"]


def install(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DTF_SERVER", "DTF_CREDS")}
    return subprocess.run(
        [*DTF, "worker", "install", "--output-dir", str(tmp_path / "out"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def unit_lines(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_systemd_unit_verifies_and_its_command_runs_and_drains(
    nats_server: LocalServer, tmp_path: Path
) -> None:
    cache = tmp_path / "cache dir"  # a space: ExecStart must quote it
    done = install(
        tmp_path, "--target", "systemd", "--server", nats_server.url, "--slots", "2",
        "--label", "fast", "--cache-dir", str(cache),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    unit = tmp_path / "out" / "dtf-worker.service"
    assert f"wrote {unit}" in done.stdout
    assert "systemctl daemon-reload" in done.stdout
    text = unit.read_text()
    keys = unit_lines(text)
    assert keys["KillMode"] == ["mixed"] and keys["KillSignal"] == ["SIGTERM"]
    assert keys["Restart"] == ["on-failure"] and keys["TimeoutStopSec"] == ["630"]
    assert keys["WantedBy"] == ["multi-user.target"]
    if shutil.which("systemd-analyze"):
        verified = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
        )
        assert verified.returncode == 0, verified.stderr
        broken = tmp_path / "broken.service"
        broken.write_text(text.replace(sys.executable, "/no/such/python"))
        refused = subprocess.run(
            ["systemd-analyze", "verify", str(broken)], capture_output=True, text=True
        )
        assert refused.returncode != 0  # the verifier really looks
    # The command line and environment as systemd would run them.
    (exec_start,) = keys["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[argv.index("--cache-dir") + 1] == str(cache)
    env = dict(os.environ)
    for assignment in keys["Environment"]:
        name, _, value = shlex.split(assignment)[0].partition("=")
        env[name] = value
    log = tmp_path / "journal.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        eventually(lambda: "ready with 2 slot(s)" in log.read_text(), timeout=30)
        proc.send_signal(signal.SIGTERM)  # KillMode=mixed: the main process only
        assert proc.wait(timeout=30) == 0, log.read_text()  # drained: no restart
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_systemd_user_unit_with_a_key(tmp_path: Path) -> None:
    made = subprocess.run([*DTF, "auth", "init", "--dir", str(tmp_path / "keys")], timeout=60)
    assert made.returncode == 0
    done = install(tmp_path, "--target", "systemd", "--user", "--server", "nats://h:4222",
                   "--creds", "keys/worker.nk")  # fmt: skip
    assert done.returncode == 0, done.stderr
    keys = unit_lines((tmp_path / "out" / "dtf-worker.service").read_text())
    assert keys["WantedBy"] == ["default.target"] and "User" not in keys
    # The key by its absolute path, so that the unit works from any directory.
    assert f"DTF_CREDS={tmp_path / 'keys' / 'worker.nk'}" in keys["Environment"]
    assert "loginctl enable-linger" in done.stdout


def test_launchd_plist(tmp_path: Path) -> None:
    done = install(tmp_path, "--target", "launchd", "--user", "--server", "nats://h:4222",
                   "--label", "mac")  # fmt: skip
    assert done.returncode == 0, done.stderr
    raw = (tmp_path / "out" / "io.dtf.worker.plist").read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist')
    plist = plistlib.loads(raw)
    assert plist["Label"] == "io.dtf.worker"
    assert plist["ProgramArguments"][:4] == [sys.executable, "-m", "dtf", "worker"]
    assert plist["ProgramArguments"][-2:] == ["--label", "mac"]
    assert plist["KeepAlive"] == {"SuccessfulExit": False} and plist["RunAtLoad"] is True
    assert plist["ExitTimeOut"] == 630 and "UserName" not in plist
    assert plist["StandardOutPath"].endswith("Library/Logs/dtf-worker.log")
    assert "launchctl bootstrap gui/" in done.stdout


def test_windows_script_quotes_every_argument(tmp_path: Path) -> None:
    done = install(tmp_path, "--target", "windows", "--server", "nats://h:4222",
                   "--label", "it's $(danger)")  # fmt: skip
    assert done.returncode == 0, done.stderr
    script = (tmp_path / "out" / "install-dtf-worker.ps1").read_text()
    assert '$ErrorActionPreference = "Stop"' in script
    arguments = re.search(r"^\$Arguments = @\((.*)\)$", script, re.MULTILINE)
    assert arguments
    # Single-quoted (nothing expanded), a quote doubled: PowerShell's literal strings.
    words = re.findall(r"'((?:[^']|'')*)'", arguments[1])
    assert [w.replace("''", "'") for w in words][-2:] == ["--label", "it's $(danger)"]
    assert "& $Nssm install $Name $Python @Arguments" in script
    assert "AppStopMethodConsole 630000" in script
    assert "sc.exe failure $Name reset= 86400 actions= restart/5000" in script
    if shutil.which("pwsh"):
        path = tmp_path / "out" / "install-dtf-worker.ps1"
        parse = f"$null = [ScriptBlock]::Create((Get-Content -Raw '{path}'))"
        parsed = subprocess.run(
            ["pwsh", "-NoProfile", "-Command", parse], capture_output=True, text=True, timeout=60
        )
        assert parsed.returncode == 0, parsed.stderr


def test_docker_compose_follows_the_spec_and_its_keys_exist(tmp_path: Path) -> None:
    done = install(tmp_path, "--target", "docker", "--cpu-workers", "2", "--gpu-workers", "1")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    dockerfile = (out / "Dockerfile").read_text()
    assert dockerfile.splitlines()[3].startswith("FROM python:")
    assert 'ENTRYPOINT ["python", "-m", "dtf"]' in dockerfile
    compose = out / "compose.yaml"

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
             str(path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    valid = check(compose)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        compose.read_text().replace('stop_grace_period: "630s"', "stop_grace_period: [1]")
    )
    assert check(broken).returncode == 1  # the schema really looks
    text = compose.read_text()
    assert 'capabilities: ["gpu"]' in text and text.count("stop_grace_period") == 3
    # The key commands of its header, run as written, give every key the services name.
    keys = out / "keys"
    commands = [["auth", "init", "--dir", str(keys)]]
    for line in re.findall(r"^#   dtf (auth add worker \S+ --dir keys)$", text, re.MULTILINE):
        commands.append([*line.split()[:-1], str(keys)])
    assert len(commands) == 4
    for command in commands:
        ran = subprocess.run([*DTF, *command], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
    named = re.findall(r'DTF_CREDS: "/keys/([^"]+)"', text)
    assert sorted(named) == ["coordinator.nk", "gpu-worker-1.nk", "worker-1.nk", "worker-2.nk"]
    assert all((keys / name).is_file() for name in named)
    assert (keys / "admin.nk").is_file()  # `dtf server --auth` sets the streams up with it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "dtf worker install needs --target"),
        (["--target", "systemd"], "a worker unit needs the fleet's server"),
        (["--target", "docker", "--gpu-workers", "-1"], "--cpu-workers and --gpu-workers >= 0"),
    ],
)
def test_install_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = install(tmp_path, *args)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("dtf: error: ") and message in line, line
