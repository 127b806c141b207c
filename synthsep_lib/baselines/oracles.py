"""The oracle rows of Table I (and the book's extras): what perfect knowledge could give.

An oracle uses something a real system cannot know — the clean target's phase, the
clean target and noise spectra, or the clean target's mel — so it shows how good a
method *could* be with a perfect estimate (see original_code.md#oc-b1-oracles):

=============================  =====================================================
function                       what it is
=============================  =====================================================
:func:`ideal_binary_mask`      IBM-gt: ideal binary mask on the mixture magnitude,
                               target phase
:func:`proposed_res_gt`        Proposed-res-gt: a mel (the encoder's estimate in the
                               paper) → linear by W⁺ plus the target's residual,
                               target phase
:func:`mel_griffin_lim`        a mel → W⁺ → Griffin–Lim (no vocoder)
=============================  =====================================================

These are pure functions of arrays. The runner that applies them to Chapter 1's test
set and writes ``runs/<profile>/outputs/<method>/`` is
:func:`synthsep_lib.pipeline.signal_methods.write_signal_outputs`; its registry
:data:`~synthsep_lib.pipeline.signal_methods.METHODS` says which signals each method
uses. The ISTFT-based outputs keep the authors' ≈ 1.5 gain (see :mod:`.resynthesis`):
the metrics are scale-invariant or level-normalised.
"""

from __future__ import annotations

import numpy as np

from .. import audio
from .resynthesis import (
    _as_signal,
    _features,
    griffin_lim_paper,
    istft_paper,
    match_length,
    mel_pseudo_inverse,
    mel_to_linear,
)

__all__ = [
    "IBM_GAIN",
    "ideal_binary_mask",
    "proposed_res_gt",
    "mel_griffin_lim",
]

#: Gain of the masked time–frequency units in the authors' IBM (−80 dB).
IBM_GAIN = 1e-4


def _clipped_linear(stft: np.ndarray, feat) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (all bins) and denormalised magnitude of an STFT: |X| clipped to the
    [−50, +30] dB range of the authors' linear normalisation
    (original_code.md#oc-linear-spectrum)."""
    norm = audio.normalise_linear(np.abs(stft), feat).astype(np.float64)
    return norm, audio.denormalise_linear(norm, feat).astype(np.float64)


def _target_and_noise(target_unscaled, noise_unscaled) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as 1-D float arrays; raise unless they have the same length."""
    s1 = _as_signal(target_unscaled, "target_unscaled")
    s2 = _as_signal(noise_unscaled, "noise_unscaled")
    if s1.shape != s2.shape:
        raise ValueError(
            f"target_unscaled ({s1.shape[0]} samples) and noise_unscaled ({s2.shape[0]}) "
            "must have the same length"
        )
    return s1, s2


# --------------------------------------------------------------------------------------
# The oracles
# --------------------------------------------------------------------------------------


def ideal_binary_mask(target_unscaled, noise_unscaled, features, *, normalise_window=False):
    """IBM-gt exactly as ``P/TestIBM.py`` (original_code.md#oc-b1-oracles).

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
    features : FeatureConfig or Profile
    normalise_window : bool, default False
        Use the normalised ISTFT instead of the authors' (≈ 1.5 gain).

    Returns
    -------
    numpy.ndarray, float64, shape (L,)
    """
    feat = _features(features)
    s1, s2 = _target_and_noise(target_unscaled, noise_unscaled)
    x1 = audio.linear_stft(s1, feat)
    norm1, _ = _clipped_linear(x1, feat)  # target, normalised spectrum
    norm2, _ = _clipped_linear(audio.linear_stft(s2, feat), feat)  # noise
    _, magnitude = _clipped_linear(audio.linear_stft(s1 + s2, feat), feat)  # mixture
    noise_dominates = norm1 < norm2
    magnitude[noise_dominates] *= IBM_GAIN  # the mask: −80 dB where the noise is louder
    # the target's phase (the oracle's knowledge), the authors' inverse STFT
    wav = istft_paper(magnitude, np.angle(x1), feat, normalise_window=normalise_window)
    return match_length(wav, s1.shape[0])


def proposed_res_gt(mel_norm, target_unscaled, features, *, normalise_window=False):
    """Proposed-res-gt, the commented block of ``P/TestIBM.py`` (original_code.md#oc-b1-oracles).

    With W the (80, 513) mel basis and W⁺ its pseudo-inverse:

    1. Y_lin = |linear_stft(s1)| after normalise → denormalise (clipped to [−50, +30]
       dB, 513 bins) of the **unscaled** target s1;
    2. residual R = Y_lin − clip₊(W⁺ (W · Y_lin)): what the mel bands cannot carry
       (fine harmonic structure, bins outside 125–7600 Hz);
    3. Ŷ_amp = denormalise_mel(``mel_norm``); Y̆ = clip₊(clip₊(W⁺ Ŷ_amp) + R);
    4. ground-truth phase of s1, :func:`~.resynthesis.istft_paper`, cut to ``len(s1)``.

    In the paper ``mel_norm`` is the **encoder's estimated mel** (``Ind_i_est_mel.npy``):
    the row measures the encoder alone, with the vocoder replaced by "perfect" residual
    and phase (the runner's ``proposed-res-gt``, from ``encoder/proposed/test/NNN.npy``).
    Passing the encoder's target mel (:func:`synthsep_lib.audio.target_mel`) instead gives the ceiling of
    the mel path (the book's extra oracle ``mel-res-gt``).

    The encoder's target mel — hence its estimate, and the true mel of ``mel-res-gt`` —
    is r9y9's lws-window mel of the **scaled** target ``scale · s1`` (``target[768:]``),
    while Y_lin and R come from the unscaled s1 with the periodic-Hann STFT: the mel
    part of Y̆ is therefore a little lower in level than the residual part (the mixture
    scale, 0.67–1, times the lws/Hann window gain ratio, ≈ 0.8–0.9). This follows the
    authors' code; the paper's text (W of 80×512, R from the ground-truth mel) differs
    (see original_code.md#oc-b1-oracles). Even with a matching mel the result is not exactly s1: the
    clipping of both normalisations and of W⁺'s negative side lobes changes low-level
    units.

    Parameters
    ----------
    mel_norm : array_like, shape (T, num_mels)
        Normalised mel, T = L / 256 frames (``audio.encoder_features(target)[1]`` or an
        encoder estimate).
    target_unscaled : array_like, shape (L,)
        s1 (``NNN_source.wav``), L a multiple of 256.
    features : FeatureConfig or Profile
    normalise_window : bool, default False
        Use the normalised ISTFT instead of the authors' (≈ 1.5 gain).

    Returns
    -------
    numpy.ndarray, float64, shape (L,)

    Raises
    ------
    ValueError
        If ``mel_norm`` does not have ``len(s1) // 256`` frames of ``num_mels`` bands.
    """
    feat = _features(features)
    s1 = _as_signal(target_unscaled, "target_unscaled")
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


def mel_griffin_lim(mel_norm, features, n_iter: int = 100, seed=0, *, method="paper", length=None):
    """Ground-truth mel → linear (W⁺, clipped) → Griffin–Lim: the vocoder-free baseline.

    The mel → linear step of :func:`~.resynthesis.mel_to_linear`, then
    :func:`~.resynthesis.griffin_lim_paper` (the authors' B1 procedure). Any vocoder
    fed the same mel should sound better than this.

    Parameters
    ----------
    mel_norm : array_like, shape (T, num_mels)
        Normalised mel (the runner uses the encoder's target: mel of ``target[768:]``).
    features : FeatureConfig or Profile
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
    """
    feat = _features(features)
    wav = griffin_lim_paper(mel_to_linear(mel_norm, feat), feat, n_iter, seed, method=method)
    return wav if length is None else match_length(wav, length)
