"""Throughput of the evaluation measures (``synthsep_lib.evaluation.metrics``).

Scores synthetic speech-like pairs (5 s at 22.05 kHz by default: a harmonic source with
syllable envelopes as the reference, the same plus white noise at 0–20 dB SNR as the
estimate) with :func:`compute_metrics` and prints

1. files per second for the full default metric set: sequentially in this process, and
   with joblib (``n_jobs`` loky workers) — once with fresh workers (each loads the
   DNSMOS models) and once more with the same, warm workers;
2. a per-metric breakdown: the time per file of ``compute_metrics`` asked for one
   metric at a time (best of ``--repeats`` per file, median over files; shared work such
   as resampling is counted in each row that needs it, so the rows add up to more than
   the full set), plus the input checks alone and the cost of ``align=True``.

The machine's load average is printed before and after: on a shared machine the wall
times of part 1 (single runs) vary more than the best-of-repeats times of part 2.

The one-off cost of loading the DNSMOS ONNX models (first call in a process) is printed
separately and excluded from the sequential rates.

Run: ``python benchmarks/metric_throughput.py [--files 12] [--seconds 5] [--n-jobs 2]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from synthsep_lib.evaluation import metrics as M

SR = 22050


def speech_like(n: int, sr: int, seed: int) -> np.ndarray:
    """Harmonic source with a gliding f0, formant-like weights and syllabic gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t + seed) + 10 * np.sin(2 * np.pi * 5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = np.zeros(n)
    for k in range(1, 40):
        weight = (1 / k) * (1 + 3 * np.exp(-(((k * 140 - 700) / 250) ** 2)))
        y += weight * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    envelope = np.clip(np.sin(2 * np.pi * 3.3 * t), 0, None) ** 1.5
    y = y * envelope + 0.003 * rng.standard_normal(n)
    return 0.5 * y / np.max(np.abs(y))


def make_pairs(count: int, seconds: float) -> list[tuple[np.ndarray, np.ndarray]]:
    n = int(seconds * SR)
    pairs = []
    for i in range(count):
        ref = speech_like(n, SR, seed=i)
        noise = np.random.default_rng(1000 + i).standard_normal(n)
        snr_db = 20.0 * i / max(count - 1, 1)
        noise *= np.sqrt(np.mean(ref**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
        pairs.append((ref, ref + noise))
    return pairs


def score(ref: np.ndarray, est: np.ndarray, **kwargs) -> dict:
    return M.compute_metrics(ref, est, SR, **kwargs)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12, help="number of pairs")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each pair")
    parser.add_argument("--n-jobs", type=int, default=2, help="joblib workers")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per file in part 2")
    args = parser.parse_args()

    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    pairs = make_pairs(args.files, args.seconds)
    print(
        f"{args.files} pairs of {args.seconds:g} s at {SR} Hz; python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, numpy {np.__version__}; load average {load()}"
    )

    # one-off: the first DNSMOS call loads the ONNX models into speechmos' module cache
    first = timed(M.dnsmos, pairs[0][1], SR)
    again = timed(M.dnsmos, pairs[0][1], SR)
    print(f"DNSMOS first call (loads the models): {first:.2f} s; next call: {again:.2f} s\n")

    # 1. throughput of the full set
    start = time.perf_counter()
    results = [score(ref, est) for ref, est in pairs]
    sequential = time.perf_counter() - start
    get_reusable_executor().shutdown(wait=True)
    parallel = Parallel(n_jobs=args.n_jobs)
    start = time.perf_counter()
    cold_results = parallel(delayed(score)(ref, est) for ref, est in pairs)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    parallel(delayed(score)(ref, est) for ref, est in pairs)
    warm = time.perf_counter() - start
    get_reusable_executor().shutdown(wait=True)
    same = all(
        np.allclose(list(a.values()), list(b.values()), equal_nan=True)
        for a, b in zip(results, cold_results, strict=True)
    )

    audio = args.files * args.seconds
    print(f"Full metric set ({len(M.DEFAULT_METRICS)} measures), {args.files} files:")
    print(f"{'mode':<34}{'wall s':>9}{'files/s':>9}{'audio s/s':>11}")
    for label, seconds in (
        ("sequential (1 process)", sequential),
        (f"joblib n_jobs={args.n_jobs}, fresh workers", cold),
        (f"joblib n_jobs={args.n_jobs}, warm workers", warm),
    ):
        print(f"{label:<34}{seconds:>9.2f}{args.files / seconds:>9.2f}{audio / seconds:>11.1f}")
    print(f"parallel scores equal sequential ones: {same}\n")

    # 2. per-metric breakdown (median seconds per file)
    rows = [("input checks only", {"metrics": ()})]
    rows += [(name, {"metrics": (name,)}) for name in M.ALL_METRICS]
    rows += [("align=True (checks + lag search)", {"metrics": (), "align": True})]
    times = {}
    for label, kwargs in rows:
        times[label] = statistics.median(
            min(timed(score, ref, est, **kwargs) for _ in range(args.repeats)) for ref, est in pairs
        )
    total = sequential / args.files
    print(
        f"Per-metric time (best of {args.repeats} per file, median over files; "
        "compute_metrics with that metric alone):"
    )
    print(f"{'metric':<34}{'ms/file':>9}{'% of full set':>15}")
    for label, _ in rows:
        print(f"{label:<34}{1000 * times[label]:>9.1f}{100 * times[label] / total:>14.1f}%")
    print(f"{'full default set':<34}{1000 * total:>9.1f}{100.0:>14.1f}%")
    print(
        "\nShared work: pesq_nb and pesq_raw use one narrow-band PESQ call, lsd and mcd one "
        "pair of spectrograms,\nthe four dnsmos_* one DNSMOS call; in the full set each is "
        "computed once."
    )
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
