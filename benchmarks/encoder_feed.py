"""Throughput of the encoder's block feed (``synthsep_lib.pipeline.encoder_feed.BlockFeed``).

Measures training blocks (64 frames each) produced per second on the mini corpus, for
both encoder variants, batches of 16 and 32 blocks, and these ways of running the feed:

* ``0``            — ``feed[i]`` in this process (what ``fit`` does with ``workers=0``);
* ``1 process``    — Keras' worker queue with one worker process;
* ``2 processes``  — two worker processes;
* ``2 threads``    — two worker threads (``use_multiprocessing=False``).

The worker rows pull whole epochs through Keras' own ``PyDatasetAdapter`` (what ``fit``
uses), so they include the start-up of the worker pool that Keras forks every epoch.
Caches are warmed by one in-process epoch first. Each cell is repeated; the table shows
the median and the best repeat of the wall-clock rate (the best is the least disturbed by
other load on the machine), and for the in-process and thread rows the rate per CPU
second of this process (``cpu``), which other load hardly changes: with k free cores the
feed can deliver about k times that. ``load`` is the 1-minute load average at the end. The requirement this serves: the feed should produce at least 3× the blocks
per second the encoder consumes in training (measured separately).

Run: ``python benchmarks/encoder_feed.py [--repeats 3] [--epochs 1] [--blas-threads 1]``
(``--blas-threads 0`` leaves numpy's BLAS threads as they are).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from synthsep_lib import corpora  # noqa: E402
from synthsep_lib.config import load_profile  # noqa: E402
from synthsep_lib.pipeline.encoder_feed import BlockFeed, feed_rate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

MODES = (  # label, workers, use_multiprocessing, through Keras
    ("0 (in-process)", 0, False, False),
    ("1 process", 1, True, True),
    ("2 processes", 2, True, True),
    ("2 threads", 2, False, True),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=str(ROOT / "data"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1, help="epochs timed per repeat")
    parser.add_argument("--steps", type=int, default=None, help="batches per epoch")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument(
        "--blas-threads", type=int, default=1, help="BlockFeed(blas_threads=...); 0: as is"
    )
    args = parser.parse_args()
    blas = args.blas_threads or None

    profile = load_profile("reduced")
    lj, esc = corpora.open_corpora(profile, args.data_root)
    splits = corpora.make_splits(
        lj, corpora.select_noise_clips(esc, profile, progress=False), profile
    )
    steps = args.steps or profile.encoder.steps_per_epoch
    print(
        f"mini corpus: {len(splits.target_train)} train utterances, "
        f"{len(splits.noise_train)} train noises; {steps} batches per epoch; "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"feed BLAS threads {'as is' if blas is None else blas}"
    )
    header = (
        f"{'variant':9s} {'batch':>5s}  {'workers':16s} {'median':>8s} {'best':>8s} "
        f"{'cpu':>8s} {'load':>5s}   (blocks/s)"
    )
    print(header)
    print("-" * len(header))
    for variant in ("proposed", "b1"):
        for batch in args.batch_sizes:
            for label, workers, mp, keras_queue in MODES:
                feed = BlockFeed(
                    lj,
                    esc,
                    splits.target_train,
                    splits.noise_train,
                    profile,
                    variant=variant,
                    steps=steps,
                    batch_size=batch,
                    workers=workers,
                    use_multiprocessing=mp,
                    blas_threads=blas,
                )
                feed_rate(feed)  # warm the caches (forked workers inherit them)
                rates, cpu = [], 0.0
                for _ in range(args.repeats):
                    c0 = time.process_time()
                    rates.append(feed_rate(feed, steps * args.epochs, through_keras=keras_queue))
                    cpu += time.process_time() - c0
                blocks = args.repeats * steps * args.epochs * batch
                per_cpu = "n/a" if mp else f"{blocks / cpu:.0f}"
                print(
                    f"{variant:9s} {batch:5d}  {label:16s} {statistics.median(rates):8.0f} "
                    f"{max(rates):8.0f} {per_cpu:>8s} {os.getloadavg()[0]:5.1f}",
                    flush=True,
                )
    print(f"skipped short utterances: {feed.skipped}; finished {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
