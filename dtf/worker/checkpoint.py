"""Checkpoints of a running task, so a retried attempt resumes instead of starting over.

A command task gets an empty directory in `DTF_CHECKPOINT_DIR`.  Whatever it writes there is
saved to the object store (bucket `dtf_checkpoints`, one object per task) every `interval`
seconds when it changed, and when the task ends; writing a file is the checkpoint call.  The
next attempt of the same task, on whatever worker, starts with the latest saved copy restored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from dtf.bundle import UNLIMITED, extract, pack, walk
from dtf.errors import StoreError
from dtf.nats.store import EventStore
from events import topology

log = logging.getLogger(__name__)
BUCKET = topology.CHECKPOINTS_BUCKET
INTERVAL_S = 1.0


class Checkpoints:
    """Owns the checkpoint bucket: restore, save and forget one task's directory."""

    def __init__(self, store: EventStore) -> None:
        self.bucket = store.objects(BUCKET)
        self.saved: set[str] = set()  # tasks with a checkpoint stored by this process

    @staticmethod
    def name(task_id: str) -> str:
        return task_id.replace(".", "-")

    async def restore(self, task_id: str, dest: Path, attempt: int) -> bool:
        """Extract the task's latest checkpoint into dest (which must not exist yet).

        A first attempt has nothing to resume: no round trip to the object store.
        """
        if attempt <= 1:
            dest.mkdir(parents=True)
            return False
        data = await self.bucket.get(self.name(task_id))
        if data is None:
            dest.mkdir(parents=True)
            return False
        # Not capped like a code bundle: see UNLIMITED.
        await asyncio.to_thread(extract, data, dest, UNLIMITED)
        return True

    async def save(self, task_id: str, directory: Path, last: str = "") -> tuple[str, int]:
        """Save the directory unless it is empty or its content hash equals `last`.

        Returns (hash, bytes saved).
        """
        names = sorted(walk(directory))
        if not names and not last:
            return last, 0  # the task never checkpointed: nothing to save, nothing to hash
        sha, data = await asyncio.to_thread(pack, directory, names, UNLIMITED)
        if sha == last:
            return sha, 0
        await self.bucket.put(self.name(task_id), data)
        return sha, len(data)

    async def forget(self, task_id: str, attempt: int) -> None:
        """Drop a finished task's checkpoint (if one can exist)."""
        if attempt <= 1 and task_id not in self.saved:
            return
        self.saved.discard(task_id)
        await self.bucket.delete(self.name(task_id))

    async def keep_saving(
        self,
        task_id: str,
        directory: Path,
        on_saved: Callable[[int], Awaitable[None]],
        interval: float = INTERVAL_S,
    ) -> None:
        """Save whenever the directory changed, until cancelled (then once more)."""
        names = sorted(walk(directory))  # what was restored is not new
        last = (await asyncio.to_thread(pack, directory, names, UNLIMITED))[0] if names else ""
        try:
            while True:
                await asyncio.sleep(interval)
                last = await self._save_logged(task_id, directory, last, on_saved)
        finally:
            await asyncio.shield(self._save_logged(task_id, directory, last, on_saved))

    async def _save_logged(self, task_id, directory, last, on_saved) -> str:
        try:
            sha, size = await self.save(task_id, directory, last)
        except (StoreError, OSError) as exc:
            log.warning("checkpoint of %s not saved: %s", task_id, exc)
            return last
        if size:
            self.saved.add(task_id)
            await on_saved(size)
        return sha
