"""Throughput of the encoder features (mel + linear) on one CPU core.

Compares ``synthsep_lib.audio.encoder_features`` (numpy framing + ``np.fft.rfft``) with
an equivalent built on ``librosa.stft``: the mel STFT uses ``librosa.stft`` with the lws
analysis window as a custom window array on the lws-padded signal, the linear STFT uses
``librosa.stft(..., window='hann', center=False)``; both go through the same mel basis
and the same dB/[0, 1] normalisation. Prints audio seconds processed per wall-clock
second (median of several repeats), their ratio, and the largest absolute difference
between the two implementations' outputs, so the comparison is like for like.

Run: ``python benchmarks/feature_throughput.py [--seconds 60] [--repeats 7]``.
"""

from __future__ import annotations

import os

# One core: fix the thread count of every BLAS/OpenMP pool before numpy is imported.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from synthsep_lib import audio  # noqa: E402
from synthsep_lib.config import FeatureConfig  # noqa: E402


def speech_like(n: int, sr: int, seed: int = 0) -> np.ndarray:
    """Harmonic source with a gliding f0, formant-like weights and syllabic gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = np.zeros(n)
    for k in range(1, 40):
        y += (1 / k) * (1 + 3 * np.exp(-(((k * 140 - 700) / 250) ** 2))) * np.sin(k * phase)
    envelope = np.clip(np.sin(2 * np.pi * 3.3 * t), 0, None) ** 1.5
    y = y * envelope + 0.003 * rng.standard_normal(n)
    return y / np.max(np.abs(y))


def librosa_encoder_features(signal: np.ndarray, cfg: FeatureConfig):
    """Same features as ``audio.encoder_features``, with ``librosa.stft`` for both STFTs."""
    n_fft, hop, lead = cfg.fft_size, cfg.hop_size, cfg.lead_in
    x = np.asarray(signal, dtype=np.float64)
    # linear: end-padded by 768, periodic Hann, frames at 256 m
    spec = librosa.stft(
        np.pad(x, (0, lead)), n_fft=n_fft, hop_length=hop, window="hann", center=False
    )
    db = 20 * np.log10(np.maximum(10 ** (cfg.min_level_db / 20), np.abs(spec[: cfg.linear_bins])))
    db -= cfg.ref_level_db_linear
    linear = np.clip((db - cfg.min_level_db_linear) / -cfg.min_level_db_linear, 0, 1).T
    # mel: lws framing of signal[768:] (768 zeros before, zero-extended to M frames)
    y = x[lead:]
    frames = math.ceil(len(y) / hop) + n_fft // hop - 1
    padded = np.zeros((frames - 1) * hop + n_fft)
    padded[lead : lead + len(y)] = y
    window = np.sin(np.pi * (np.arange(n_fft) + 0.5) / n_fft) * np.sqrt(2 * hop / n_fft)
    spec = librosa.stft(padded, n_fft=n_fft, hop_length=hop, window=window, center=False)
    mel_amp = audio.mel_basis(cfg) @ np.abs(spec)
    db = 20 * np.log10(np.maximum(10 ** (cfg.min_level_db / 20), mel_amp)) - cfg.ref_level_db
    mel = np.clip((db - cfg.min_level_db) / -cfg.min_level_db, 0, 1).T
    return linear.astype(np.float32), mel.astype(np.float32)


def median_seconds(func, repeats: int) -> float:
    func()  # warm-up (caches, first-call costs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio length per signal")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median)")
    args = parser.parse_args()

    cfg = FeatureConfig()
    n = int(args.seconds * cfg.sample_rate)
    rng = np.random.default_rng(2019)
    signals = {
        "noise": 0.3 * rng.standard_normal(n),
        "speech-like": 0.999 * speech_like(n, cfg.sample_rate),
    }

    rows = []
    with threadpool_limits(limits=1):
        for name, wav in signals.items():
            signal = audio.pad_for_frames(wav, cfg)  # saved-audio layout, float32
            duration = len(signal) / cfg.sample_rate
            ours = audio.encoder_features(signal, cfg)
            ref = librosa_encoder_features(signal, cfg)
            diff_lin = float(np.max(np.abs(ours[0] - ref[0])))
            diff_mel = float(np.max(np.abs(ours[1] - ref[1])))
            t_ours = median_seconds(lambda s=signal: audio.encoder_features(s, cfg), args.repeats)
            t_ref = median_seconds(lambda s=signal: librosa_encoder_features(s, cfg), args.repeats)
            rows.append(
                (
                    name,
                    duration,
                    duration / t_ours,
                    duration / t_ref,
                    t_ref / t_ours,
                    diff_lin,
                    diff_mel,
                )
            )

    print(
        f"encoder_features throughput, 1 thread, median of {args.repeats} "
        f"(numpy {np.__version__}, librosa {librosa.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()})"
    )
    header = (
        f"{'signal':<12} {'audio s':>8} {'synthsep s/s':>13} {'librosa s/s':>12} "
        f"{'ratio':>6} {'max|Δ| lin':>11} {'max|Δ| mel':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, duration, ours, ref, ratio, d_lin, d_mel in rows:
        print(
            f"{name:<12} {duration:8.1f} {ours:13.0f} {ref:12.0f} {ratio:6.2f} "
            f"{d_lin:11.2e} {d_mel:11.2e}"
        )
    print("s/s = seconds of audio per second of wall time; ratio = synthsep / librosa speed.")


if __name__ == "__main__":
    main()
