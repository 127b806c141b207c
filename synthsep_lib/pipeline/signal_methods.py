"""One runner for every method that is signal processing only: oracles, Input and B1.

These rows of Table I need no trained decoder: each output is a function of Chapter 1's
test signals and, for some, of a Chapter 2 encoder estimate. :data:`METHODS` is the
registry (method name = output folder → what it needs, how it is computed, what it
is); :func:`write_signal_outputs` applies any of them to the test set and writes
``runs/<profile>/outputs/<method>/<pair:03d>.wav`` with a ``timing.csv``:

===================  ========================  ==============================================
method (folder)      needs                     what it is (original_code.md#oc-b1-oracles)
===================  ========================  ==============================================
``input``            mixture                   the mixture itself (Table I "Input")
``proposed-res-gt``  proposed estimate, s1     estimated mel → W⁺ + target residual, s1 phase
``b1-gt``            b1 estimate, s1           estimated linear magnitude, s1 phase
``b1``               b1 estimate, s1           estimated linear magnitude, Griffin–Lim
``ibm-gt``           s1, noise                 ideal binary mask, s1 phase
``mel-res-gt``       target, s1                Proposed-res-gt with the true mel (extra row)
``mel-gl``           target, s1                true mel → W⁺ → Griffin–Lim (extra row)
``proposed-gl``      proposed estimate, s1     estimated mel → W⁺ → Griffin–Lim (extra row)
===================  ========================  ==============================================

"s1" is ``NNN_source.wav`` (the unscaled target, also the length reference), "target"
the scaled ``NNN_target.wav`` whose mel the encoder learns, "noise" ``NNN_noise.wav``,
"mixture" ``NNN_mixture.wav``; a "proposed"/"b1" estimate is Chapter 2's
``encoder/<variant>/test/NNN.npy``. Every output is cut to ``len(s1)`` (the paper's
evaluation truncated to ``length(source)``; all start on the same sample as s1, see
:mod:`.linear`); WAVs are 32-bit float, so the ≈ 1.5 gain of the authors' ISTFT
survives.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..audio import target_mel
from ..baselines.b1 import b1_griffin_lim, b1_true_phase
from ..baselines.oracles import ideal_binary_mask, mel_griffin_lim, proposed_res_gt
from ..baselines.resynthesis import _features
from ..files import file_sha1
from .runs import CHAPTER_ENCODER, RunPaths, read_timing, require_artifact
from .test_set import load_test_signal, run_over_test_set, test_rows, wav_writer

__all__ = [
    "SignalMethod",
    "METHODS",
    "encoder_seconds",
    "estimates_sha1",
    "load_estimate",
    "write_signal_outputs",
]


@dataclass(frozen=True)
class SignalMethod:
    """One signal-processing method of :data:`METHODS`.

    Attributes
    ----------
    description : str
        One line for tables and docs.
    signals : tuple of str
        Chapter 1 test WAVs it reads: some of ``"source"``, ``"target"``, ``"noise"``,
        ``"mixture"`` (``data/test/NNN_<kind>.wav``). ``"source"`` is always read: it
        is the length reference.
    estimate : str or None
        Encoder variant (``"proposed"`` or ``"b1"``) whose Chapter 2 estimate it needs.
    compute : callable
        ``compute(inputs, row, feat) -> (L,) waveform``: ``inputs`` maps the kinds of
        ``signals`` (float arrays (L,)) and, if needed, ``"estimate"`` ((L/256, F)) to
        arrays; ``row`` is the manifest row; ``feat`` the FeatureConfig.
    """

    description: str
    signals: tuple[str, ...]
    estimate: str | None
    compute: Callable[[dict, dict, object], np.ndarray]


#: Method name (output folder) → :class:`SignalMethod`, Table I rows first in its order,
#: then the book's extra rows.
METHODS = {
    "input": SignalMethod(
        "the unprocessed mixture (Table I 'Input')",
        ("mixture",),
        None,
        lambda x, row, feat: x["mixture"],
    ),
    "proposed-res-gt": SignalMethod(
        "the encoder's estimated mel → W⁺ plus the target's residual R = Y − W⁺WY, "
        "ground-truth phase, authors' ISTFT (Table I 'Proposed-res-gt')",
        (),
        "proposed",
        lambda x, row, feat: proposed_res_gt(x["estimate"], x["source"], feat),
    ),
    "b1-gt": SignalMethod(
        "the B1 encoder's estimated linear magnitude with the ground-truth phase, "
        "authors' ISTFT (Table I 'B1-gt')",
        (),
        "b1",
        lambda x, row, feat: b1_true_phase(x["estimate"], x["source"], feat),
    ),
    "b1": SignalMethod(
        "the B1 encoder's estimated linear magnitude with 100 Griffin–Lim iterations, "
        "seeded with the pair number (Table I 'B1')",
        (),
        "b1",
        lambda x, row, feat: b1_griffin_lim(
            x["estimate"], feat, seed=int(row["pair"]), length=x["source"].shape[0]
        ),
    ),
    "ibm-gt": SignalMethod(
        "ideal binary mask on the clipped mixture magnitude (masked units × 1e-4), "
        "ground-truth target phase, authors' ISTFT (Table I 'IBM-gt')",
        ("noise",),
        None,
        lambda x, row, feat: ideal_binary_mask(
            x["source"], x["noise"] / float(row["mixture_scale"]), feat
        ),
    ),
    "mel-res-gt": SignalMethod(
        "Proposed-res-gt with the true mel: the ceiling of the mel path (not in Table I)",
        ("target",),
        None,
        lambda x, row, feat: proposed_res_gt(target_mel(x["target"], feat), x["source"], feat),
    ),
    "mel-gl": SignalMethod(
        "the true mel → W⁺ → 100 Griffin–Lim iterations, seeded with the pair number: the "
        "reference point a vocoder must beat (not in Table I)",
        ("target",),
        None,
        lambda x, row, feat: mel_griffin_lim(
            target_mel(x["target"], feat),
            feat,
            seed=int(row["pair"]),
            length=x["source"].shape[0],
        ),
    ),
    "proposed-gl": SignalMethod(
        "the Proposed encoder's estimated mel → W⁺ → 100 Griffin–Lim iterations, seeded "
        "with the pair number: the estimate decoded without a vocoder, which separates the "
        "encoder's errors from a vocoder's (not in Table I)",
        (),
        "proposed",
        lambda x, row, feat: mel_griffin_lim(
            x["estimate"], feat, seed=int(row["pair"]), length=x["source"].shape[0]
        ),
    ),
}


def estimates_sha1(paths: RunPaths, variant: str, pairs) -> str:
    """SHA-1 over the SHA-1s of one encoder's test estimates of ``pairs`` (all must exist;
    a missing one names Chapter 2): what outputs made from them are stamped with."""
    digest = hashlib.sha1()
    for pair in pairs:
        path = require_artifact(paths.encoder_estimate(variant, pair), CHAPTER_ENCODER)
        digest.update(f"{pair}:{file_sha1(path)};".encode())
    return digest.hexdigest()


def encoder_seconds(paths: RunPaths, variant: str, pair: int) -> float:
    """Seconds the encoder took for one test mixture (its estimates' ``timing.csv``).

    Methods that decode an estimate add it to their own time, so their ``timing.csv``
    times the whole system.
    """
    path = require_artifact(paths.encoder_estimates(variant) / "timing.csv", CHAPTER_ENCODER)
    timing = read_timing(path)
    if int(pair) not in timing:
        raise FileNotFoundError(f"{path} has no row for pair {pair}: run {CHAPTER_ENCODER} first")
    return float(timing[int(pair)]["seconds"])


def load_estimate(paths: RunPaths, variant: str, row: dict, feat) -> np.ndarray:
    """An encoder's estimate of one test pair, checked against the pair's length."""
    path = require_artifact(paths.encoder_estimate(variant, row["pair"]), CHAPTER_ENCODER)
    estimate = np.load(path)
    bins = feat.num_mels if variant == "proposed" else feat.linear_bins
    expected = (int(row["num_samples"]) // feat.hop_size, bins)
    if estimate.shape != expected:
        raise ValueError(
            f"{path} has shape {estimate.shape}; expected {expected} for the "
            f"{int(row['num_samples'])}-sample test pair {row['pair']}: rerun "
            f"{CHAPTER_ENCODER} on this test set"
        )
    return estimate


def write_signal_outputs(
    paths: RunPaths, cfg, methods=tuple(METHODS), progress: bool = True
) -> pd.DataFrame:
    """Compute signal-processing methods on every test pair and write them (resumable).

    Reads Chapter 1's manifest and test WAVs and, for ``proposed-res-gt``, ``b1`` and
    ``b1-gt``, Chapter 2's estimates (see :data:`METHODS`). For each pair p and method m
    it writes ``paths.output_wav(m, p)`` (float WAV, atomic, length of
    ``NNN_source.wav``) and ``timing.csv`` (``seconds`` of computation excluding file
    I/O — for methods that decode an encoder estimate, plus the encoder's time,
    :func:`encoder_seconds` — and ``audio_seconds`` of output), through
    :func:`synthsep_lib.pipeline.test_set.run_over_test_set`: resumable, and outputs
    made from another test manifest or other estimates are deleted first.

    Parameters
    ----------
    paths : RunPaths
    cfg : Profile or FeatureConfig
        Uses the feature settings.
    methods : sequence of str, default all of :data:`METHODS`
        Keys of :data:`METHODS`.
    progress : bool
        Show a tqdm bar over the pairs.

    Returns
    -------
    pandas.DataFrame
        One row per (method, pair) with :data:`~synthsep_lib.pipeline.test_set.OUTPUT_COLUMNS`.

    Raises
    ------
    FileNotFoundError
        If the manifest or a needed test WAV is missing ("run Chapter 1
        (01_data_simulation) first"), or an estimate a method needs ("run Chapter 2
        (02_encoder) first"); estimates are checked for all pairs before anything is
        written.
    ValueError
        For an unknown method, a test WAV whose length differs from the manifest, or an
        estimate of the wrong shape.
    """
    feat = _features(cfg)
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; expected some of {list(METHODS)}")
    rows = test_rows(paths)
    pairs = [int(r["pair"]) for r in rows]
    # What the outputs are made from; a retrained encoder (new estimates) invalidates them.
    made_from = {v: file_sha1(paths.test_manifest) for v in (None, "proposed", "b1")}
    for variant in sorted({METHODS[m].estimate for m in methods} - {None}):
        made_from[variant] += f"; encoder/{variant} estimates "
        made_from[variant] += estimates_sha1(paths, variant, pairs)
    tables = []
    for method in methods:
        spec = METHODS[method]

        def produce(group, spec=spec):
            for row in group:
                inputs = {
                    kind: load_test_signal(paths, row, kind, feat.sample_rate).astype(np.float64)
                    for kind in sorted({"source", *spec.signals})
                }
                if spec.estimate:
                    inputs["estimate"] = load_estimate(paths, spec.estimate, row, feat)
                start = time.perf_counter()
                wav = spec.compute(inputs, row, feat)
                seconds = time.perf_counter() - start
                if spec.estimate:
                    seconds += encoder_seconds(paths, spec.estimate, row["pair"])
                yield int(row["pair"]), wav, seconds, wav.shape[0] / feat.sample_rate

        tables.append(
            run_over_test_set(
                method,
                paths.outputs(method),
                made_from[spec.estimate],
                rows,
                produce,
                save=wav_writer(feat.sample_rate),
                progress=progress,
            )
        )
    return pd.concat(tables, ignore_index=True)
