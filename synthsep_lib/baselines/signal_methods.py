"""One runner for every method that is signal processing only: oracles, Input and B1.

These rows of Table I need no trained decoder: each output is a function of Chapter 1's
test signals and, for some, of a Chapter 2 encoder estimate. :data:`METHODS` is the
registry (method name = output folder → what it needs, how it is computed, what it
is); :func:`write_signal_outputs` applies any of them to the test set and writes
``runs/<profile>/outputs/<method>/<pair:03d>.wav`` with a ``timing.csv``:

===================  ========================  ==============================================
method (folder)      needs                     what it is (PAPER_FACTS §5)
===================  ========================  ==============================================
``input``            mixture                   the mixture itself (Table I "Input")
``proposed-res-gt``  proposed estimate, s1     estimated mel → W⁺ + target residual, s1 phase
``b1-gt``            b1 estimate, s1           estimated linear magnitude, s1 phase
``b1``               b1 estimate, s1           estimated linear magnitude, Griffin–Lim
``ibm-gt``           s1, noise                 ideal binary mask, s1 phase
``mel-res-gt``       target, s1                Proposed-res-gt with the true mel (extra row)
``mel-gl``           target, s1                true mel → W⁺ → Griffin–Lim (extra row)
===================  ========================  ==============================================

"s1" is ``NNN_source.wav`` (the unscaled target, also the length reference), "target"
the scaled ``NNN_target.wav`` whose mel the encoder learns, "noise" ``NNN_noise.wav``,
"mixture" ``NNN_mixture.wav``; a "proposed"/"b1" estimate is Chapter 2's
``encoder/<variant>/test/NNN.npy``. Every output is cut to ``len(s1)`` (the paper's
evaluation truncated to ``length(source)``; all start on the same sample as s1, see
:mod:`.linear`); WAVs are 32-bit float, so the ≈ 1.5 gain of the authors' ISTFT
survives.

Used in: Chapter 4 (04_baselines), Chapter 5 (05_evaluation).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import audio
from ..mixing import read_test_manifest
from ..runs import (
    RunPaths,
    file_sha1,
    read_timing,
    require_artifact,
    reset_if_stale,
    write_timing,
)
from .linear import b1_griffin_lim, b1_true_phase
from .oracles import ideal_binary_mask, mel_griffin_lim, proposed_res_gt, target_mel
from .resynthesis import _features

__all__ = [
    "SignalMethod",
    "METHODS",
    "encoder_seconds",
    "estimates_sha1",
    "write_signal_outputs",
]

CHAPTER_ONE = "Chapter 1 (01_data_simulation)"
CHAPTER_TWO = "Chapter 2 (02_encoder)"


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

    Used in: Chapter 4 (04_baselines), Chapter 5 (05_evaluation)
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
}


def _estimate_path(paths: RunPaths, variant: str, pair: int) -> Path:
    return paths.encoder_estimates(variant) / f"{pair:03d}.npy"


def estimates_sha1(paths: RunPaths, variant: str, pairs) -> str:
    """SHA-1 over the SHA-1s of one encoder's test estimates of ``pairs`` (all must exist;
    a missing one names Chapter 2): what outputs made from them are stamped with.

    Used in: Chapter 3 (03_wavenet_vocoder), Chapter 4 (04_baselines)
    """
    digest = hashlib.sha1()
    for pair in pairs:
        path = require_artifact(_estimate_path(paths, variant, pair), CHAPTER_TWO)
        digest.update(f"{pair}:{file_sha1(path)};".encode())
    return digest.hexdigest()


def encoder_seconds(paths: RunPaths, variant: str, pair: int) -> float:
    """Seconds the encoder took for one test mixture (``NNN.json`` beside its estimate).

    Methods that decode an estimate add it to their own time, so their ``timing.csv``
    times the whole system.

    Used in: Chapter 3 (03_wavenet_vocoder), Chapter 4 (04_baselines)
    """
    path = _estimate_path(paths, variant, pair).with_suffix(".json")
    return float(json.loads(require_artifact(path, CHAPTER_TWO).read_text())["seconds"])


def _load_estimate(paths: RunPaths, variant: str, pair: int, n_samples: int, feat) -> np.ndarray:
    path = _estimate_path(paths, variant, pair)
    estimate = np.load(path)
    bins = feat.num_mels if variant == "proposed" else feat.linear_bins
    expected = (n_samples // feat.hop_size, bins)
    if estimate.shape != expected:
        raise ValueError(
            f"{path} has shape {estimate.shape}; expected {expected} for the "
            f"{n_samples}-sample test pair {pair}: rerun {CHAPTER_TWO} on this test set"
        )
    return estimate


def write_signal_outputs(
    paths: RunPaths, cfg, methods=tuple(METHODS), progress: bool = True
) -> pd.DataFrame:
    """Compute signal-processing methods on every test pair and write them (resumable).

    Reads Chapter 1's manifest and test WAVs and, for ``proposed-res-gt``, ``b1`` and
    ``b1-gt``, Chapter 2's estimates (see :data:`METHODS`). For each pair p and method m
    it writes ``paths.outputs(m)/<p:03d>.wav`` (float WAV, atomic, length of
    ``NNN_source.wav``) and keeps ``paths.outputs(m)/timing.csv``
    (:data:`synthsep_lib.runs.TIMING_COLUMNS`: ``seconds`` of computation excluding
    file I/O — for methods that decode an encoder estimate, plus the encoder's time,
    :func:`encoder_seconds` — and ``audio_seconds`` of output) up to date after every pair.

    Resumable and stale-safe: outputs already there are skipped and keep their timing
    row, unless their folder's ``MADE_FROM`` stamp shows they were made from another
    test manifest or — for the methods that use an estimate — other estimate files
    (the stamp holds a SHA-1 over the SHA-1s of that encoder's estimates, so a retrained
    encoder invalidates them); then the folder's WAVs and timings are deleted first.
    Delete a folder to recompute it.

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
        One row per (method, pair): ``method``, ``pair``, ``path``, ``written`` (False
        when skipped), ``seconds`` (NaN if skipped without a timing row).

    Raises
    ------
    FileNotFoundError
        If the manifest or a needed test WAV is missing ("run Chapter 1
        (01_data_simulation) first"), or an estimate a method needs ("run Chapter 2
        (02_encoder) first"); checked for all pairs before anything is written.
    ValueError
        For an unknown method, a test WAV whose length differs from the manifest, or an
        estimate of the wrong shape.

    Used in: Chapter 4 (04_baselines), Chapter 5 (05_evaluation)
    """
    feat = _features(cfg)
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; expected some of {list(METHODS)}")
    manifest = read_test_manifest(require_artifact(paths.test_manifest, CHAPTER_ONE))
    test_audio = require_artifact(paths.test_audio, CHAPTER_ONE)
    rows = manifest.to_dict("records")
    pairs = [int(row["pair"]) for row in rows]

    # Outputs made from another test set or other encoder estimates are removed.
    manifest_sha1 = file_sha1(paths.test_manifest)
    variants = sorted({METHODS[m].estimate for m in methods} - {None})
    estimates_sha1s = {v: estimates_sha1(paths, v, pairs) for v in variants}
    for method in methods:
        variant = METHODS[method].estimate
        made_from = manifest_sha1
        if variant is not None:
            made_from += f"; encoder/{variant} estimates {estimates_sha1s[variant]}"
        reset_if_stale(paths.outputs(method), made_from, pattern="[0-9]*.wav")
        if not any(paths.outputs(method).glob("[0-9]*.wav")):
            (paths.outputs(method) / "timing.csv").unlink(missing_ok=True)
    timing_paths = {m: paths.outputs(m) / "timing.csv" for m in methods}
    timings = {m: read_timing(timing_paths[m]) for m in methods}

    records = []
    iterator = rows
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(rows, desc="signal methods", unit="pair")
    for row in iterator:
        pair, n_samples = int(row["pair"]), int(row["num_samples"])
        outputs = {m: paths.outputs(m) / f"{pair:03d}.wav" for m in methods}
        todo = [m for m in methods if not outputs[m].exists()]
        inputs: dict[str, np.ndarray] = {}
        kinds = {"source"}.union(*(METHODS[m].signals for m in todo)) if todo else set()
        for kind in sorted(kinds):
            wav_path = require_artifact(test_audio / f"{pair:03d}_{kind}.wav", CHAPTER_ONE)
            inputs[kind] = audio.load_wav(wav_path, feat.sample_rate).astype(np.float64)
            if inputs[kind].shape[0] != n_samples:
                raise ValueError(
                    f"{wav_path} has {inputs[kind].shape[0]} samples, the manifest says "
                    f"{n_samples}; rerun {CHAPTER_ONE}"
                )
        estimates = {
            v: _load_estimate(paths, v, pair, n_samples, feat)
            for v in {METHODS[m].estimate for m in todo} - {None}
        }
        for method in methods:
            seconds = np.nan
            spec = METHODS[method]
            if method in todo:
                given = inputs | ({"estimate": estimates[spec.estimate]} if spec.estimate else {})
                start = time.perf_counter()
                wav = spec.compute(given, row, feat)
                seconds = time.perf_counter() - start
                if spec.estimate:
                    seconds += encoder_seconds(paths, spec.estimate, pair)
                audio.save_wav(outputs[method], wav, feat.sample_rate, subtype="FLOAT")
                timings[method][pair] = {
                    "pair": pair,
                    "seconds": seconds,
                    "audio_seconds": wav.shape[0] / feat.sample_rate,
                }
                write_timing(timing_paths[method], timings[method])
            elif pair in timings[method]:
                seconds = float(timings[method][pair]["seconds"])
            records.append(
                {
                    "method": method,
                    "pair": pair,
                    "path": str(outputs[method]),
                    "written": method in todo,
                    "seconds": seconds,
                }
            )
    return pd.DataFrame(records, columns=["method", "pair", "path", "written", "seconds"])
