"""B1 and B1-gt: the linear encoder's estimate turned into audio (original_code.md#oc-b1-oracles).

The paper's baseline B1 is the same encoder as the proposed system, trained to estimate
the target's **normalised 512-bin linear spectrum** instead of its mel (Chapter 2's
``encoder/b1/test/NNN.npy``, shape (T, 512), values in [0, 1]). The authors' ``P/Test.py``
turns the estimate into a waveform in two ways:

* **B1** (``GriffinMode = 1``): phase from 100 Griffin–Lim iterations — a real system;
* **B1-gt** (``GriffinMode = 0``, the shipped default): the ground-truth phase of the
  unscaled target s1 — an oracle for the phase, which measures the magnitude estimate.

Both start from the same magnitude, :func:`linear_magnitude`: the library's inverse of
the linear normalisation (``audio.denormalise_linear``: x·80 − 50 dB → amplitude),
with a zero Nyquist bin appended (513 bins), exactly as the authors did.

**Lengths and the lead-in.** Chapter 1's signals are in r9y9's saved-audio layout:
768 zeros, the utterance, zeros up to a multiple of 256 (L samples). Frame m of the
encoder's linear spectrum covers samples ``[256 m, 256 m + 1024)`` of that layout, so
there are T = L / 256 frames. Both resyntheses put frame m back at sample ``256 m``,
so their outputs start on the same sample as ``NNN_source.wav`` (lead-in included: no
shift is needed) and have ``T·256 + 1024`` samples; the last 1024 are only the overhang
of the final frames. As the paper's Matlab evaluation truncated its ISTFT outputs to
``length(source)`` (original_code.md#oc-evaluation), the outputs are cut to L with
:func:`~.resynthesis.match_length`.

**Scale.** The encoder's target is the *scaled* target ``scale · s1`` (``NNN_target.wav``,
scale 0.67–1 from the mixture's peak normalisation), so B1 and B1-gt estimate that
level; the phase comes from the unscaled s1 (the scale does not change a phase). Both
keep the ≈ 1.5 gain of the authors' ISTFT (:mod:`.resynthesis`).
"""

from __future__ import annotations

import numpy as np

from .. import audio
from .resynthesis import _as_signal, _features, griffin_lim_paper, istft_paper, match_length

__all__ = ["linear_magnitude", "b1_griffin_lim", "b1_true_phase"]


def linear_magnitude(linear_norm, features) -> np.ndarray:
    """The encoder's normalised linear spectrum → STFT magnitude, as B1 used it.

    ``audio.denormalise_linear`` (values clipped to [0, 1] ↦ [−50, +30] dB ↦ amplitude
    10^(dB/20) in [0.00316, 31.6]), then zero bins appended up to ``fft_size // 2 + 1``
    (the encoder estimates ``linear_bins`` = 512 bins; the Nyquist bin is set to 0).
    For ``x = audio.linear_spectrogram(s)`` the result is ``|linear_stft(s)|`` clipped to
    [−50, +30] dB, with a zero Nyquist bin.

    Parameters
    ----------
    linear_norm : array_like, shape (T, linear_bins)
        Normalised linear spectrum, e.g. ``encoder/b1/test/NNN.npy``.
    features : FeatureConfig or Profile

    Returns
    -------
    numpy.ndarray, float64, shape (T, fft_size // 2 + 1)

    Raises
    ------
    ValueError
        If ``linear_norm`` is not (frames >= 1, ``linear_bins``) or holds NaN/inf.
    """
    feat = _features(features)
    arr = np.asarray(linear_norm)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] != feat.linear_bins:
        raise ValueError(
            f"linear_norm must have shape (frames, {feat.linear_bins}) (the encoder's "
            f"normalised linear spectrum), frames >= 1; got shape {arr.shape}"
        )
    amplitude = audio.denormalise_linear(arr.astype(np.float64), feat)
    n_bins = feat.fft_size // 2 + 1
    return np.pad(amplitude, ((0, 0), (0, n_bins - feat.linear_bins)))


def b1_griffin_lim(
    linear_norm, features, n_iter: int = 100, seed=0, *, method="paper", length=None
):
    """B1: the estimated linear magnitude with a Griffin–Lim phase (``P/Test.py``).

    :func:`linear_magnitude`, then :func:`~.resynthesis.griffin_lim_paper` (the authors'
    100 iterations, symmetric Hann, hop 256), seeded where the original was not.

    Parameters
    ----------
    linear_norm : array_like, shape (T, linear_bins)
        Normalised linear spectrum (``encoder/b1/test/NNN.npy``).
    features : FeatureConfig or Profile
    n_iter : int, default 100
    seed : int or numpy.random.Generator, default 0
        Random start of Griffin–Lim (the runner uses the pair number).
    method : {"paper", "librosa"}, default "paper"
        See :func:`~.resynthesis.griffin_lim_paper`.
    length : int, optional
        Cut/pad to this many samples (the runner: ``len(source)``, see the module
        docstring); default: keep all ``T·256 + 1024``.

    Returns
    -------
    numpy.ndarray, float64, shape (T·256 + 1024,) or (length,)
    """
    feat = _features(features)
    wav = griffin_lim_paper(linear_magnitude(linear_norm, feat), feat, n_iter, seed, method=method)
    return wav if length is None else match_length(wav, length)


def b1_true_phase(linear_norm, target_unscaled, features, *, normalise_window=False) -> np.ndarray:
    """B1-gt: the estimated linear magnitude with the target's true phase (``P/Test.py``).

    :func:`linear_magnitude`, the phase of ``audio.linear_stft`` of the **unscaled**
    target s1 (the authors' ``−angle`` of the librosa STFT of that era, see
    original_code.md#oc-b1-oracles), :func:`~.resynthesis.istft_paper`, cut to
    ``len(s1)``.

    Parameters
    ----------
    linear_norm : array_like, shape (L / 256, linear_bins)
        Normalised linear spectrum (``encoder/b1/test/NNN.npy``).
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
        If ``linear_norm`` does not have one frame per 256 samples of s1.
    """
    feat = _features(features)
    s1 = _as_signal(target_unscaled, "target_unscaled")
    phase = np.angle(audio.linear_stft(s1, feat))
    magnitude = linear_magnitude(linear_norm, feat)
    if magnitude.shape[0] != phase.shape[0]:
        raise ValueError(
            f"linear_norm has {magnitude.shape[0]} frames; expected {phase.shape[0]} (one per "
            f"256 samples of the {s1.shape[0]}-sample target)"
        )
    wav = istft_paper(magnitude, phase, feat, normalise_window=normalise_window)
    return match_length(wav, s1.shape[0])
