"""Time a fresh build of the default mini corpus (150 utterances, 2 clips per category).

Run: ``python benchmarks/mini_corpus_build.py [--utterances N] [--workers W] [--repeats R]``.
Prints the wall time of each fresh build (into a temporary folder), the time of the
second, no-op call (idempotence check), and the sizes of what was written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_scripts.mini_corpus import build_mini_corpus  # noqa: E402


def _size(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=150)
    parser.add_argument("--clips-per-category", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    print(f"CPU cores: {os.cpu_count()}, workers: {args.workers or 'default'}")
    rows = []
    for rep in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "mini"
            kw = dict(
                n_utterances=args.utterances,
                seed=args.seed,
                clips_per_category=args.clips_per_category,
                progress=False,
                workers=args.workers,
            )
            t0 = time.perf_counter()
            paths = build_mini_corpus(dest, **kw)
            fresh = time.perf_counter() - t0
            t0 = time.perf_counter()
            build_mini_corpus(dest, **kw)
            reuse = time.perf_counter() - t0
            stamp = json.loads((dest / "BUILD_INFO.json").read_text())
            lj_files, lj_bytes = _size(paths["ljspeech"])
            esc_files, esc_bytes = _size(paths["esc50"])
            rows.append((rep, fresh, reuse))
    print(f"{'run':>3} {'fresh build (s)':>16} {'second call (s)':>16}")
    for rep, fresh, reuse in rows:
        print(f"{rep:>3} {fresh:>16.2f} {reuse:>16.4f}")
    lj = stamp["ljspeech"]
    print(
        f"LJSpeech-1.1: {lj['n_utterances']} utterances, {lj['total_seconds']:.1f} s of speech "
        f"({lj['min_seconds']:.2f}–{lj['max_seconds']:.2f} s each), {lj_files} files, "
        f"{lj_bytes / 2**20:.1f} MiB, {len(lj['voices'])} voices"
    )
    esc = stamp["esc50"]
    print(
        f"ESC-50-master: {esc['n_clips']} clips of 5 s ({len(esc['short_clips'])} short), "
        f"{len(esc['targets'])} categories, {esc_files} files, {esc_bytes / 2**20:.1f} MiB"
    )
    print(f"espeak-ng {stamp['espeak_ng']}, format version {stamp['format_version']}")


if __name__ == "__main__":
    main()
