"""Coverage of `--cov` tasks on a worker: one data file per pytest session, shipped after
each task.

The session's child measures into the data file (`dtf.runner.child.measure`) and saves it
after every batch; after each task the worker puts the whole file, with the checkout it was
measured in, under the session's key in the dtf_coverage object store, and names the key in
the task's result. The data is cumulative, so a later upload under the same key replaces an
earlier one with more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from pathlib import Path

import msgspec

from dtf.errors import StoreError
from dtf.nats.store import EventStore
from dtf.runner.child.measure import COVERAGE_ENV
from events import topology
from events.api import CoverageUpload

log = logging.getLogger(__name__)


class SessionCoverage:
    """The data file of one pytest session that measures coverage, and where it goes."""

    def __init__(self, key: str, root: Path, source: tuple[str, ...]) -> None:
        self.key = key  # `<run>/<worker>/<slot>/<serial>`: one per session
        self.root = root
        self.source = source
        self._directory = Path(tempfile.mkdtemp(prefix="dtf-coverage-"))
        self.data_file = self._directory / ".coverage"

    def env(self) -> dict[str, str]:
        """What the child's environment adds to ask for the measurement."""
        spec = {"data_file": str(self.data_file), "source": [s for s in self.source if s]}
        return {COVERAGE_ENV: json.dumps(spec)}

    async def ship(self, store: EventStore) -> str:
        """Upload the data so far; its key, or "" when there is none yet or the upload failed
        (the run's coverage then lacks this session, which the client says)."""
        try:
            data = await asyncio.to_thread(self.data_file.read_bytes)
        except FileNotFoundError:
            return ""
        upload = msgspec.msgpack.encode(CoverageUpload(str(self.root), data))
        try:
            await store.objects(topology.COVERAGE_BUCKET).put(self.key, upload)
        except StoreError as exc:
            log.warning("coverage of %s not shipped: %s", self.key, exc)
            return ""
        return self.key

    def remove(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)
