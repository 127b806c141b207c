"""The ground-truth ("oracle") rows of Table I, and a runner that writes them to disk.

An oracle uses something a real system cannot know — the clean target's phase, the
clean target and noise spectra, or the clean target's mel — so it shows how good a
method *could* be with a perfect estimate (PAPER_FACTS §5):

========================  ===========================================================
method (folder)           what it is
========================  ===========================================================
``input``                 the mixture itself (Table I "Input")
``ibm-gt``                ideal binary mask on the mixture magnitude, target phase
``proposed-res-gt``       mel → linear by W⁺ plus the target's residual, target phase
``mel-gl``                ground-truth mel → W⁺ → Griffin–Lim (no vocoder)
========================  ===========================================================

All waveforms are written as 32-bit float WAVs to
``runs/<profile>/outputs/<method>/<pair:03d>.wav`` with a ``timing.csv`` per method,
already cut to the length of the reference ``NNN_source.wav`` (the paper's Matlab
evaluation truncated its ISTFT outputs to ``length(source)``, PAPER_FACTS §8). The
ISTFT-based outputs keep the authors' ≈ 1.5 gain (see :mod:`.resynthesis`): float WAVs
store peaks above 1, and the metrics are scale-invariant or level-normalised.

Used in: Chapter 4 (04_baselines), Chapter 5 (05_evaluation).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import audio
from ..mixing import read_test_manifest
from ..runs import RunPaths, atomic_path, file_sha1, require_artifact, reset_if_stale
from .resynthesis import (
    _features,
    griffin_lim_paper,
    istft_paper,
    match_length,
    mel_pseudo_inverse,
    mel_to_linear,
)

__all__ = [
    "ORACLES",
    "IBM_GAIN",
    "ideal_binary_mask",
    "proposed_res_gt",
    "mel_griffin_lim",
    "target_mel",
    "write_oracle_outputs",
]

#: Oracle method name (output folder) → one-line description, in Table I order.
ORACLES = {
    "input": "the unprocessed mixture (Table I 'Input')",
    "ibm-gt": (
        "ideal binary mask on the clipped mixture magnitude (masked units × 1e-4), "
        "ground-truth target phase, authors' ISTFT (Table I 'IBM-gt')"
    ),
    "proposed-res-gt": (
        "ground-truth mel → W⁺ plus the target's residual R = Y − W⁺WY, ground-truth "
        "phase, authors' ISTFT (Table I 'Proposed-res-gt', with the true instead of the "
        "estimated mel)"
    ),
    "mel-gl": (
        "ground-truth mel → W⁺ → 100 Griffin–Lim iterations: the reference point a "
        "vocoder must beat (not in Table I)"
    ),
}

#: Gain of the masked time–frequency units in the authors' IBM (−80 dB).
IBM_GAIN = 1e-4

CHAPTER_ONE = "Chapter 1 (01_data_simulation)"


def _signal(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or np.iscomplexobj(arr) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be a 1-D array of real samples; got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; expected finite samples")
    return arr


def _clipped_linear(stft: np.ndarray, feat) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (all bins) and denormalised magnitude of an STFT: |X| clipped to the
    [−50, +30] dB range of the authors' linear normalisation (PAPER_FACTS §3.1)."""
    norm = audio.normalise_linear(np.abs(stft), feat).astype(np.float64)
    return norm, audio.denormalise_linear(norm, feat).astype(np.float64)


# --------------------------------------------------------------------------------------
# The oracles
# --------------------------------------------------------------------------------------


def ideal_binary_mask(target_unscaled, noise_unscaled, cfg, *, normalise_window=False):
    """IBM-gt exactly as ``P/TestIBM.py`` (PAPER_FACTS §5, §2.6 "Exceptions").

    1. mixture = s1 + s2 of the **unscaled** signals (no 0.999 rescale);
    2. Ŝ1, Ŝ2, Ŝmix = normalised linear spectra (``audio.linear_stft`` → dB →
       [0, 1], all 513 bins) of s1, s2 and the mixture;
    3. magnitude = denormalise(Ŝmix), i.e. |mixture STFT| clipped to [−50, +30] dB;
    4. the units where Ŝ1 < Ŝ2 (strict: ties — e.g. both at the 0 floor — are kept)
       are multiplied by :data:`IBM_GAIN` = 1e-4 (−80 dB);
    5. phase = ground-truth phase of s1; :func:`~.resynthesis.istft_paper`;
    6. the ``T·256 + 1024`` samples are cut to ``len(s1)`` (the Matlab evaluation
       truncated to ``length(source)``; the tail holds only ISTFT overhang).

    Parameters
    ----------
    target_unscaled : array_like, shape (L,)
        s1, the saved-audio target (768-zero lead-in, L a multiple of 256), e.g. Chapter
        1's ``NNN_source.wav``.
    noise_unscaled : array_like, shape (L,)
        s2 after tiling and the 0.5-peak gain, before the mixture rescale, e.g.
        ``NNN_noise.wav / mixture_scale``.
    cfg : FeatureConfig or Profile
    normalise_window : bool, default False
        Use the normalised ISTFT instead of the authors' (≈ 1.5 gain).

    Returns
    -------
    numpy.ndarray, float64, shape (L,)

    Used in: Chapter 4 (04_baselines)
    """
    feat = _features(cfg)
    s1 = _signal(target_unscaled, "target_unscaled")
    s2 = _signal(noise_unscaled, "noise_unscaled")
    if s1.shape != s2.shape:
        raise ValueError(
            f"target_unscaled ({s1.shape[0]} samples) and noise_unscaled ({s2.shape[0]}) "
            "must have the same length"
        )
    x1 = audio.linear_stft(s1, feat)
    norm1, _ = _clipped_linear(x1, feat)
    norm2, _ = _clipped_linear(audio.linear_stft(s2, feat), feat)
    _, magnitude = _clipped_linear(audio.linear_stft(s1 + s2, feat), feat)
    masked = norm1 < norm2
    magnitude[masked] *= IBM_GAIN
    wav = istft_paper(magnitude, np.angle(x1), feat, normalise_window=normalise_window)
    return match_length(wav, s1.shape[0])


def proposed_res_gt(mel_norm, target_unscaled, cfg, *, normalise_window=False):
    """Proposed-res-gt, the commented block of ``P/TestIBM.py`` (PAPER_FACTS §5).

    With W the (80, 513) mel basis and W⁺ its pseudo-inverse:

    1. Y_lin = |linear_stft(s1)| after normalise → denormalise (clipped to [−50, +30]
       dB, 513 bins) of the **unscaled** target s1;
    2. residual R = Y_lin − clip₊(W⁺ (W · Y_lin)): what the mel bands cannot carry
       (fine harmonic structure, bins outside 125–7600 Hz);
    3. Ŷ_amp = denormalise_mel(``mel_norm``); Y̆ = clip₊(clip₊(W⁺ Ŷ_amp) + R);
    4. ground-truth phase of s1, :func:`~.resynthesis.istft_paper`, cut to ``len(s1)``.

    In the paper ``mel_norm`` is the **encoder's estimated mel** (``Ind_i_est_mel.npy``):
    the row measures the encoder alone, with the vocoder replaced by "perfect" residual
    and phase. Passing the ground-truth mel of the target gives the oracle of oracles
    (the runner's ``proposed-res-gt`` folder); later chapters pass the estimate.

    The encoder's target mel — hence the estimate, and the ground truth the runner uses —
    is r9y9's lws-window mel of the **scaled** target ``scale · s1`` (``target[768:]``),
    while Y_lin and R come from the unscaled s1 with the periodic-Hann STFT: the mel
    part of Y̆ is therefore a little lower in level than the residual part (the mixture
    scale, 0.67–1, times the lws/Hann window gain ratio, ≈ 0.8–0.9). This follows the
    authors' code; the paper's text (W of 80×512, R from the ground-truth mel) differs
    (PAPER_FACTS §5 [!]). Even with a matching mel the result is not exactly s1: the
    clipping of both normalisations and of W⁺'s negative side lobes changes low-level
    units.

    Parameters
    ----------
    mel_norm : array_like, shape (T, num_mels)
        Normalised mel, T = L / 256 frames (``audio.encoder_features(target)[1]`` or an
        encoder estimate).
    target_unscaled : array_like, shape (L,)
        s1 (``NNN_source.wav``), L a multiple of 256.
    cfg : FeatureConfig or Profile
    normalise_window : bool, default False
        Use the normalised ISTFT instead of the authors' (≈ 1.5 gain).

    Returns
    -------
    numpy.ndarray, float64, shape (L,)

    Raises
    ------
    ValueError
        If ``mel_norm`` does not have ``len(s1) // 256`` frames of ``num_mels`` bands.

    Used in: Chapter 4 (04_baselines), Chapter 5 (05_evaluation)
    """
    feat = _features(cfg)
    s1 = _signal(target_unscaled, "target_unscaled")
    x1 = audio.linear_stft(s1, feat)
    mel = np.asarray(mel_norm)
    if mel.ndim != 2 or mel.shape != (x1.shape[0], feat.num_mels):
        raise ValueError(
            f"mel_norm must have shape ({x1.shape[0]}, {feat.num_mels}) (one frame per 256 "
            f"samples of the {s1.shape[0]}-sample target); got shape {mel.shape}"
        )
    basis = audio.mel_basis(feat)
    pinv = mel_pseudo_inverse(feat)
    _, y_lin = _clipped_linear(x1, feat)
    residual = y_lin - np.clip((y_lin @ basis.T) @ pinv.T, 0.0, None)
    magnitude = np.clip(mel_to_linear(mel, feat) + residual, 0.0, None)
    wav = istft_paper(magnitude, np.angle(x1), feat, normalise_window=normalise_window)
    return match_length(wav, s1.shape[0])


def mel_griffin_lim(mel_norm, cfg, n_iter: int = 100, seed=0, *, method="paper", length=None):
    """Ground-truth mel → linear (W⁺, clipped) → Griffin–Lim: the vocoder-free baseline.

    The mel → linear step of :func:`~.resynthesis.mel_to_linear`, then
    :func:`~.resynthesis.griffin_lim_paper` (the authors' B1 procedure). Any vocoder
    fed the same mel should sound better than this.

    Parameters
    ----------
    mel_norm : array_like, shape (T, num_mels)
        Normalised mel (the runner uses the encoder's target: mel of ``target[768:]``).
    cfg : FeatureConfig or Profile
    n_iter : int, default 100
    seed : int or numpy.random.Generator, default 0
        Random start of Griffin–Lim.
    method : {"paper", "librosa"}, default "paper"
        See :func:`~.resynthesis.griffin_lim_paper`.
    length : int, optional
        Cut/pad the result to this many samples (e.g. ``len(source)``); default: keep
        ``T·256 + 1024``.

    Returns
    -------
    numpy.ndarray, float64

    Used in: Chapter 4 (04_baselines), Chapter 5 (05_evaluation)
    """
    feat = _features(cfg)
    wav = griffin_lim_paper(mel_to_linear(mel_norm, feat), feat, n_iter, seed, method=method)
    return wav if length is None else match_length(wav, length)


def target_mel(target_scaled, cfg) -> np.ndarray:
    """The encoder's target mel of a (scaled) target: ``mel_spectrogram(target[768:])``.

    Exactly as the encoder's training targets are made (``audio.encoder_features``,
    PAPER_FACTS §3.2 last bullets), so frame m covers samples ``[256 m, 256 m + 1024)``
    of the target and there are ``len(target) / 256`` frames.

    Parameters
    ----------
    target_scaled : array_like, shape (L,)
        ``scale · s1`` (Chapter 1's ``NNN_target.wav``), L a multiple of 256.
    cfg : FeatureConfig or Profile

    Returns
    -------
    numpy.ndarray, float32, shape (L / 256, num_mels)

    Used in: Chapter 4 (04_baselines)
    """
    return audio.encoder_features(target_scaled, _features(cfg))[1]


# --------------------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------------------


def _compute(method: str, sig: dict, row, feat) -> np.ndarray:
    length = sig["source"].shape[0]
    if method == "input":
        return sig["mixture"]
    if method == "ibm-gt":
        noise_unscaled = sig["noise"].astype(np.float64) / float(row["mixture_scale"])
        return ideal_binary_mask(sig["source"], noise_unscaled, feat)
    if method == "proposed-res-gt":
        return proposed_res_gt(target_mel(sig["target"], feat), sig["source"], feat)
    if method == "mel-gl":
        return mel_griffin_lim(
            target_mel(sig["target"], feat), feat, seed=int(row["pair"]), length=length
        )
    raise AssertionError(method)  # checked by the caller


_NEEDS = {
    "input": ("mixture", "source"),
    "ibm-gt": ("source", "noise"),
    "proposed-res-gt": ("source", "target"),
    "mel-gl": ("source", "target"),
}

TIMING_COLUMNS = ("pair", "seconds", "audio_seconds")


def _read_timing(path: Path) -> dict[int, dict]:
    if not path.exists():
        return {}
    frame = pd.read_csv(path)
    missing = [c for c in TIMING_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; expected {list(TIMING_COLUMNS)}")
    return {int(r["pair"]): {c: r[c] for c in TIMING_COLUMNS} for _, r in frame.iterrows()}


def _write_timing(path: Path, rows: dict[int, dict]) -> None:
    frame = pd.DataFrame([rows[p] for p in sorted(rows)], columns=list(TIMING_COLUMNS))
    frame["pair"] = frame["pair"].astype(int)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def write_oracle_outputs(
    paths: RunPaths,
    cfg,
    methods=("input", "ibm-gt", "proposed-res-gt", "mel-gl"),
    progress: bool = True,
) -> pd.DataFrame:
    """Compute the oracle outputs of every test pair and write them (resumable).

    Reads Chapter 1's manifest (``paths.test_manifest``) and test WAVs
    (``paths.test_audio/NNN_{source,target,noise,mixture}.wav``). For each pair p and
    method m it writes ``paths.outputs(m)/<p:03d>.wav`` (float WAV, atomic, length of
    ``NNN_source.wav``) and keeps ``paths.outputs(m)/timing.csv`` (``pair``, ``seconds``
    of computation excluding file I/O, ``audio_seconds`` of output) up to date after
    every pair. Pairs whose output exists are skipped and their old timing row kept,
    so an interrupted run continues where it stopped; delete a folder to recompute it.

    The signals used (PAPER_FACTS §2.6, §5): unscaled s1 = ``NNN_source.wav``; unscaled
    s2 = ``NNN_noise.wav / mixture_scale`` (IBM-gt); the mel is that of the scaled
    ``NNN_target.wav`` as the encoder's targets are made (:func:`target_mel`);
    ``input`` is ``NNN_mixture.wav`` unchanged. Griffin–Lim (``mel-gl``) is seeded with
    the pair number.

    Parameters
    ----------
    paths : RunPaths
    cfg : Profile or FeatureConfig
        Uses the feature settings.
    methods : sequence of str
        Keys of :data:`ORACLES`.
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
        (01_data_simulation) first").
    ValueError
        For an unknown method, or a test WAV whose length differs from the manifest.

    Used in: Chapter 4 (04_baselines)
    """
    feat = _features(cfg)
    methods = list(methods)
    unknown = [m for m in methods if m not in ORACLES]
    if unknown:
        raise ValueError(f"unknown oracle method(s) {unknown}; expected some of {list(ORACLES)}")
    manifest = read_test_manifest(require_artifact(paths.test_manifest, CHAPTER_ONE))
    test_audio = require_artifact(paths.test_audio, CHAPTER_ONE)

    # Outputs made from another test set (Chapter 1 rerun on a rebuilt corpus) are removed.
    made_from = file_sha1(paths.test_manifest)
    for method in methods:
        reset_if_stale(paths.outputs(method), made_from, pattern="[0-9]*.wav")
        if not any(paths.outputs(method).glob("[0-9]*.wav")):
            (paths.outputs(method) / "timing.csv").unlink(missing_ok=True)
    timing_paths = {m: paths.outputs(m) / "timing.csv" for m in methods}
    timings = {m: _read_timing(timing_paths[m]) for m in methods}
    records = []
    rows = manifest.to_dict("records")
    iterator = rows
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(rows, desc="oracles", unit="pair")
    for row in iterator:
        pair = int(row["pair"])
        outputs = {m: paths.outputs(m) / f"{pair:03d}.wav" for m in methods}
        todo = [m for m in methods if not outputs[m].exists()]
        signals: dict[str, np.ndarray] = {}
        for kind in sorted({k for m in todo for k in _NEEDS[m]}):
            wav_path = require_artifact(test_audio / f"{pair:03d}_{kind}.wav", CHAPTER_ONE)
            signals[kind] = audio.load_wav(wav_path, feat.sample_rate)
            if signals[kind].shape[0] != int(row["num_samples"]):
                raise ValueError(
                    f"{wav_path} has {signals[kind].shape[0]} samples, the manifest says "
                    f"{int(row['num_samples'])}; rerun Chapter 1 (01_data_simulation)"
                )
        for method in methods:
            seconds = np.nan
            if method in todo:
                start = time.perf_counter()
                wav = _compute(method, signals, row, feat)
                seconds = time.perf_counter() - start
                audio.save_wav(outputs[method], wav, feat.sample_rate, subtype="FLOAT")
                timings[method][pair] = {
                    "pair": pair,
                    "seconds": seconds,
                    "audio_seconds": wav.shape[0] / feat.sample_rate,
                }
                _write_timing(timing_paths[method], timings[method])
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
