"""Vocoder outputs over the test set: from the true mel (a vocoder oracle) or from the
encoder's estimates (a Proposed method).

:func:`vocode_test_set` synthesises the test pairs of Chapter 1 with the WaveNet
(:func:`synthsep_lib.vocoder.generation.generate_utterances`),
:func:`vocode_test_set_parallel` with the parallel vocoder, into
``runs/<profile>/outputs/<method>/NNN.wav`` with ``timing.csv``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..audio import target_mel
from ..files import file_sha1
from ..vocoder.generation import (
    align_with_source,
    fold_frames,
    fold_segments,
    generate_utterances,
)
from ..vocoder.wavenet import WaveNet
from .runs import CHAPTER_ENCODER, RunPaths, require_artifact
from .signal_methods import encoder_seconds, estimates_sha1
from .test_set import load_test_signal, run_over_test_set, test_rows, wav_writer

__all__ = [
    "vocode_test_set",
    "MEL_SOURCES",
    "PARALLEL_METHODS",
    "vocode_test_set_parallel",
]

#: Where the mel of :func:`vocode_test_set` comes from → default output folder.
MEL_SOURCES = {"ground-truth": "wavenet-gt-mel", "encoder": "proposed"}

#: Output folder of the parallel vocoder → (training stage of the vocoder, mel source).
PARALLEL_METHODS = {
    "parallel-gt-mel": ("clean", "ground-truth"),
    "proposed-parallel": ("clean", "encoder"),
    "proposed-parallel-ft": ("finetuned", "encoder"),
}


@dataclass
class _Job:
    pair: int
    mel: np.ndarray
    length: int
    encoder_seconds: float


def _weights_sha1(model: torch.nn.Module) -> str:
    """SHA-1 over the model's parameters: which vocoder made an output."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _check_features(paths: RunPaths, profile) -> None:
    """The encoder's mel must be made with the vocoder's feature settings."""
    config = paths.encoder("proposed") / "config.json"
    stored = json.loads(require_artifact(config, CHAPTER_ENCODER).read_text()).get("features")
    current = json.loads(json.dumps(profile.features.to_dict()))  # tuples → lists as stored
    if stored is not None and stored != current:
        diff = sorted(k for k in current if stored.get(k) != current[k])
        raise ValueError(
            f"the encoder in {config.parent} was trained on mel features that differ from "
            f"the vocoder's in {diff}; rerun Chapter 2 with this profile's features"
        )


def _test_mel(paths: RunPaths, profile, row: dict, mel_source: str) -> _Job:
    """The mel a vocoder gets for one test row, with the encoder's seconds for it."""
    pair = int(row["pair"])
    if mel_source == "ground-truth":  # mel of the unscaled source, as the authors'
        source = load_test_signal(paths, row, "source", profile.features.sample_rate)
        return _Job(pair, target_mel(source, profile), int(row["num_samples"]), 0.0)
    mel = np.load(require_artifact(paths.encoder_estimate("proposed", pair), CHAPTER_ENCODER))
    return _Job(pair, mel, int(row["num_samples"]), encoder_seconds(paths, "proposed", pair))


def _made_from(paths: RunPaths, profile, model, mel_source: str, pairs) -> str:
    """What a vocoder's test outputs depend on: manifest, weights and, if used, estimates."""
    made_from = f"{file_sha1(paths.test_manifest)}; vocoder {_weights_sha1(model)}"
    if mel_source == "encoder":  # new estimates (a retrained encoder) make new outputs
        _check_features(paths, profile)
        made_from += f"; encoder/proposed estimates {estimates_sha1(paths, 'proposed', pairs)}"
    return made_from


def _job_groups(jobs: list[_Job], batch_size: int, fold: int, overlap: int) -> list[list[_Job]]:
    """Jobs, longest first, grouped so that one group fills about one generation batch."""
    jobs = sorted(jobs, key=lambda j: -len(j.mel))
    groups: list[list[_Job]] = []
    rows = batch_size  # rows used in the current group
    for job in jobs:
        n = len(fold_segments(len(job.mel), fold, overlap)) if fold > 0 else 1
        if rows + n > batch_size:
            groups.append([])
            rows = 0
        groups[-1].append(job)
        rows += n
    return groups


def vocode_test_set(
    paths: RunPaths,
    profile,
    model: WaveNet,
    *,
    mel_source: str = "ground-truth",
    method: str | None = None,
    pairs: Sequence[int] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Synthesise test pairs with the WaveNet and write them as a method's outputs.

    The mel of pair p is either the ground truth (``mel_source="ground-truth"``: the
    mel of the unscaled source ``NNN_source.wav``, made like the encoder's targets —
    the paper's vocoder oracle, see original_code.md#oc-b1-oracles) or the Proposed
    encoder's estimate ``encoder/proposed/test/NNN.npy`` (``"encoder"``; the encoder's
    feature settings must equal the profile's). Generation uses ``profile.vocoder``'s batching and
    folding. Output sample t is the model's prediction of the target's sample t + 1,
    so the waveform is shifted by one sample (a leading zero) to line up with
    ``NNN_source.wav``, and has its length.

    Writes ``paths.outputs(method)/NNN.wav`` (float WAV, atomic) and ``timing.csv``
    (``pair``, ``seconds``, ``audio_seconds``) after every batch; ``seconds`` is the
    generation time, plus the encoder's time for that mixture (``NNN.json``) when the
    mel is its estimate, so the Proposed row times the whole pipeline. Pairs
    already written are skipped, so an interrupted run continues (the random draws of
    a file depend on the batch it lands in); outputs made from another test manifest,
    other encoder estimates or another vocoder (weights) are removed first.

    Parameters
    ----------
    paths : RunPaths
    profile : Profile
    model : WaveNet
        Eval-mode model on the device to use.
    mel_source : {"ground-truth", "encoder"}
    method : str, optional
        Output folder name (default: :data:`MEL_SOURCES` of ``mel_source``).
    pairs : sequence of int, optional
        Pairs to synthesise (default: ``profile.vocoder.synthesis_files`` first pairs
        of the manifest, or all when that is 0).
    progress : bool

    Returns
    -------
    pandas.DataFrame
        One row per pair with :data:`~synthsep_lib.pipeline.test_set.OUTPUT_COLUMNS`.
    """
    if mel_source not in MEL_SOURCES:
        raise ValueError(f"mel_source must be one of {list(MEL_SOURCES)}; got {mel_source!r}")
    method = method or MEL_SOURCES[mel_source]
    feat, voc = profile.features, profile.vocoder
    if pairs is None:
        rows = test_rows(paths)
        if voc.synthesis_files > 0:
            rows = rows[: voc.synthesis_files]
    else:
        rows = test_rows(paths, pairs)
    pairs = [int(r["pair"]) for r in rows]
    made_from = _made_from(paths, profile, model, mel_source, pairs)

    def job(row: dict) -> _Job:
        return _test_mel(paths, profile, row, mel_source)

    fold, overlap = fold_frames(profile)
    jobs: dict[int, _Job] = {}

    def batches(todo: list[dict]) -> list[list[dict]]:
        jobs.update({int(r["pair"]): job(r) for r in todo})
        rows_of = {int(r["pair"]): r for r in todo}
        groups = _job_groups(list(jobs.values()), voc.synthesis_batch, fold, overlap)
        return [[rows_of[j.pair] for j in group] for group in groups]

    def produce(group: list[dict]):
        group_jobs = [jobs[int(r["pair"])] for r in group]
        waves, seconds = generate_utterances(
            model,
            [j.mel for j in group_jobs],
            batch_size=voc.synthesis_batch,
            fold_segment_frames=fold,
            fold_overlap_frames=overlap,
            seed=voc.seed * 1000 + group_jobs[0].pair,
            progress=False,
        )
        for j, wav, sec in zip(group_jobs, waves, seconds, strict=True):
            aligned = align_with_source(wav, j.length)
            yield j.pair, aligned, j.encoder_seconds + sec, j.length / feat.sample_rate

    return run_over_test_set(
        f"WaveNet → {method}",
        paths.outputs(method),
        made_from,
        rows,
        produce,
        save=wav_writer(feat.sample_rate),
        batches=batches,
        progress=progress,
    ).assign(method=method)


def vocode_test_set_parallel(
    paths: RunPaths,
    profile,
    model: torch.nn.Module,
    method: str,
    *,
    pairs: Sequence[int] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Synthesise test pairs with the parallel vocoder and write them as a method's outputs.

    ``method`` (:data:`PARALLEL_METHODS`) says where the mel comes from: the true mel of
    ``NNN_source.wav`` (``parallel-gt-mel``) or the Proposed encoder's estimate (the two
    ``proposed-parallel`` rows). One utterance is one pass of the network; its output
    sample t is sample t of the source (no shift), cut or zero-padded to the source's
    length. ``timing.csv``'s ``seconds`` is that pass, plus the encoder's seconds for an
    estimate. Outputs are resumable and tied to the manifest, the weights and the
    estimates, as in :func:`vocode_test_set`.

    Parameters
    ----------
    paths : RunPaths
    profile : Profile
        ``features``; ``parallel.synthesis_files`` limits the default pairs.
    model : torch.nn.Module
        A :class:`~synthsep_lib.vocoder.parallel.ParallelVocoder` in eval mode.
    method : str
        A key of :data:`PARALLEL_METHODS`.
    pairs : sequence of int, optional
    progress : bool

    Returns
    -------
    pandas.DataFrame
        One row per pair with :data:`~synthsep_lib.pipeline.test_set.OUTPUT_COLUMNS`.
    """
    if method not in PARALLEL_METHODS:
        raise ValueError(f"method must be one of {list(PARALLEL_METHODS)}; got {method!r}")
    mel_source = PARALLEL_METHODS[method][1]
    feat = profile.features
    if pairs is None:
        rows = test_rows(paths)
        if profile.parallel.synthesis_files > 0:
            rows = rows[: profile.parallel.synthesis_files]
    else:
        rows = test_rows(paths, pairs)
    made_from = _made_from(paths, profile, model, mel_source, [int(r["pair"]) for r in rows])

    def produce(group: list[dict]):
        for row in group:
            job = _test_mel(paths, profile, row, mel_source)
            start = time.perf_counter()
            out = model.synthesize(job.mel, job.length)
            seconds = time.perf_counter() - start
            yield job.pair, out, job.encoder_seconds + seconds, job.length / feat.sample_rate

    return run_over_test_set(
        f"parallel vocoder → {method}",
        paths.outputs(method),
        made_from,
        rows,
        produce,
        save=wav_writer(feat.sample_rate),
        progress=progress,
    ).assign(method=method)
