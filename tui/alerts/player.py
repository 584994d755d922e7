"""Playing an alert tier's tone through whichever audio player the machine has, in the
background, or ringing the terminal bell where it has none."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from tui.alerts.tiers import Tier
from tui.alerts.tones import write_tones

# The first of these found on PATH plays the tones: PulseAudio, PipeWire, ALSA, macOS, ffmpeg.
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("paplay",),
    ("pw-play",),
    ("aplay", "-q"),
    ("afplay",),
    ("ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet"),
)

VOLUME_STEP = 10
DEFAULT_VOLUME = 70


class Player:
    """Owns the audio players it can use (the first one plays), the tone files in its cache
    folder (one set per volume), the sounds still playing (at most one per tier), the volume
    (0..100 percent) and whether it is muted.  `play` never waits for a sound to finish."""

    def __init__(
        self,
        bell: Callable[[], None],
        *,
        commands: Sequence[Sequence[str]] | None = None,
        cache_dir: Path | None = None,
        volume: int = DEFAULT_VOLUME,
        muted: bool = False,
    ) -> None:
        self._bell = bell
        self._owns_cache = cache_dir is None
        self._cache_dir = (
            Path(tempfile.mkdtemp(prefix="dtf-tones-")) if cache_dir is None else cache_dir
        )
        self._players: list[tuple[str, list[str]]] = []
        for command in COMMANDS if commands is None else commands:
            found = shutil.which(command[0]) if command else None
            if found:
                self._players.append((Path(command[0]).name, [found, *command[1:]]))
        self._tones: dict[int, dict[Tier, Path]] = {}
        self._playing: dict[Tier, subprocess.Popen[bytes]] = {}
        self._volume = 0
        self.volume = volume
        self.muted = muted

    @property
    def volume(self) -> int:
        """The volume in percent, 0..100; 0 plays nothing, as muted does."""
        return self._volume

    @volume.setter
    def volume(self, value: int) -> None:
        self._volume = max(0, min(100, int(value)))

    @property
    def cache_dir(self) -> Path:
        """The folder the tone files are written to."""
        return self._cache_dir

    @property
    def command(self) -> str | None:
        """The name of the audio player that plays the tones; None: the terminal bell does."""
        return self._players[0][0] if self._players else None

    def louder(self) -> int:
        """Raise the volume a step (to 100 at most); returns the new volume."""
        self.volume += VOLUME_STEP
        return self.volume

    def quieter(self) -> int:
        """Lower the volume a step (to 0 at least); returns the new volume."""
        self.volume -= VOLUME_STEP
        return self.volume

    def toggle_mute(self) -> bool:
        """Mute, or unmute; returns whether it is muted now."""
        self.muted = not self.muted
        return self.muted

    def play(self, tier: Tier) -> str:
        """Sound `tier`'s alert and return what was done: "muted" (muted, or volume 0),
        "skipped" (that tier's tone is still playing), "played with <player>", or "bell" (no
        audio player, or it failed to start)."""
        if self.muted or self.volume == 0:
            return "muted"
        self._reap()
        if tier in self._playing:
            return "skipped"
        started = self._start(tier) if self._players else None
        if started:
            return f"played with {started}"
        self._bell()
        return "bell"

    def describe(self) -> str:
        """One line for the dashboard: how alerts sound, e.g. "sound: aplay, volume 70%"."""
        if self.command is None:
            where = "sound: terminal bell (no audio player found)"
            return f"{where}, muted" if self.muted or self.volume == 0 else where
        if self.muted or self.volume == 0:
            return f"sound: {self.command}, muted"
        return f"sound: {self.command}, volume {self.volume}%"

    def close(self) -> None:
        """Stop the sounds still playing, and remove the cache folder if this player made it."""
        for process in self._playing.values():
            if process.poll() is None:
                process.terminate()
        for process in self._playing.values():
            try:
                process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._playing.clear()
        if self._owns_cache:
            shutil.rmtree(self._cache_dir, ignore_errors=True)
            self._tones.clear()

    def _start(self, tier: Tier) -> str | None:
        """Start the first player on `tier`'s tone; its name, or None where it did not start."""
        try:
            path = self._tone(tier)
        except OSError:
            return None  # the cache folder is unwritable: the bell still rings
        name, argv = self._players[0]
        try:
            self._playing[tier] = subprocess.Popen(
                [*argv, str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the dashboard's terminal is not for it
            )
        except OSError:
            # A player that cannot start will not start next time either: the next one found
            # (or the bell) takes over from the next alert on.
            self._players.pop(0)
            return None
        return name

    def _tone(self, tier: Tier) -> Path:
        """`tier`'s tone file at the current volume, written with the others on first use."""
        if self.volume not in self._tones:
            self._tones[self.volume] = write_tones(self._cache_dir, self.volume / 100)
        return self._tones[self.volume][tier]

    def _reap(self) -> None:
        """Forget (and reap) the sounds that have finished."""
        for tier, process in list(self._playing.items()):
            if process.poll() is not None:
                del self._playing[tier]
