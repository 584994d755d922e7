"""`dtf dashboard --serve` opened in headless Chromium: the page shows the overview of a real
coordinator and worker, and a screenshot of it is taken (kept in the test's temp folder)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dtf.nats.server import LocalServer, free_port
from tests.support.browser import CHROMIUM, chromium
from tests.support.cluster import Cluster
from tests.support.polling import eventually

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


async def test_the_served_dashboard_shows_the_overview(
    nats_server: LocalServer, cluster: Cluster, tmp_path: Path
):
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1", "--slots", "2")
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - kept by the child
    command = ["dashboard", "--serve", "--host", "127.0.0.1", "--port", str(port)]
    serve = subprocess.Popen(
        [sys.executable, "-m", "dtf", *command, "--server", nats_server.url],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
        start_new_session=True,  # textual-serve starts one dashboard per tab: stop them all
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        eventually(lambda: answers(url) or serve.poll() is not None, timeout=30)
        assert serve.poll() is None, (tmp_path / "serve.log").read_text()
        async with chromium(tmp_path) as page:
            await page.call("Page.navigate", url=url)
            deadline = time.monotonic() + 60
            text = ""
            while time.monotonic() < deadline:
                text = await page.screen_text()
                if "1 up" in text and "coordinator-" in text:
                    break
                await asyncio.sleep(0.1)
            # The overview: the worker and the coordinator that leads, as the terminal shows.
            assert "1 up" in text and "coordinator-" in text, text
            shot = tmp_path / "overview.png"
            await page.screenshot(shot)
            png = shot.read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    finally:
        os.killpg(serve.pid, signal.SIGKILL)
        serve.wait(timeout=30)
