"""How the evaluation runner's cache behaves: a cold run, a rerun, one changed output.

Builds a throw-away run folder (``--pairs`` test pairs of ``--seconds`` seconds of
speech-like audio, ``--methods`` methods each), then times
:func:`synthsep_lib.pipeline.scoring.evaluate_outputs` with the full metric set:

1. cold — every output is scored;
2. rerun — nothing changed, every score comes from ``eval/metrics.csv``;
3. one output rewritten — only that file is scored again.

Run: ``python benchmarks/evaluation_cache.py [--pairs 12] [--methods 4] [--n-jobs 2]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synthsep_lib import audio
from synthsep_lib.config import load_profile
from synthsep_lib.mixing import MANIFEST_COLUMNS, write_test_manifest
from synthsep_lib.pipeline import scoring as runner
from synthsep_lib.pipeline.runs import RunPaths

SR = 22050


def speech_like(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Harmonics of a gliding 120-220 Hz pitch under 4 Hz syllable envelopes."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 170 + 50 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 1.5
    wav = voice * envelope
    return (0.8 * wav / np.abs(wav).max()).astype(np.float32)


def build(root: Path, pairs: int, methods: int, seconds: float) -> RunPaths:
    paths = RunPaths(root, "reduced")
    rng = np.random.default_rng(0)
    rows = []
    for pair in range(pairs):
        source = speech_like(rng, seconds)
        audio.save_wav(paths.test_audio / f"{pair:03d}_source.wav", source, SR, subtype="FLOAT")
        for m in range(methods):
            noisy = source + 10 ** (-(5 + 5 * m) / 20) * 0.1 * rng.standard_normal(
                source.size
            ).astype(np.float32)
            audio.save_wav(paths.output_wav(f"method-{m}", pair), noisy, SR, subtype="FLOAT")
        rows.append(
            {c: 0 for c in MANIFEST_COLUMNS}
            | {
                "pair": pair,
                "target_id": f"LJ001-{pair:04d}",
                "noise_file": "x.wav",
                "num_samples": source.size,
            }
        )
    write_test_manifest(paths.test_manifest, pd.DataFrame(rows))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--methods", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    cfg = load_profile("reduced")
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(Path(tmp), args.pairs, args.methods, args.seconds)
        files = args.pairs * args.methods
        rows, hashes = [], set()
        for label in ("cold", "rerun (all cached)", "one output rewritten"):
            if label == "one output rewritten":
                out = paths.output_wav("method-0", 0)
                audio.save_wav(out, 0.5 * audio.load_wav(out, SR), SR, subtype="FLOAT")
            start = time.perf_counter()
            table = runner.evaluate_outputs(paths, cfg, n_jobs=args.n_jobs, progress=False)
            seconds = time.perf_counter() - start
            cache = pd.read_csv(paths.eval / "metrics.csv")
            scored = int((~cache["output_sha1"].isin(hashes)).sum())  # rows for new file contents
            hashes = set(cache["output_sha1"])
            rows.append(
                {
                    "run": label,
                    "files": len(table),
                    "newly scored": scored,
                    "wall s": round(seconds, 2),
                }
            )
        print(
            f"{files} outputs ({args.pairs} pairs x {args.methods} methods, {args.seconds:g} s each), "
            f"full metric set, n_jobs={args.n_jobs}"
        )
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
