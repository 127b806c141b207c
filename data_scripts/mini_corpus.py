"""Build the embedded mini corpus: espeak speech (LJSpeech layout) and synthetic noise (ESC-50 layout).

The book's ``reduced`` profile runs on this corpus instead of the real LJ Speech 1.1 and
ESC-50 archives. It is generated locally, deterministically from a seed, in exactly
the layouts of the real corpora, so every reader in ``synthsep_lib`` works on both:

* ``<dest>/LJSpeech-1.1/``: ``metadata.csv`` (``id|transcription|normalized``, no header)
  and ``wavs/LJ0NN-NNNN.wav`` (22050 Hz, 16-bit PCM, mono), spoken by espeak-ng with
  several English voice variants, speaking rates and pitches;
* ``<dest>/ESC-50-master/``: ``meta/esc50.csv`` (the real columns) and
  ``audio/{fold}-{clip}-{take}-{target}.wav`` (44.1 kHz, 16-bit PCM, mono, 220500 samples),
  procedurally generated sounds for the 20 categories the paper uses (targets 10–19 and
  40–49), a few clips of other categories, and a few paper-category clips whose sound
  lasts under 4.5 s followed or preceded by exact digital silence, so that the paper's
  selection rule (first-to-last non-zero sample span after resampling to 22050 Hz
  > 4.5 s) has something to reject;
* ``<dest>/BUILD_INFO.json``: the stamp, written last, with the build parameters and the
  size of every file (``files``), checked before a build is reused.

The same seed gives byte-identical files. espeak-ng keeps hidden state between
utterances inside its shared library (e.g. the pitch-flutter phase), so each utterance
is synthesised in a fresh worker process started from a clean fork server.

Command line::

    python -m data_scripts.mini_corpus --dest data/mini [--utterances 150] [--seed 2019]
        [--clips-per-category 2] [--force]
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy import interpolate, signal

__all__ = [
    "FORMAT_VERSION",
    "ESC50_CATEGORIES",
    "ESC10_TARGETS",
    "PAPER_TARGETS",
    "OTHER_TARGETS",
    "VOICES",
    "build_mini_corpus",
    "load_sentences",
    "main",
]

FORMAT_VERSION = 1
STAMP_NAME = "BUILD_INFO.json"
LJ_DIRNAME = "LJSpeech-1.1"
ESC_DIRNAME = "ESC-50-master"

SPEECH_SR = 22050
ESC_SR = 44100
ESC_SAMPLES = 220500  # 5 s at 44.1 kHz, as in the real ESC-50
SENTENCES_PATH = Path(__file__).with_name("sentences.txt")

# espeak-ng voices: a language plus a variant from espeak-ng-data/voices/!v.
VOICES = (
    "en-us",
    "en-us+f1",
    "en-us+f2",
    "en-us+f3",
    "en-us+f4",
    "en-us+m1",
    "en-us+m3",
    "en-us+m6",
    "en+f3",
    "en+m2",
)
RATE_WPM = (140, 200)  # inclusive ranges drawn per utterance
PITCH = (30, 70)
PITCH_RANGE = (40, 80)
LEAD_SILENCE_S = (0.10, 0.30)
TAIL_SILENCE_S = (0.15, 0.35)
SPEECH_PEAK = (0.55, 0.90)
SPEECH_NOISE_FLOOR = 3.0  # std of the added noise floor, in 16-bit steps
DURATION_S = (1.0, 7.0)
UTTERANCES_PER_CHAPTER = 50  # ids LJ001-0001 … LJ001-0050, LJ002-0001, …
MAX_ATTEMPTS = 4

ESC50_CATEGORIES = tuple(
    "dog rooster pig cow frog cat hen insects sheep crow "
    "rain sea_waves crackling_fire crickets chirping_birds water_drops wind pouring_water "
    "toilet_flush thunderstorm "
    "crying_baby sneezing clapping breathing coughing footsteps laughing brushing_teeth "
    "snoring drinking_sipping "
    "door_wood_knock mouse_click keyboard_typing door_wood_creaks can_opening washing_machine "
    "vacuum_cleaner clock_alarm clock_tick glass_breaking "
    "helicopter chainsaw siren car_horn engine train church_bells airplane fireworks hand_saw".split()
)
"""The 50 ESC-50 category names, indexed by target (as in ``meta/esc50.csv``)."""
ESC10_TARGETS = frozenset({0, 1, 10, 11, 12, 20, 21, 38, 40, 41})
PAPER_TARGETS = tuple(range(10, 20)) + tuple(range(40, 50))
OTHER_TARGETS = (0, 20, 32, 36, 38)  # dog, crying_baby, keyboard_typing, vacuum_cleaner, clock_tick
N_SHORT_CLIPS = 4
SHORT_ACTIVE_S = (1.5, 3.8)  # active part of the short clips (< 4.5 s)
ESC_PEAK = (0.3, 0.9)
ESC_NOISE_FLOOR = 6.0  # std in 16-bit steps: no exact-zero runs in normal clips
ESC_HEADER = ("filename", "fold", "target", "category", "esc10", "src_file", "take")

_EXPECTED_ENTRIES = {LJ_DIRNAME, ESC_DIRNAME, STAMP_NAME}


# --------------------------------------------------------------------------------------
# Sentences and the plan
# --------------------------------------------------------------------------------------
def load_sentences(path: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """Read the sentence list: one ``transcription|normalized`` pair per line.

    Parameters
    ----------
    path : path-like, optional
        Text file (UTF-8); default: ``data_scripts/sentences.txt``. Empty lines and lines
        starting with ``#`` are ignored; a line without ``|`` uses the same text twice.

    Returns
    -------
    list of (str, str)
        ``(transcription, normalized transcription)`` in file order.

    Raises
    ------
    ValueError
        If a line has more than one ``|`` or the file holds no sentence.
    """
    path = Path(path) if path is not None else SENTENCES_PATH
    pairs = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) > 2 or not all(parts):
            raise ValueError(f"{path}:{lineno}: expected 'transcription|normalized', got {raw!r}")
        pairs.append((parts[0], parts[-1]))
    if not pairs:
        raise ValueError(f"{path} holds no sentence")
    return pairs


def _utterance_id(i: int) -> str:
    chapter, index = divmod(i, UTTERANCES_PER_CHAPTER)
    return f"LJ{chapter + 1:03d}-{index + 1:04d}"


def _speech_jobs(n: int, seed: int, root: Path) -> list[dict[str, Any]]:
    """One job per utterance: sentence candidates, voice and prosody, all from the seed."""
    sentences = load_sentences()
    rng = np.random.default_rng(seed)
    order = np.concatenate(
        [rng.permutation(len(sentences)) for _ in range(-(-n // len(sentences)))]
    )
    jobs = []
    for i in range(n):
        r = np.random.default_rng([seed, 1, i])
        first = int(order[i])
        # Fallback sentences (used only if the first lands outside 1–7 s): deterministic.
        others = r.choice(len(sentences), size=MAX_ATTEMPTS - 1, replace=False)
        candidates = [sentences[first]] + [sentences[int(k)] for k in others]
        uid = _utterance_id(i)
        jobs.append(
            {
                "kind": "speech",
                "id": uid,
                "path": str(root / "wavs" / f"{uid}.wav"),
                "candidates": candidates,
                "voice": VOICES[int(r.integers(len(VOICES)))],
                "rate": int(r.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
                "pitch": int(r.integers(PITCH[0], PITCH[1] + 1)),
                "pitch_range": int(r.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
                "lead": float(r.uniform(*LEAD_SILENCE_S)),
                "tail": float(r.uniform(*TAIL_SILENCE_S)),
                "peak": float(r.uniform(*SPEECH_PEAK)),
                "espeak_seed": int(r.integers(1, 2**31 - 1)),
                "noise_seed": [seed, 2, i],
            }
        )
    return jobs


def _esc_jobs(seed: int, clips_per_category: int, root: Path) -> list[dict[str, Any]]:
    """One job per clip: category, fold, Freesound-like clip id, level, short or not."""
    rng = np.random.default_rng([seed, 3])
    specs = [(t, False) for t in PAPER_TARGETS for _ in range(clips_per_category)]
    specs += [(t, False) for t in OTHER_TARGETS]
    short_targets = rng.choice(PAPER_TARGETS, size=N_SHORT_CLIPS, replace=False)
    specs += [(int(t), True) for t in short_targets]
    clip_ids = rng.choice(np.arange(10_000, 300_000), size=len(specs), replace=False)
    jobs = []
    for j, ((target, short), clip_id) in enumerate(zip(specs, clip_ids, strict=True)):
        fold = j % 5 + 1
        name = f"{fold}-{int(clip_id)}-A-{target}.wav"
        jobs.append(
            {
                "kind": "clip",
                "filename": name,
                "path": str(root / "audio" / name),
                "fold": fold,
                "target": int(target),
                "category": ESC50_CATEGORIES[target],
                "esc10": target in ESC10_TARGETS,
                "src_file": int(clip_id),
                "take": "A",
                "short": short,
                "rng": [seed, 4, j],
            }
        )
    return jobs


# --------------------------------------------------------------------------------------
# Speech (runs in a fresh worker process per utterance)
# --------------------------------------------------------------------------------------
def _synth_utterance(job: dict[str, Any]) -> dict[str, Any]:
    from data_scripts.espeak import get_synth

    synth = get_synth()
    durations = []
    for transcription, normalized in job["candidates"]:
        raw = synth.synthesize(
            normalized,
            voice=job["voice"],
            rate=job["rate"],
            pitch=job["pitch"],
            pitch_range=job["pitch_range"],
            seed=job["espeak_seed"],
        )
        x = raw.astype(np.float64) / 32768.0
        if synth.sample_rate != SPEECH_SR:
            import librosa

            x = librosa.resample(x, orig_sr=synth.sample_rate, target_sr=SPEECH_SR)
        nz = np.flatnonzero(np.abs(x) > 1e-4)
        if nz.size == 0:
            durations.append(0.0)
            continue
        x = x[nz[0] : nz[-1] + 1]
        fade = min(len(x), int(0.01 * SPEECH_SR))  # espeak can stop mid-waveform
        x[len(x) - fade :] *= np.cos(np.linspace(0, np.pi / 2, fade)) ** 2
        x *= job["peak"] / np.max(np.abs(x))
        lead, tail = int(job["lead"] * SPEECH_SR), int(job["tail"] * SPEECH_SR)
        x = np.concatenate([np.zeros(lead), x, np.zeros(tail)])
        duration = len(x) / SPEECH_SR
        durations.append(duration)
        if DURATION_S[0] <= duration <= DURATION_S[1]:
            noise = np.random.default_rng(job["noise_seed"]).normal(0, SPEECH_NOISE_FLOOR, len(x))
            pcm = np.clip(np.round(x * 32767.0 + noise), -32768, 32767).astype(np.int16)
            sf.write(job["path"], pcm, SPEECH_SR, subtype="PCM_16", format="WAV")
            return {
                "id": job["id"],
                "transcription": transcription,
                "normalized": normalized,
                "n_samples": len(pcm),
                "voice": job["voice"],
                "espeak_version": synth.version,
            }
    raise RuntimeError(
        f"utterance {job['id']}: no candidate sentence gave a duration within {DURATION_S} s "
        f"(got {[round(d, 2) for d in durations]}); check {SENTENCES_PATH}"
    )


# --------------------------------------------------------------------------------------
# Procedural environmental sounds
# --------------------------------------------------------------------------------------
def _filt(x: np.ndarray, lo: float | None, hi: float | None, order: int = 4) -> np.ndarray:
    """Butterworth band-, low- or high-pass filter at ``ESC_SR``."""
    if lo and hi:
        sos = signal.butter(order, [lo, hi], "bandpass", fs=ESC_SR, output="sos")
    elif hi:
        sos = signal.butter(order, hi, "lowpass", fs=ESC_SR, output="sos")
    else:
        sos = signal.butter(order, lo, "highpass", fs=ESC_SR, output="sos")
    return signal.sosfilt(sos, x)


def _noise(rng, lo=None, hi=None, n=ESC_SAMPLES):
    """Band-limited white noise, unit RMS."""
    x = _filt(rng.standard_normal(n), lo, hi)
    return x / (np.std(x) + 1e-12)


def _wobble(rng, rate_hz, depth, n=ESC_SAMPLES):
    """Smooth random envelope in [1 - depth, 1] with random knots every ``1 / rate_hz`` s."""
    knots = int(np.ceil(n / ESC_SR * rate_hz)) + 2
    curve = interpolate.PchipInterpolator(np.linspace(0, n, knots), rng.random(knots))
    return 1 - depth + depth * np.clip(curve(np.arange(n)), 0, 1)


def _tone(f0, harmonics=(1.0,), vib_rate=0.0, vib_depth=0.0, n=ESC_SAMPLES):
    """Harmonic tone; ``f0`` is a number or an array of instantaneous frequencies (Hz)."""
    t = np.arange(n) / ESC_SR
    f = np.broadcast_to(np.asarray(f0, dtype=float), (n,)) * (
        1 + vib_depth * np.sin(2 * np.pi * vib_rate * t)
    )
    phase = 2 * np.pi * np.cumsum(f) / ESC_SR
    nyq = ESC_SR / 2
    return sum(a * np.sin(k * phase) * (k * f < nyq) for k, a in enumerate(harmonics, start=1))


def _times(rng, rate_hz, regular=False, jitter=0.0, n=ESC_SAMPLES):
    """Event onsets (s): Poisson with ``rate_hz``, or periodic with relative ``jitter``."""
    dur = n / ESC_SR
    if regular:
        t = np.arange(rng.uniform(0, 1 / rate_hz), dur, 1 / rate_hz)
        return t + rng.normal(0, jitter / rate_hz, len(t))
    return np.sort(rng.uniform(-0.2, dur, rng.poisson(rate_hz * (dur + 0.2))))


def _place(events: Iterable[tuple[float, np.ndarray]], n: int = ESC_SAMPLES) -> np.ndarray:
    """Add each ``(onset_s, waveform)`` into a silent clip, cropping at the ends."""
    out = np.zeros(n)
    for onset, ev in events:
        i = int(round(onset * ESC_SR))
        a, b = max(i, 0), min(i + len(ev), n)
        if b > a:
            out[a:b] += ev[a - i : b - i]
    return out


def _burst(rng, dur, decay, lo=None, hi=None, attack=0.001):
    """Filtered noise burst with a short attack and exponential decay."""
    m = max(int(dur * ESC_SR), 8)
    t = np.arange(m) / ESC_SR
    env = np.minimum(t / attack, 1) * np.exp(-t / decay)
    return _noise(rng, lo, hi, m) * env


def _ping(f_start, f_end, dur, decay, harmonics=(1.0,), attack=0.002):
    """Decaying (gliding) tone: drops, chirps, bird calls, barks."""
    m = int(dur * ESC_SR)
    t = np.arange(m) / ESC_SR
    f = f_start * (f_end / f_start) ** (t / dur)
    env = np.minimum(t / attack, 1) * np.exp(-t / decay) * np.hanning(2 * m)[m:] ** 0.3
    return _tone(f, harmonics, n=m) * env


def _bell(rng, f0, dur=3.0):
    """Church-bell strike: inharmonic partials, the low ones ringing longest."""
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.52, 3.01, 4.16]) * rng.uniform(0.995, 1.005, 8)
    m = int(dur * ESC_SR)
    t = np.arange(m) / ESC_SR
    amps = np.array([0.6, 1.0, 0.7, 0.5, 0.5, 0.3, 0.25, 0.2])
    decays = 1.8 / ratios**0.7
    return sum(
        a * np.sin(2 * np.pi * f0 * r * t) * np.exp(-t / d)
        for a, r, d in zip(amps, ratios, decays, strict=True)
    )


def _gates(rng, on_s, off_s, n=ESC_SAMPLES, ramp=0.02):
    """On/off envelope: segments of length ``on_s`` separated by pauses ``off_s`` (ranges)."""
    env = np.zeros(n)
    t = rng.uniform(0, off_s[1])
    while t < n / ESC_SR:
        on = rng.uniform(*on_s)
        a, b = int(t * ESC_SR), min(int((t + on) * ESC_SR), n)
        env[a:b] = rng.uniform(0.6, 1.0)
        t += on + rng.uniform(*off_s)
    k = max(int(ramp * ESC_SR), 1)
    return np.clip(signal.fftconvolve(env, np.ones(k) / k, mode="same"), 0, 1)


def _clicks(rng, rate_hz, decay, lo, hi, heavy=False, n=ESC_SAMPLES):
    """Train of short band-limited noise clicks (rain drops, crackle, typing)."""
    onsets = _times(rng, rate_hz, n=n)
    amps = rng.pareto(2.5, len(onsets)) + 0.2 if heavy else rng.uniform(0.3, 1.0, len(onsets))
    t = np.arange(int(6 * decay * ESC_SR)) / ESC_SR
    env = np.minimum(t / 0.001, 1) * np.exp(-t / decay)
    clicks = _place(
        ((o, a * env * rng.standard_normal(len(t))) for o, a in zip(onsets, amps, strict=True)), n
    )
    return _filt(clicks, lo, hi)  # one filter for all clicks (linear, same result)


def _rain(rng):
    return _noise(rng, 800, 9000) * _wobble(rng, 0.5, 0.3) + 3 * _clicks(
        rng, 60, 0.004, 1500, 12000
    )


def _swell(rng):
    period = rng.uniform(4.0, 7.0)
    t = np.arange(ESC_SAMPLES) / ESC_SR
    env = (0.5 + 0.5 * np.sin(2 * np.pi * (t / period + rng.random()))) ** 2
    return _noise(rng, 60, 1200) * (0.15 + env) + 0.5 * _noise(rng, 2000, 8000) * env**3


def _thunder(rng):
    booms = _place(
        (t, _burst(rng, 3.0, rng.uniform(0.6, 1.4), 30, 250, attack=0.08))
        for t in rng.uniform(0, 3.5, 2)
    )
    return 0.3 * _rain(rng) / 4 + 4 * booms


def _siren(rng):
    t = np.arange(ESC_SAMPLES) / ESC_SR
    rate = rng.choice([0.25, 3.0])  # wail or yelp
    f = rng.uniform(650, 800) + rng.uniform(300, 500) * (0.5 + 0.5 * np.sin(2 * np.pi * rate * t))
    return _tone(f, (1, 0.4, 0.2, 0.1)) + 0.05 * _noise(rng, 100, 2000)


def _helicopter(rng):
    blades = _place(
        (t, _burst(rng, 0.05, 0.012, 40, 400)) for t in _times(rng, rng.uniform(10, 18), True)
    )
    return blades * _wobble(rng, 0.3, 0.4) + 0.15 * _tone(
        rng.uniform(70, 100), (1, 0.6, 0.4, 0.3, 0.2)
    )


def _chainsaw(rng):
    f0 = rng.uniform(110, 160) * (0.8 + 0.4 * _wobble(rng, 1.0, 1.0))
    saw = _tone(f0, 1 / np.arange(1, 30))
    return saw + 0.6 * _noise(rng, 1000, 6000) * (1 + np.sign(saw)) / 2


def _car_horn(rng):
    f = rng.uniform(380, 440)
    horn = _tone(f, (1, 0.6, 0.5, 0.3, 0.2)) + _tone(f * 1.26, (1, 0.6, 0.5, 0.3, 0.2))
    return horn * _gates(rng, (0.25, 1.2), (0.3, 1.5)) + 0.05 * _noise(rng, 50, 1500)


def _engine(rng):
    f0 = rng.uniform(30, 55) * (0.9 + 0.2 * _wobble(rng, 2.0, 1.0))
    return _tone(f0, 1 / np.arange(1, 40) ** 0.7) + 0.5 * _noise(rng, 30, 800) * _wobble(
        rng, 8, 0.5
    )


def _train(rng):
    period = rng.uniform(0.5, 0.9)
    clacks = _place(
        (t + dt, _burst(rng, 0.1, 0.02, 200, 3000))
        for t in _times(rng, 1 / period, True)
        for dt in (0, 0.12)
    )
    return _noise(rng, 30, 600) * _wobble(rng, 0.5, 0.3) + 2 * clacks


def _bells(rng):
    f0 = rng.uniform(250, 550)
    return _place(
        (t, _bell(rng, f0 * rng.choice([1, 1.122, 1.26])))
        for t in _times(rng, rng.uniform(0.7, 1.1), True)
    )


def _airplane(rng):
    t = np.arange(ESC_SAMPLES) / ESC_SR
    doppler = 1 + 0.06 * np.tanh((t - rng.uniform(1.5, 3.5)) / 0.8)
    swell = np.exp(-(((t - 2.5) / rng.uniform(2, 4)) ** 2))
    return (_noise(rng, 40, 1500) + 0.1 * _tone(rng.uniform(900, 2000) / doppler, (1, 0.3))) * (
        0.3 + swell
    )


def _fireworks(rng):
    onsets = _times(rng, rng.uniform(0.8, 1.5), regular=True, jitter=0.3)
    booms = _place((t, rng.uniform(0.5, 1) * _burst(rng, 1.5, 0.3, 40, 1500)) for t in onsets)
    crackle = _place(
        (t + 0.3, _clicks(rng, 30, 0.003, 1500, 9000, n=int(0.8 * ESC_SR))) for t in onsets
    )
    return 3 * booms + crackle


def _hand_saw(rng):
    t = np.arange(ESC_SAMPLES) / ESC_SR
    strokes = np.abs(np.sin(np.pi * rng.uniform(1.5, 2.5) * t + rng.random())) ** 2
    return _noise(rng, 1200, 7000) * strokes * (1 + 0.5 * np.sin(2 * np.pi * 180 * t))


def _dog(rng):
    barks = (
        (
            t,
            _ping(rng.uniform(500, 700), 350, 0.2, 0.08, (1, 0.8, 0.6, 0.4, 0.3))
            + 0.3 * _burst(rng, 0.2, 0.06, 300, 3000),
        )
        for t in _times(rng, 2.0)
    )
    return _place(barks)


def _crying_baby(rng):
    f0 = rng.uniform(380, 480) * (1 + 0.08 * _wobble(rng, 1.5, 1.0))
    cry = _tone(f0, (1, 0.8, 0.5, 0.4, 0.2, 0.1), vib_rate=6, vib_depth=0.02)
    return _filt(cry, 300, 4000, 2) * _gates(rng, (0.6, 1.4), (0.2, 0.5), ramp=0.08)


RECIPES: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "rain": _rain,
    "sea_waves": _swell,
    "crackling_fire": lambda r: (
        0.3 * _noise(r, 80, 600) + _clicks(r, 15, 0.003, 600, 9000, heavy=True)
    ),
    "crickets": lambda r: (
        _tone(r.uniform(3800, 5000))
        * (_gates(r, (0.15, 0.3), (0.2, 0.5)) * (_tone(r.uniform(25, 40)) > 0))
    ),
    "chirping_birds": lambda r: (
        _place(
            (t, _ping(r.uniform(2500, 5000), r.uniform(1800, 7000), r.uniform(0.05, 0.2), 0.1))
            for t in _times(r, 5)
        )
        + 0.02 * _noise(r, 200, 2000)
    ),
    "water_drops": lambda r: (
        _place(
            (t, _ping(r.uniform(700, 1500), r.uniform(1800, 3000), 0.08, 0.025))
            for t in _times(r, 3)
        )
        + 0.01 * _noise(r, 100, 3000)
    ),
    "wind": lambda r: (
        _noise(r, 150, 1200) * _wobble(r, 0.8, 0.9)
        + 0.3 * _noise(r, 600, 900) * _wobble(r, 0.5, 1.0)
    ),
    "pouring_water": lambda r: (
        _noise(r, 400, 4000) * _wobble(r, 12, 0.7)
        + 0.3 * _tone(np.linspace(r.uniform(250, 350), r.uniform(800, 1000), ESC_SAMPLES))
    ),
    "toilet_flush": lambda r: (
        _noise(r, 150, 3000) * _wobble(r, 10, 0.6) * _gates(r, (2.5, 3.5), (0.5, 1.0), ramp=0.6)
    ),
    "thunderstorm": _thunder,
    "helicopter": _helicopter,
    "chainsaw": _chainsaw,
    "siren": _siren,
    "car_horn": _car_horn,
    "engine": _engine,
    "train": _train,
    "church_bells": _bells,
    "airplane": _airplane,
    "fireworks": _fireworks,
    "hand_saw": _hand_saw,
    "dog": _dog,
    "crying_baby": _crying_baby,
    "keyboard_typing": lambda r: _clicks(r, 8, 0.004, 1500, 7000),
    "vacuum_cleaner": lambda r: (
        _noise(r, 200, 6000)
        + 0.3 * _tone(r.uniform(800, 1200), (1, 0.3))
        + 0.3 * _tone(r.uniform(90, 120), (1, 0.5))
    ),
    "clock_tick": lambda r: _place(
        (t, _ping(f, f, 0.03, 0.004))
        for t, f in zip(_times(r, 2, True, 0.005), [3000, 2400] * 20, strict=False)
    ),
}
"""Procedural generator per category: ``f(rng) -> float array of ESC_SAMPLES samples``."""


def _make_clip(job: dict[str, Any]) -> dict[str, Any]:
    rng = np.random.default_rng(job["rng"])
    x = RECIPES[job["category"]](rng)
    x = np.asarray(x, dtype=np.float64)
    x -= np.mean(x)
    floor = rng.normal(0.0, ESC_NOISE_FLOOR, ESC_SAMPLES)
    if job["short"]:
        # Sound for a few seconds, exact digital silence elsewhere (like zero-padded clips).
        active = int(rng.uniform(*SHORT_ACTIVE_S) * ESC_SR)
        start = int(rng.choice([0, rng.integers(0, ESC_SAMPLES - active), ESC_SAMPLES - active]))
        ramp = int(0.02 * ESC_SR)
        env = np.zeros(ESC_SAMPLES)
        env[start : start + active] = 1.0
        env[start : start + ramp] *= np.linspace(0, 1, ramp)
        env[start + active - ramp : start + active] *= np.linspace(1, 0, ramp)
        x = x * env
        floor = floor * env
    x *= rng.uniform(*ESC_PEAK) * 32767.0 / np.max(np.abs(x))
    pcm = np.clip(np.round(x + floor), -32768, 32767).astype(np.int16)
    if job["short"]:
        pcm[env == 0] = 0
    sf.write(job["path"], pcm, ESC_SR, subtype="PCM_16", format="WAV")
    return {"filename": job["filename"]}


def _run_job(job: dict[str, Any]) -> dict[str, Any]:
    return _synth_utterance(job) if job["kind"] == "speech" else _make_clip(job)


# --------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------
def _context():
    """Fresh-process workers: fork server (clean state, fast) where available, else spawn."""
    if "forkserver" in mp.get_all_start_methods():  # Linux, macOS
        ctx = mp.get_context("forkserver")
        # Preload the heavy imports only: preloading this module would make the children
        # re-import it under a second name when the command line runs it with ``-m``.
        ctx.set_forkserver_preload(
            ["numpy", "scipy.signal", "scipy.interpolate", "soundfile", "data_scripts.espeak"]
        )
        return ctx
    return mp.get_context("spawn")


def _run_parallel(jobs: list[dict[str, Any]], workers: int, progress: bool) -> list[dict[str, Any]]:
    """Run every job in its own worker process (espeak state never leaks between jobs)."""
    from tqdm.auto import tqdm

    with _context().Pool(processes=workers, maxtasksperchild=1) as pool:
        results = list(
            tqdm(
                pool.imap(_run_job, jobs, chunksize=1),
                total=len(jobs),
                disable=not progress,
                desc="mini corpus",
                unit="file",
            )
        )
    return results


def _write_metadata(root: Path, results: list[dict[str, Any]]) -> None:
    lines = [f"{r['id']}|{r['transcription']}|{r['normalized']}\n" for r in results]
    (root / "metadata.csv").write_text("".join(lines), encoding="utf-8", newline="")
    (root / "README").write_text(
        "Mini LJ Speech corpus of the SynthSep book, synthesised with espeak-ng "
        "(data_scripts/mini_corpus.py). Same layout as LJSpeech-1.1: metadata.csv holds "
        "id|transcription|normalized transcription; wavs/ holds 22050 Hz 16-bit mono WAVs.\n",
        encoding="utf-8",
    )


def _write_esc50_meta(root: Path, jobs: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ESC_HEADER)
    for job in sorted(jobs, key=lambda j: j["filename"]):
        writer.writerow([job[k] if k != "esc10" else str(job[k]) for k in ESC_HEADER])
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "esc50.csv").write_text(buf.getvalue(), encoding="utf-8", newline="")


def _stamp_key(seed: int, n_utterances: int, clips_per_category: int) -> dict[str, int]:
    return {
        "format_version": FORMAT_VERSION,
        "seed": int(seed),
        "n_utterances": int(n_utterances),
        "clips_per_category": int(clips_per_category),
    }


def _is_complete(dest: Path, key: dict[str, int]) -> bool:
    """True if ``dest`` holds a finished, undamaged build with the same parameters.

    Cheap: the stamp's parameters, the file counts, and each file's size against the
    manifest the builder wrote into the stamp (:func:`_sizes_match`).
    """
    try:
        stamp = json.loads((dest / STAMP_NAME).read_text(encoding="utf-8"))
        if any(stamp.get(k) != v for k, v in key.items()):
            return False
        wavs = list((dest / LJ_DIRNAME / "wavs").glob("*.wav"))
        clips = list((dest / ESC_DIRNAME / "audio").glob("*.wav"))
        sizes = stamp["files"]  # a stamp without the manifest (older build): rebuild once
        return (
            len(wavs) == stamp["ljspeech"]["n_utterances"]
            and len(clips) == stamp["esc50"]["n_clips"]
            and f"{LJ_DIRNAME}/metadata.csv" in sizes
            and f"{ESC_DIRNAME}/meta/esc50.csv" in sizes
            and _sizes_match(dest, sizes)
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _file_sizes(root: Path) -> dict[str, int]:
    """``{relative posix path: size in bytes}`` of every file under ``root`` but the stamp."""
    return {
        p.relative_to(root).as_posix(): p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != STAMP_NAME
    }


def _sizes_match(dest: Path, sizes: dict[str, int]) -> bool:
    """True if every file of the manifest exists with its recorded size (a stat each).

    Sizes, not hashes: a truncated or partly copied file (the damage seen in practice)
    changes its size, and a stat per file keeps this check, run at every ``make book``,
    at about a millisecond for the default corpus instead of reading ~50 MB.
    """
    return all((dest / rel).stat().st_size == size for rel, size in sizes.items())


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # cannot check safely: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(dest: Path) -> None:
    """Remove leftovers of interrupted builds (``.<name>.partial-<pid>-*``) of dead processes."""
    for p in dest.parent.glob(f".{glob.escape(dest.name)}.*-*-*"):
        kind, _, rest = p.name[len(dest.name) + 2 :].partition("-")
        pid = rest.split("-", 1)[0]
        if kind in ("partial", "old") and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _check_replaceable(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"mini corpus destination {dest} exists and is not a folder")
    if dest.is_dir():
        extra = sorted(p.name for p in dest.iterdir() if p.name not in _EXPECTED_ENTRIES)
        if extra:
            raise FileExistsError(
                f"mini corpus destination {dest} holds files that are not part of a mini corpus "
                f"({', '.join(extra[:5])}); choose an empty or new folder"
            )


def _build(
    dest: str | os.PathLike,
    n_utterances: int = 150,
    seed: int = 2019,
    clips_per_category: int = 2,
    progress: bool = True,
    force: bool = False,
    workers: int | None = None,
) -> tuple[dict[str, Path], bool]:
    """Build (or reuse) the corpus; return its roots and whether it was built now."""
    if int(n_utterances) < 1:
        raise ValueError(f"n_utterances must be >= 1, got {n_utterances}")
    if int(clips_per_category) < 1:
        raise ValueError(f"clips_per_category must be >= 1, got {clips_per_category}")
    dest = Path(dest).expanduser().absolute()
    paths = {"ljspeech": dest / LJ_DIRNAME, "esc50": dest / ESC_DIRNAME}
    key = _stamp_key(seed, n_utterances, clips_per_category)
    if not force and _is_complete(dest, key):
        return paths, False
    _check_replaceable(dest)

    from data_scripts.espeak import EspeakError, available_variants, require_espeakng_loader

    require_espeakng_loader()  # fail early, with the install hint
    # espeak-ng silently ignores an unknown variant ("en-us+xyz"): check ours exist.
    missing = sorted({v.partition("+")[2] for v in VOICES} - {""} - set(available_variants()))
    if missing:
        raise EspeakError(f"espeak-ng data lacks the voice variants {missing} used by VOICES")
    workers = int(workers or min(os.cpu_count() or 1, 8))
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-{os.getpid()}-", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; give it the usual permissions
    try:
        lj, esc = tmp / LJ_DIRNAME, tmp / ESC_DIRNAME
        (lj / "wavs").mkdir(parents=True)
        (esc / "audio").mkdir(parents=True)
        speech_jobs = _speech_jobs(int(n_utterances), int(seed), lj)
        clip_jobs = _esc_jobs(int(seed), int(clips_per_category), esc)
        results = _run_parallel(speech_jobs + clip_jobs, workers, progress)
        speech = results[: len(speech_jobs)]
        _write_metadata(lj, speech)
        _write_esc50_meta(esc, clip_jobs)
        n_samples = [r["n_samples"] for r in speech]
        stamp = {
            **key,
            "generator": "data_scripts.mini_corpus",
            "espeak_ng": speech[0]["espeak_version"],
            "ljspeech": {
                "root": LJ_DIRNAME,
                "n_utterances": len(speech),
                "sample_rate": SPEECH_SR,
                "total_seconds": round(sum(n_samples) / SPEECH_SR, 3),
                "min_seconds": round(min(n_samples) / SPEECH_SR, 3),
                "max_seconds": round(max(n_samples) / SPEECH_SR, 3),
                "voices": sorted({r["voice"] for r in speech}),
            },
            "esc50": {
                "root": ESC_DIRNAME,
                "n_clips": len(clip_jobs),
                "sample_rate": ESC_SR,
                "n_samples_per_clip": ESC_SAMPLES,
                "short_clips": sorted(j["filename"] for j in clip_jobs if j["short"]),
                "targets": sorted({j["target"] for j in clip_jobs}),
            },
        }
        stamp["files"] = _file_sizes(tmp)
        (tmp / STAMP_NAME).write_text(
            json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        # Swap into place: the old build (if any) moves aside first, then is deleted.
        old = None
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{os.getpid()}-{tmp.name.rsplit('-', 1)[-1]}"
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return paths, True


def build_mini_corpus(
    dest: str | os.PathLike,
    n_utterances: int = 150,
    seed: int = 2019,
    clips_per_category: int = 2,
    progress: bool = True,
    *,
    force: bool = False,
    workers: int | None = None,
) -> dict[str, Path]:
    """Build the mini corpus (LJSpeech and ESC-50 layouts) into ``dest``, or reuse it.

    The build goes into a hidden sibling folder and is renamed onto ``dest`` only when
    complete, with ``BUILD_INFO.json`` written last; an interrupted build leaves no
    ``dest`` behind. If ``dest`` already holds a complete build with the same format
    version, seed and sizes, the function returns at once. A different or incomplete
    build in ``dest`` is replaced.

    Parameters
    ----------
    dest : path-like
        Folder that will hold ``LJSpeech-1.1/``, ``ESC-50-master/`` and ``BUILD_INFO.json``.
        It must be new, empty, or an earlier mini corpus.
    n_utterances : int
        Number of espeak utterances (1–7 s each, 22050 Hz); ids ``LJ001-0001``, … with
        50 per "chapter".
    seed : int
        Seed of every random choice (sentence, voice, rate, pitch, noise). The same seed
        gives byte-identical files.
    clips_per_category : int
        Noise clips for each of the 20 paper categories (targets 10–19 and 40–49). Five
        clips of other categories and four short paper-category clips (rejected by the
        paper's 4.5 s rule) are added: ``20 * clips_per_category + 9`` clips of 5 s.
    progress : bool
        Show a tqdm progress bar.
    force : bool, keyword-only
        Rebuild even if a matching build exists.
    workers : int, optional, keyword-only
        Worker processes (default: the CPU count, at most 8). The output does not
        depend on it.

    Returns
    -------
    dict
        ``{"ljspeech": Path(dest/LJSpeech-1.1), "esc50": Path(dest/ESC-50-master)}``.

    Raises
    ------
    ImportError
        If ``espeakng-loader`` is missing (install ``synthsep-lib[corpus]``).
    FileExistsError
        If ``dest`` holds files that are not part of a mini corpus.
    ValueError
        If ``n_utterances`` or ``clips_per_category`` is below 1.

    Notes
    -----
    Each utterance is synthesised in a fresh worker process (espeak-ng keeps hidden
    state between utterances), started by a multiprocessing fork server. As with any
    multiprocessing code, a *script* that calls this function must do so under
    ``if __name__ == "__main__":``; notebooks, ``python -c`` and the command line
    need nothing.
    """
    paths, _ = _build(dest, n_utterances, seed, clips_per_category, progress, force, workers)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``python -m data_scripts.mini_corpus --dest DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m data_scripts.mini_corpus",
        description="Build the SynthSep mini corpus (espeak speech in the LJSpeech-1.1 layout, "
        "synthetic noises in the ESC-50 layout).",
    )
    parser.add_argument("--dest", required=True, help="output folder")
    parser.add_argument(
        "--utterances", type=int, default=150, help="number of utterances (default 150)"
    )
    parser.add_argument("--seed", type=int, default=2019, help="random seed (default 2019)")
    parser.add_argument(
        "--clips-per-category",
        type=int,
        default=2,
        help="noise clips per paper category (default 2)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: CPU count, max 8)"
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if a matching build exists"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths, built = _build(
        args.dest,
        n_utterances=args.utterances,
        seed=args.seed,
        clips_per_category=args.clips_per_category,
        progress=not args.quiet,
        force=args.force,
        workers=args.workers,
    )
    elapsed = time.perf_counter() - start
    dest = paths["ljspeech"].parent
    verb = "built" if built else "already built (same seed and sizes), reused"
    print(f"Mini corpus {verb} in {dest} ({elapsed:.1f} s)")
    print(f"  LJSpeech layout: {paths['ljspeech']}")
    print(f"  ESC-50 layout:   {paths['esc50']}")
    return 0


if __name__ == "__main__":
    # Run the importable copy, so worker jobs pickle as ``data_scripts.mini_corpus._run_job``.
    from data_scripts.mini_corpus import main as _main

    sys.exit(_main())
