"""Headless Chromium driven over the DevTools protocol, for pages that draw a terminal.

textual-serve draws the app with xterm.js onto a canvas, so the page has no text to read.
Before the page's scripts run, `TERMINAL_HOOK` catches the `Terminal` object the page keeps
in a field named `terminal`; the screen is then read through xterm.js's public buffer API.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp

from dtf.nats.server import free_port

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
)

TERMINAL_HOOK = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    if (value && value.buffer) window.__dtfTerminal = value;
    Object.defineProperty(this, "terminal",
      {value, writable: true, configurable: true, enumerable: true});
  },
});
"""

SCREEN_TEXT = """
(() => {
  const term = window.__dtfTerminal;
  if (!term) return "";
  const buffer = term.buffer.active, lines = [];
  for (let y = 0; y < term.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    lines.push(line ? line.translateToString(true) : "");
  }
  return lines.join("\\n");
})()
"""


class Page:
    """One tab: navigate, evaluate, screenshot."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        await self._ws.send_json({"id": msg_id, "method": method, "params": params})
        async for message in self._ws:
            reply = json.loads(message.data)
            if reply.get("id") != msg_id:
                continue  # an event of a domain we enabled
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply.get("result", {})
        raise RuntimeError("the browser closed the connection")

    async def screen_text(self) -> str:
        result = await self.call("Runtime.evaluate", expression=SCREEN_TEXT, returnByValue=True)
        return result["result"].get("value", "")

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


@asynccontextmanager
async def chromium(tmp: Path, size: tuple[int, int] = (1280, 800)) -> AsyncIterator[Page]:
    """A headless Chromium with its own profile under `tmp`, killed with its children."""
    assert CHROMIUM is not None
    port = free_port()
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp / 'profile'}",
            f"--window-size={size[0]},{size[1]}",
            "--remote-debugging-address=127.0.0.1",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "chromium.log", "wb"),  # noqa: SIM115 - kept by the child
        start_new_session=True,
    )
    try:
        async with aiohttp.ClientSession() as http:
            targets = await _targets(http, port, proc)
            page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(page_url, max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Page.enable")
                await page.call("Page.addScriptToEvaluateOnNewDocument", source=TERMINAL_HOOK)
                yield page
    finally:
        _kill_group(proc)


async def _targets(http: aiohttp.ClientSession, port: int, proc: subprocess.Popen) -> list:
    """The browser's tabs, once its DevTools endpoint answers (30 s at most)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        try:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as reply:
                return await reply.json()
        except aiohttp.ClientError as exc:
            if proc.poll() is not None or loop.time() > deadline:
                raise RuntimeError(
                    f"chromium gave no DevTools endpoint (exit {proc.poll()})"
                ) from exc
            await asyncio.sleep(0.1)


def _kill_group(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
