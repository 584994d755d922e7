"""The sound of each alert tier, as plain data (`TONES`), rendered to samples (`render`), to a
16-bit mono WAV (`wav_bytes`) and to a folder of WAV files (`write_tones`, the only I/O here).

- system-critical: 880 → 1046.5 → 1318.5 Hz, rising, in pulses that get shorter (~1.2 s)
- critical: 880 / 440 Hz alternating pulses (~1 s)
- warning: 660 then 330 Hz, decaying moderately (~0.8 s)
- info: 523.25 Hz (C5), decaying quickly (~0.3 s)
"""

from __future__ import annotations

import io
import math
import os
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tui.alerts.tiers import TIERS, Tier

RATE = 22050
RAMP_SECONDS = 0.005  # attack and release: long enough not to click, short enough to stay crisp


@dataclass(frozen=True, slots=True)
class Pulse:
    """One sine burst: `frequency` in Hz, `start` and `length` in seconds from the tone's start,
    `decay` the exponential decay rate per second of its envelope (0: steady), `level` its
    starting amplitude (1: full volume)."""

    frequency: float
    start: float
    length: float
    decay: float = 0.0
    level: float = 1.0

    @property
    def end(self) -> float:
        return self.start + self.length


@dataclass(frozen=True, slots=True)
class Tone:
    """A tier's sound: its pulses, which do not overlap."""

    pulses: tuple[Pulse, ...]

    @property
    def duration(self) -> float:
        return max(p.end for p in self.pulses)


def _accelerating(
    pitches: Sequence[float], count: int, first: float, ratio: float, gap: float
) -> Tone:
    """`count` pulses cycling through `pitches`, each `ratio` times as long as the one before;
    the silence after a pulse is `gap` times its length."""
    pulses = []
    start, length = 0.0, first
    for i in range(count):
        pulses.append(Pulse(pitches[i % len(pitches)], start, length))
        start += length * (1 + gap)
        length *= ratio
    return Tone(tuple(pulses))


def _alternating(pitches: Sequence[float], count: int, length: float, gap: float) -> Tone:
    """`count` pulses of one `length`, cycling through `pitches`, `gap` seconds apart."""
    return Tone(
        tuple(Pulse(pitches[i % len(pitches)], i * (length + gap), length) for i in range(count))
    )


_WARNING_DECAY = 2.0

TONES: dict[Tier, Tone] = {
    "system-critical": _accelerating(
        (880.0, 1046.5, 1318.5), count=9, first=0.2, ratio=0.8, gap=0.4
    ),
    "critical": _alternating((880.0, 440.0), count=8, length=0.1, gap=0.025),
    "warning": Tone(
        (
            Pulse(660.0, 0.0, 0.35, _WARNING_DECAY),
            # The second pulse goes on down the first one's curve, so the whole tone fades.
            Pulse(330.0, 0.4, 0.4, _WARNING_DECAY, level=math.exp(-_WARNING_DECAY * 0.4)),
        )
    ),
    "info": Tone((Pulse(523.25, 0.0, 0.3, 12.0),)),
}


def _ramp(count: int, rate: int) -> np.ndarray:
    """An envelope of `count` samples rising from 0 and falling back to 0 (raised cosine)."""
    edge = min(round(RAMP_SECONDS * rate), count // 2)
    envelope = np.ones(count)
    if edge:
        rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
        envelope[:edge] = rise
        envelope[count - edge :] = rise[::-1]
    return envelope


def render(tone: Tone, rate: int = RATE, volume: float = 1.0) -> np.ndarray:
    """The tone's samples at `rate` Hz, float32 in [-1, 1], its peak at most `volume` (0..1)."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, not {rate}")
    if not 0.0 <= volume <= 1.0:
        raise ValueError(f"volume must be within 0..1, not {volume}")
    spans = [(round(p.start * rate), round(p.length * rate)) for p in tone.pulses]
    samples = np.zeros(max(first + count for first, count in spans), dtype=np.float64)
    for pulse, (first, count) in zip(tone.pulses, spans, strict=True):
        index = np.arange(first, first + count)
        # The phase runs on the tone's clock, not the pulse's: the pulses of one pitch are one
        # steady note, interrupted, and its spectrum peaks exactly on that pitch.
        wave_ = np.sin(2 * np.pi * pulse.frequency * index / rate)
        decay = np.exp(-pulse.decay * np.arange(count) / rate)
        samples[index] += volume * pulse.level * decay * _ramp(count, rate) * wave_
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    """`samples` (floats in [-1, 1]) as a 16-bit mono PCM WAV file at `rate` Hz."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def tone_path(directory: Path, tier: Tier, volume: float) -> Path:
    """Where `write_tones` puts `tier`'s tone at `volume`: `<tier>-<percent>.wav`."""
    return directory / f"{tier}-{round(volume * 100)}.wav"


def write_tones(directory: Path, volume: float, rate: int = RATE) -> dict[Tier, Path]:
    """Each tier's tone at `volume` (0..1, to the percent) as a WAV file in `directory`; a file
    already there is kept, so each volume is rendered once.  Returns the paths by tier."""
    if not 0.0 <= volume <= 1.0:
        raise ValueError(f"volume must be within 0..1, not {volume}")
    directory.mkdir(parents=True, exist_ok=True)
    percent = round(volume * 100)
    paths: dict[Tier, Path] = {}
    for tier in TIERS:
        path = tone_path(directory, tier, volume)
        if not path.exists():
            # Written aside and renamed, so a player never reads half a file.
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
            partial.write_bytes(wav_bytes(render(TONES[tier], rate, percent / 100), rate))
            os.replace(partial, path)
        paths[tier] = path
    return paths
