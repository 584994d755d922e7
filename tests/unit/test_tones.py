"""The alert sounds, checked by rendering them and reading their spectra (never by ear), and
the `Player` that plays them, with real subprocesses standing in for the audio players."""

from __future__ import annotations

import io
import itertools
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.support.polling import eventually
from tui.alerts.player import Player
from tui.alerts.tiers import TIERS, Tier
from tui.alerts.tones import RATE, TONES, Pulse, Tone, render, wav_bytes, write_tones

PITCHES: dict[Tier, set[float]] = {
    "system-critical": {880.0, 1046.5, 1318.5},
    "critical": {880.0, 440.0},
    "warning": {660.0, 330.0},
    "info": {523.0},
}
TOLERANCE_HZ = 2.0


def read_wav(data: bytes) -> tuple[np.ndarray, wave._wave_params]:
    """The samples of a 16-bit WAV as floats in [-1, 1], and its header."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        params = wav.getparams()
        frames = wav.readframes(params.nframes)
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32767, params


def tier_samples(tier: Tier, rate: int = RATE) -> np.ndarray:
    """`tier`'s tone as a player would hear it: rendered, written as a WAV and read back."""
    samples, _ = read_wav(wav_bytes(render(TONES[tier], rate), rate))
    return samples


def spectrum(samples: np.ndarray, rate: int, pad: int = 2**20) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and magnitudes, zero-padded to a resolution of rate/pad Hz."""
    magnitudes = np.abs(np.fft.rfft(samples, n=max(pad, len(samples))))
    return np.fft.rfftfreq(max(pad, len(samples)), 1 / rate), magnitudes


def peaks(samples: np.ndarray, rate: int, count: int, apart: float = 40.0) -> list[float]:
    """The `count` strongest spectral peaks, each at least `apart` Hz from a stronger one."""
    freqs, mags = spectrum(samples, rate)
    mags = mags.copy()
    found = []
    for _ in range(count):
        top = int(np.argmax(mags))
        found.append(float(freqs[top]))
        mags[np.abs(freqs - freqs[top]) < apart] = 0
    return sorted(found)


def dominant(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency in `samples`."""
    return peaks(samples, rate, 1)[0]


def pulses(samples: np.ndarray, rate: int, floor: float = 0.02) -> list[tuple[int, int]]:
    """(first, end) sample indices of the bursts of sound, split where it falls silent."""
    width = max(1, round(0.003 * rate))  # longer than a period of the lowest pitch
    padded = np.pad(np.abs(samples), (width // 2, width - width // 2 - 1))
    envelope = np.lib.stride_tricks.sliding_window_view(padded, width).max(axis=1)
    loud = np.concatenate(([False], envelope > floor, [False]))
    edges = np.flatnonzero(np.diff(loud.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def pulse_pitches(samples: np.ndarray, rate: int) -> list[float]:
    return [dominant(samples[a:b], rate) for a, b in pulses(samples, rate)]


def nearest(frequency: float, choices: set[float]) -> float:
    return min(choices, key=lambda c: abs(c - frequency))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2)))


# --- the tones ---------------------------------------------------------------------------


def test_every_tier_has_a_tone() -> None:
    assert set(TONES) == set(TIERS)
    assert TIERS == ("system-critical", "critical", "warning", "info")


@pytest.mark.parametrize("tier", TIERS)
def test_dominant_frequencies_are_the_specified_ones(tier: Tier) -> None:
    samples = tier_samples(tier)
    expected = sorted(PITCHES[tier])
    found = peaks(samples, RATE, len(expected))
    assert found == pytest.approx(expected, abs=TOLERANCE_HZ)


@pytest.mark.parametrize("tier", TIERS)
def test_the_specified_frequencies_carry_nearly_all_the_energy(tier: Tier) -> None:
    freqs, mags = spectrum(tier_samples(tier), RATE, pad=0)
    near = np.zeros_like(freqs, dtype=bool)
    for pitch in PITCHES[tier]:
        near |= np.abs(freqs - pitch) < 40
    assert np.sum(mags[near] ** 2) / np.sum(mags**2) > 0.9


@pytest.mark.parametrize("tier", TIERS)
def test_samples_are_float32_within_range_and_start_and_end_silent(tier: Tier) -> None:
    samples = render(TONES[tier])
    assert samples.dtype == np.float32
    assert np.all(np.abs(samples) <= 1.0)
    for a, b in pulses(samples, RATE):
        assert abs(samples[a]) < 0.05 and abs(samples[b - 1]) < 0.05


@pytest.mark.parametrize("tier", TIERS)
def test_no_clicks_no_step_steeper_than_the_highest_pitch_allows(tier: Tier) -> None:
    samples = render(TONES[tier]).astype(np.float64)
    steepest = 2 * np.pi * max(PITCHES[tier]) / RATE  # a full-scale sine's largest step
    assert np.max(np.abs(np.diff(samples))) <= steepest * 1.05


def test_system_critical_rises_through_its_pitches_in_ever_shorter_pulses() -> None:
    samples = tier_samples("system-critical")
    bursts = pulses(samples, RATE)
    assert len(bursts) >= 6
    pitches = [nearest(f, PITCHES["system-critical"]) for f in pulse_pitches(samples, RATE)]
    rising = [880.0, 1046.5, 1318.5]
    assert pitches == (rising * len(pitches))[: len(pitches)]
    lengths = [b - a for a, b in bursts]
    assert all(later < earlier for earlier, later in itertools.pairwise(lengths))
    gaps = [c - b for (_, b), (c, _) in itertools.pairwise(bursts)]
    assert all(later < earlier for earlier, later in itertools.pairwise(gaps))
    assert len(samples) / RATE == pytest.approx(1.2, abs=0.15)


def test_system_critical_pitches_rise_in_successive_windows() -> None:
    samples = tier_samples("system-critical")
    first_cycle = samples[: pulses(samples, RATE)[3][0]]  # the first three pulses
    thirds = np.array_split(first_cycle, 3)
    found = [nearest(dominant(w, RATE), PITCHES["system-critical"]) for w in thirds]
    assert found == sorted(found) and len(set(found)) == 3


def test_critical_alternates_880_and_440() -> None:
    samples = tier_samples("critical")
    found = pulse_pitches(samples, RATE)
    assert len(found) >= 4
    for pitch, expected in zip(found, [880.0, 440.0] * len(found), strict=False):
        assert pitch == pytest.approx(expected, abs=15)  # a 0.1 s pulse resolves ~10 Hz
    assert len(samples) / RATE == pytest.approx(1.0, abs=0.1)


def test_warning_falls_from_660_to_330_and_decays() -> None:
    samples = tier_samples("warning")
    halves = np.array_split(samples, 2)
    assert [nearest(dominant(h, RATE), PITCHES["warning"]) for h in halves] == [660.0, 330.0]
    windows = [rms(w) for w in np.array_split(samples, 8)]
    assert windows[-1] < windows[0] * 0.5
    assert windows[3] < windows[0] and windows[-1] < windows[4]
    assert len(samples) / RATE == pytest.approx(0.8, abs=0.1)


def test_info_is_short_and_decays_fast() -> None:
    samples = tier_samples("info")
    assert len(samples) / RATE <= 0.35
    thirds = [rms(w) for w in np.array_split(samples, 3)]
    assert thirds[2] < thirds[0] * 0.2
    assert thirds[1] < thirds[0] * 0.5
    # Faster than the warning: after 0.1 s it has lost more of its level.
    warning = tier_samples("warning")
    tenth = RATE // 10
    ratio = rms(samples[tenth : 2 * tenth]) / rms(samples[:tenth])
    assert ratio < rms(warning[tenth : 2 * tenth]) / rms(warning[:tenth])


def test_the_four_tones_differ() -> None:
    rendered = [render(TONES[tier]) for tier in TIERS]
    for i, a in enumerate(rendered):
        for b in rendered[i + 1 :]:
            assert len(a) != len(b) or not np.allclose(a, b)
    assert len({frozenset(p) for p in PITCHES.values()}) == 4


@pytest.mark.parametrize("tier", TIERS)
def test_volume_scales_the_peak_amplitude(tier: Tier) -> None:
    loud = render(TONES[tier], volume=1.0)
    for volume in (0.7, 0.3):
        quiet = render(TONES[tier], volume=volume)
        assert np.max(np.abs(quiet)) == pytest.approx(volume * np.max(np.abs(loud)), rel=1e-4)
    assert not np.any(render(TONES[tier], volume=0.0))
    wav, _ = read_wav(wav_bytes(render(TONES[tier], volume=0.5)))
    assert np.max(np.abs(wav)) == pytest.approx(0.5 * np.max(np.abs(loud)), abs=1e-3)


def test_render_refuses_a_volume_out_of_range() -> None:
    with pytest.raises(ValueError):
        render(TONES["info"], volume=1.5)


def test_a_tone_is_plain_data() -> None:
    tone = Tone((Pulse(440.0, 0.0, 0.5), Pulse(880.0, 0.5, 0.25, decay=3.0)))
    assert tone.duration == 0.75
    assert len(render(tone, rate=8000)) == 6000
    assert dominant(render(tone, rate=8000)[:4000].astype(np.float64), 8000) == pytest.approx(
        440.0, abs=TOLERANCE_HZ
    )


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_wav_header_is_16_bit_mono_at_the_rate(rate: int) -> None:
    samples = render(TONES["critical"], rate)
    data = wav_bytes(samples, rate)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    _, params = read_wav(data)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, rate)
    assert params.comptype == "NONE"
    assert params.nframes == len(samples)


def test_write_tones_writes_each_volume_once(tmp_path: Path) -> None:
    paths = write_tones(tmp_path / "tones", 0.7)
    assert set(paths) == set(TIERS)
    assert {p.name for p in paths.values()} == {f"{tier}-70.wav" for tier in TIERS}
    stamps = {tier: p.stat().st_mtime_ns for tier, p in paths.items()}
    (tmp_path / "tones" / "critical-70.wav").write_bytes(b"kept")  # a rewrite would undo this
    again = write_tones(tmp_path / "tones", 0.7)
    assert again == paths
    assert again["critical"].read_bytes() == b"kept"
    assert {t: p.stat().st_mtime_ns for t, p in again.items() if t != "critical"} == {
        t: s for t, s in stamps.items() if t != "critical"
    }
    quieter = write_tones(tmp_path / "tones", 0.3)
    assert quieter["warning"].name == "warning-30.wav"
    loud, _ = read_wav(paths["warning"].read_bytes())
    soft, _ = read_wav(quieter["warning"].read_bytes())
    assert np.max(np.abs(soft)) == pytest.approx(np.max(np.abs(loud)) * 3 / 7, rel=1e-2)
    assert not [p for p in (tmp_path / "tones").iterdir() if p.name.startswith(".")]


# --- the player --------------------------------------------------------------------------


class Bell:
    """Counts how often the terminal bell rang."""

    def __init__(self) -> None:
        self.rings = 0

    def __call__(self) -> None:
        self.rings += 1


def recorder(tmp_path: Path, name: str = "recorder", then: str = "") -> tuple[Path, Path]:
    """A stand-in audio player that writes its pid and argv (one a line) to a file, then runs
    `then`; returns the script and the file it writes."""
    record = tmp_path / f"{name}.argv"
    script = tmp_path / name
    script.write_text(
        "#!/bin/sh\n"
        f'{{ echo $$; printf "%s\\n" "$@"; }} > "{record}.partial"\n'
        f'mv "{record}.partial" "{record}"\n'
        f"{then}\n"
    )
    script.chmod(0o755)
    return script, record


@pytest.fixture
def bell() -> Bell:
    return Bell()


def test_plays_the_tiers_wav_with_the_command(tmp_path: Path, bell: Bell) -> None:
    script, record = recorder(tmp_path)
    player = Player(bell, commands=[[str(script), "--quiet"]], cache_dir=tmp_path / "cache")
    try:
        assert player.play("critical") == "played with recorder"
        eventually(record.exists, timeout=10)
        _pid, *argv = record.read_text().splitlines()
        assert argv[0] == "--quiet"
        wav_path = Path(argv[1])
        assert wav_path.name == "critical-70.wav" and wav_path.parent == tmp_path / "cache"
        samples, params = read_wav(wav_path.read_bytes())
        assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, RATE)
        assert peaks(samples, RATE, 2) == pytest.approx([440.0, 880.0], abs=TOLERANCE_HZ)
        assert bell.rings == 0
    finally:
        player.close()


def test_true_counts_as_a_player(tmp_path: Path, bell: Bell) -> None:
    player = Player(bell, commands=[["/bin/true"]], cache_dir=tmp_path)
    try:
        assert player.play("info") == "played with true"
        assert player.describe() == "sound: true, volume 70%"
        assert bell.rings == 0
    finally:
        player.close()


def test_the_first_available_command_plays(tmp_path: Path, bell: Bell) -> None:
    script, record = recorder(tmp_path)
    player = Player(
        bell,
        commands=[[str(tmp_path / "no-such-player")], [str(script)], ["/bin/true"]],
        cache_dir=tmp_path / "cache",
    )
    try:
        assert player.command == "recorder"
        assert player.play("warning") == "played with recorder"
        eventually(record.exists, timeout=10)
    finally:
        player.close()


def test_without_commands_it_rings_the_bell(tmp_path: Path, bell: Bell) -> None:
    player = Player(bell, commands=[], cache_dir=tmp_path)
    assert player.play("system-critical") == "bell"
    assert player.play("system-critical") == "bell"
    assert bell.rings == 2
    assert player.describe() == "sound: terminal bell (no audio player found)"
    assert not list(tmp_path.iterdir())  # no tone was written for nothing to play
    player.close()


def test_a_command_that_does_not_exist_means_the_bell(tmp_path: Path, bell: Bell) -> None:
    player = Player(bell, commands=[["dtf-no-such-audio-player"]], cache_dir=tmp_path)
    assert player.command is None
    assert player.play("critical") == "bell"
    assert bell.rings == 1
    player.close()


def test_a_command_that_fails_to_start_falls_back_to_the_bell(tmp_path: Path, bell: Bell) -> None:
    broken = tmp_path / "broken"
    broken.write_text("not a program\n")  # executable, but no interpreter line: ENOEXEC
    broken.chmod(0o755)
    player = Player(bell, commands=[[str(broken)], ["/bin/true"]], cache_dir=tmp_path / "c")
    try:
        assert player.play("info") == "bell"
        assert bell.rings == 1
        assert player.play("info") == "played with true"  # the next player took over
    finally:
        player.close()


def test_muted_plays_nothing_and_rings_nothing(tmp_path: Path, bell: Bell) -> None:
    script, record = recorder(tmp_path)
    player = Player(bell, commands=[[str(script)]], cache_dir=tmp_path / "cache")
    assert player.toggle_mute() is True
    assert player.play("system-critical") == "muted"
    assert player.describe() == "sound: recorder, muted"
    quiet = Player(bell, commands=[], cache_dir=tmp_path / "quiet", muted=True)
    assert quiet.play("critical") == "muted"
    assert bell.rings == 0
    assert not record.exists()
    assert player.toggle_mute() is False
    assert player.play("info") == "played with recorder"
    player.close()


def test_volume_zero_counts_as_muted(tmp_path: Path, bell: Bell) -> None:
    player = Player(bell, commands=[], cache_dir=tmp_path, volume=0)
    assert player.play("critical") == "muted"
    assert bell.rings == 0
    assert player.describe() == "sound: terminal bell (no audio player found), muted"
    assert player.louder() == 10
    assert player.play("critical") == "bell"


def test_louder_and_quieter_step_by_ten_and_clamp(tmp_path: Path, bell: Bell) -> None:
    player = Player(bell, commands=[], cache_dir=tmp_path)
    assert player.volume == 70
    assert [player.louder() for _ in range(5)] == [80, 90, 100, 100, 100]
    assert [player.quieter() for _ in range(12)] == [90, 80, 70, 60, 50, 40, 30, 20, 10, 0, 0, 0]
    player.volume = 250
    assert player.volume == 100


def test_the_volume_picks_the_tone_file(tmp_path: Path, bell: Bell) -> None:
    script, record = recorder(tmp_path)
    player = Player(bell, commands=[[str(script)]], cache_dir=tmp_path / "cache")
    try:
        player.quieter()
        assert player.play("warning") == "played with recorder"
        eventually(record.exists, timeout=10)
        assert Path(record.read_text().splitlines()[-1]).name == "warning-60.wav"
    finally:
        player.close()


def test_one_sound_per_tier_at_a_time_and_close_stops_them(tmp_path: Path, bell: Bell) -> None:
    script, record = recorder(tmp_path, then="exec sleep 30")
    player = Player(bell, commands=[[str(script)]], cache_dir=tmp_path / "cache")
    try:
        assert player.play("critical") == "played with recorder"
        eventually(record.exists, timeout=10)
        pid = int(record.read_text().splitlines()[0])
        assert player.play("critical") == "skipped"
        record.unlink()
        assert player.play("warning") == "played with recorder"  # another tier may sound
        eventually(record.exists, timeout=10)
        other = int(record.read_text().splitlines()[0])
    finally:
        player.close()
    for gone in (pid, other):
        with pytest.raises(ProcessLookupError):
            os.kill(gone, 0)  # terminated and reaped, not left as a zombie
    assert bell.rings == 0


def test_a_finished_sound_lets_its_tier_play_again(tmp_path: Path, bell: Bell) -> None:
    player = Player(bell, commands=[["/bin/true"]], cache_dir=tmp_path)
    try:
        assert player.play("info") == "played with true"
        eventually(lambda: player.play("info") == "played with true", timeout=10)
    finally:
        player.close()


def test_the_default_cache_folder_is_made_and_removed(bell: Bell) -> None:
    player = Player(bell, commands=[["/bin/true"]])
    try:
        assert player.play("info") == "played with true"
        folder = player.cache_dir
        assert folder.name.startswith("dtf-tones-")
        assert (folder / "info-70.wav").is_file()
    finally:
        player.close()
    assert not folder.exists()
