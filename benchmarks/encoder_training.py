"""Encoder training throughput beside the data feed's, and the inference real-time factor.

For the ``reduced`` and the ``paper`` configuration and both variants (Proposed, B1):

* **model** — blocks per second of ``model.train_on_batch`` on random blocks of the
  profile's batch size (Adam + the perceptual loss; the first, tracing, step excluded),
  first as Keras compiles it by default, then with ``enable_op_determinism()`` as
  :func:`synthsep_lib.pipeline.encoder_training.train_encoder` runs it (TensorFlow cannot turn
  determinism off again, so those rows come last). The paper's models run only a few
  steps on a CPU.
* **feed** — blocks per second of ``BlockFeed.__getitem__`` in this process (one core,
  mixtures simulated from the mini corpus: loading, mixing, both STFTs, block cutting).
* **feed / model** — above 1, one feed process keeps up with training; below 1, training
  waits for data unless ``feed_workers`` processes share the work.
* **inference RTF** — seconds of :func:`synthsep_lib.encoder.prediction.predict_utterance`
  (features, blocks, predict, stitching) per second of mixture, after a warm-up, for the
  reduced models (and the paper's with ``--paper-rtf``); untrained weights run as fast as
  trained ones.

Run: ``python benchmarks/encoder_training.py [--data-root data] [--steps 8]
[--paper-steps 2] [--no-paper]``. Needs the mini corpus (``make corpus``).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import argparse  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from synthsep_lib import corpora, mixing  # noqa: E402
from synthsep_lib.config import load_profile  # noqa: E402
from synthsep_lib.encoder.loss import perceptual_loss  # noqa: E402
from synthsep_lib.encoder.model import build_encoder, count_parameters  # noqa: E402
from synthsep_lib.encoder.prediction import predict_utterance, warm_up  # noqa: E402
from synthsep_lib.pipeline.encoder_feed import BlockFeed  # noqa: E402

VARIANTS = ("proposed", "b1")


def random_batch(profile, variant: str, rng) -> tuple[dict, np.ndarray]:
    feat, enc = profile.features, profile.encoder
    b, t = enc.batch_size, enc.block_frames
    bins = feat.num_mels if variant == "proposed" else feat.linear_bins
    x = {
        "input1": rng.random((b, t, feat.linear_bins), dtype=np.float32),
        "input2": rng.random((b, t, feat.num_mels), dtype=np.float32),
    }
    return x, rng.random((b, t, bins, 1), dtype=np.float32)


def compiled_model(profile, variant: str) -> keras.Model:
    keras.utils.set_random_seed(profile.encoder.seed)
    model = build_encoder(
        variant,
        profile.encoder,
        linear_bins=profile.features.linear_bins,
        mel_bins=profile.features.num_mels,
    )
    model.compile(keras.optimizers.Adam(profile.encoder.learning_rate), perceptual_loss)
    return model


def model_rate(profile, variant: str, steps: int) -> tuple[float, float, int]:
    """(blocks/s, seconds of the first step, parameters) of train_on_batch."""
    model = compiled_model(profile, variant)
    x, y = random_batch(profile, variant, np.random.default_rng(0))
    t0 = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    seconds = time.perf_counter() - t0
    return steps * profile.encoder.batch_size / seconds, first, count_parameters(model)["total"]


def mini_corpus(profile, data_root: Path):
    lj, esc = corpora.open_corpora(profile, data_root)
    selection = corpora.select_noise_clips(esc, profile, progress=False)
    return lj, esc, corpora.make_splits(lj, selection, profile)


def feed_rate(profile, variant: str, lj, esc, splits, batches: int) -> float:
    """Blocks per second of BlockFeed.__getitem__ in this process (caches warm after the
    first pass over the list, as in a long run)."""
    feed = BlockFeed(
        lj,
        esc,
        splits.target_train,
        splits.noise_train,
        profile,
        variant=variant,
        steps=batches,
        workers=0,
    )
    feed[0]  # build the mel filter bank, fill the caches a little
    t0 = time.perf_counter()
    for i in range(batches):
        feed[i]
    return batches * feed.batch_size / (time.perf_counter() - t0)


def inference_rtf(profile, variant: str, lj, esc, splits, n: int) -> float:
    """Σ seconds / Σ audio seconds of predict_utterance over n test mixtures."""
    model = compiled_model(profile, variant)
    warm_up(model, profile)
    rng = random.Random(0)
    spent = audio_seconds = 0.0
    for _ in range(n):
        s1 = lj.load_target(rng.choice(splits.target_test), profile.features)
        clip = esc.load(rng.choice(splits.noise_test), profile.features.sample_rate)
        mixture = mixing.simulate_mixture_paper(s1, clip).mixture
        t0 = time.perf_counter()
        predict_utterance(model, mixture, profile, variant)
        spent += time.perf_counter() - t0
        audio_seconds += len(mixture) / profile.features.sample_rate
    return spent / audio_seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default="data", type=Path)
    parser.add_argument("--steps", type=int, default=8, help="timed steps, reduced models")
    parser.add_argument("--paper-steps", type=int, default=2, help="timed steps, paper models")
    parser.add_argument("--feed-batches", type=int, default=12)
    parser.add_argument("--rtf-utterances", type=int, default=6)
    parser.add_argument("--no-paper", action="store_true", help="skip the paper's models")
    parser.add_argument("--paper-rtf", action="store_true", help="also time paper inference")
    args = parser.parse_args(argv)

    profiles = {"reduced": load_profile("reduced")}
    if not args.no_paper:
        profiles["paper"] = load_profile("paper")
    # The feed always reads the mini corpus (the paper's corpora are not needed here).
    lj, esc, splits = mini_corpus(profiles["reduced"], args.data_root)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}; "
        f"feed: mini corpus ({len(splits.target_train)} training utterances)"
    )

    rows = []
    for name, profile in profiles.items():
        steps = args.steps if name == "reduced" else args.paper_steps
        for variant in VARIANTS:
            rate, first, params = model_rate(profile, variant, steps)
            feed = feed_rate(profile, variant, lj, esc, splits, args.feed_batches)
            rtf = np.nan
            if name == "reduced" or args.paper_rtf:
                rtf = inference_rtf(profile, variant, lj, esc, splits, args.rtf_utterances)
            rows.append(
                {
                    "profile": name,
                    "variant": variant,
                    "parameters": params,
                    "batch": profile.encoder.batch_size,
                    "deterministic ops": "no",
                    "first step (s)": first,
                    "model blocks/s": rate,
                    "feed blocks/s": feed,
                    "feed / model": feed / rate,
                    "inference RTF": rtf,
                }
            )
            print(f"  {name} {variant}: done", flush=True)
    # As train_encoder runs: deterministic kernels (XLA off). Irreversible, hence last.
    tf.config.experimental.enable_op_determinism()
    for variant in VARIANTS:
        profile = profiles["reduced"]
        rate, first, params = model_rate(profile, variant, args.steps)
        base = next(r for r in rows if r["profile"] == "reduced" and r["variant"] == variant)
        rows.append(
            {
                **base,
                "deterministic ops": "yes",
                "first step (s)": first,
                "model blocks/s": rate,
                "feed / model": base["feed blocks/s"] / rate,
                "inference RTF": np.nan,
            }
        )
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    seconds_per_epoch = {
        f"{r['profile']}/{r['variant']}": (
            profiles[r["profile"]].encoder.steps_per_epoch
            * r["batch"]
            / min(r["model blocks/s"], r["feed blocks/s"])
        )
        for r in rows
        if r["deterministic ops"] == "yes" or r["profile"] == "paper"
    }
    print(
        "one epoch, training steps only, one feed process, at min(model, feed) rate: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in seconds_per_epoch.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
