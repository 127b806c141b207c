"""From spectra back to waveforms, as the authors did it (see original_code.md#oc-resynthesis).

Every waveform that the paper's Python code makes from a linear-frequency spectrum —
B1 (Griffin–Lim), B1-gt, IBM-gt and Proposed-res-gt (ground-truth phase) — goes through
one inverse STFT, ``istft_for_reconstruction`` of the authors' ``P/audio.py``:

* frame m is ``irfft`` of a 513-bin spectrum, multiplied by a **symmetric** Hann window
  ``np.hanning(1024)`` (``0.5 - 0.5 cos(2πn/1023)``) and added at sample ``256 m``;
* there is **no** division by the overlap-added window, and the output has
  ``T·256 + 1024`` samples (the last 256 are always zero).

The spectra come from a *periodic* Hann analysis (``linear_stft``), so the round trip
``istft_paper(|X|, ∠X)`` returns the signal multiplied by the overlap-added product of the
two windows, ``Σ_m w_sym[n − 256m] · w_per[n − 256m]`` ≈ **1.4993** (between 1.49923 and
1.49930 depending on n; with the symmetric window on both sides, as inside Griffin–Lim,
≈ 1.49847–1.49860, see original_code.md#oc-resynthesis). This ≈ 1.5 gain (+3.5 dB) is
harmless for the paper's metrics: STOI, the 257-tap-filter SDR and SI-SDR are
scale-invariant and PESQ level-aligns both signals first. It matters only when levels are compared directly, or
when a float WAV peaks above 1 (the book writes 32-bit float WAVs, which keep it).
``normalise_window=True`` gives the textbook inverse instead (exact reconstruction
except at the first and last ~120 samples, where the window sum falls towards 0).

Griffin–Lim is the authors' ``reconstruct_signal_griffin_lim``: a white-noise start, 100
iterations of "analyse with the symmetric Hann window, keep the phase, impose the
magnitude, inverse-transform with :func:`istft_paper`".
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import audio
from ..config import FeatureConfig, section

__all__ = [
    "overlap_add_window_sum",
    "istft_paper",
    "stft_paper",
    "griffin_lim_paper",
    "GRIFFIN_LIM_METHODS",
    "mel_pseudo_inverse",
    "mel_to_linear",
    "match_length",
]

#: Griffin–Lim implementations offered by :func:`griffin_lim_paper`.
GRIFFIN_LIM_METHODS = ("paper", "librosa")

# normalise_window divides by max(window sum, 1 % of its plateau): a modified
# (inconsistent) spectrum divided by the ~1e-10 sum at the first/last samples would
# come back with spikes of ~1e3 there (librosa's center=False ISTFT does exactly that).
_WINDOW_SUM_FLOOR = 0.01

# Frames per irfft/rfft call: bounds temporary memory for long signals (as in audio.py).
_CHUNK_FRAMES = 256


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _features(features) -> FeatureConfig:
    """The FeatureConfig given, or a Profile's (checked: the FFT size a multiple of the hop)."""
    try:
        feat = section(features, FeatureConfig)
    except TypeError as err:
        raise ValueError(str(err)) from None
    if feat.hop_size <= 0 or feat.fft_size <= 0 or feat.fft_size % feat.hop_size != 0:
        raise ValueError(
            f"fft_size ({feat.fft_size}) must be a positive multiple of hop_size ({feat.hop_size})"
        )
    return feat


def _as_spectrum(x, name: str, feat: FeatureConfig) -> np.ndarray:
    """Return ``x`` as a finite float64 (T, fft/2+1) array; a (T, fft/2) one gets a zero
    Nyquist bin appended (the encoder's 512-bin linear spectrum,
    original_code.md#oc-b1-oracles)."""
    arr = np.asarray(x)
    if np.iscomplexobj(arr) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    n_bins = feat.fft_size // 2 + 1
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] not in (n_bins - 1, n_bins):
        raise ValueError(
            f"{name} must have shape (frames, {n_bins}) (or (frames, {n_bins - 1}) without the "
            f"Nyquist bin), frames >= 1; got shape {arr.shape}"
        )
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; expected finite values")
    if arr.shape[1] == n_bins - 1:
        arr = np.concatenate([arr, np.zeros((arr.shape[0], 1))], axis=1)
    return arr


def _as_signal(wav, name: str) -> np.ndarray:
    return audio.as_signal(wav, name).astype(np.float64, copy=False)


@functools.lru_cache(maxsize=8)
def _symmetric_hann(fft_size: int) -> np.ndarray:
    win = np.hanning(fft_size).astype(np.float64)
    win.setflags(write=False)
    return win


@functools.lru_cache(maxsize=8)
def _periodic_hann(fft_size: int) -> np.ndarray:
    n = np.arange(fft_size, dtype=np.float64)
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / fft_size)
    win.setflags(write=False)
    return win


def _overlap_add(frames: np.ndarray, out: np.ndarray, first: int, hop: int) -> None:
    """Add ``frames`` (k, fft) into ``out`` at samples ``(first + i)·hop``, vectorised.

    The frame length is a multiple R of the hop, so the frames are added as R shifted
    copies of a (k·hop,) array: column block r of frame i lands at ``(first + i + r)·hop``.
    """
    k, fft = frames.shape
    for r in range(fft // hop):
        start = (first + r) * hop
        out[start : start + k * hop] += frames[:, r * hop : (r + 1) * hop].reshape(-1)


# --------------------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------------------


def overlap_add_window_sum(n_frames: int, features, analysis: str = "periodic") -> np.ndarray:
    """``Σ_m w_s[n − hop·m] · w_a[n − hop·m]`` over ``n_frames`` frames: the gain of
    :func:`istft_paper` on an unmodified STFT.

    Parameters
    ----------
    n_frames : int
        T >= 1.
    features : FeatureConfig or Profile
    analysis : {"periodic", "symmetric"}
        The analysis window w_a: periodic Hann (``linear_stft``, the ground-truth-phase
        systems) or symmetric Hann (:func:`stft_paper`, inside Griffin–Lim). The
        synthesis window w_s is always the symmetric Hann.

    Returns
    -------
    numpy.ndarray, float64, shape (n_frames·hop + fft_size,)
        ≈ 1.4993 (periodic) or ≈ 1.4985 (symmetric) away from the first and last
        ``fft_size - hop`` samples; ramps to 0 at both ends; the last ``hop`` samples are 0.
    """
    feat = _features(features)
    n_frames = int(n_frames)
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1; got {n_frames}")
    if analysis == "periodic":
        w_a = _periodic_hann(feat.fft_size)
    elif analysis == "symmetric":
        w_a = _symmetric_hann(feat.fft_size)
    else:
        raise ValueError(f"analysis must be 'periodic' or 'symmetric'; got {analysis!r}")
    product = _symmetric_hann(feat.fft_size) * w_a
    out = np.zeros(n_frames * feat.hop_size + feat.fft_size)
    _overlap_add(np.broadcast_to(product, (n_frames, feat.fft_size)), out, 0, feat.hop_size)
    return out


# --------------------------------------------------------------------------------------
# STFT / ISTFT
# --------------------------------------------------------------------------------------


def istft_paper(magnitude, phase, features, *, normalise_window: bool = False) -> np.ndarray:
    """The authors' inverse STFT (``istft_for_reconstruction``, original_code.md#oc-resynthesis).

    ``y[n] = Σ_m w_s[n − 256 m] · irfft_1024(|Y_m| e^{jφ_m})[n − 256 m]`` with
    ``w_s = np.hanning(1024)`` (symmetric Hann) and **no** window-sum normalisation, so
    an unmodified periodic-Hann STFT comes back multiplied by
    :func:`overlap_add_window_sum` ≈ 1.4993 (module docstring: harmless for the
    scale-invariant and level-normalised metrics of the paper). Frame m is placed at
    sample ``256 m``, the framing of ``audio.linear_stft``.

    Parameters
    ----------
    magnitude : array_like, shape (T, 513) or (T, 512)
        Linear STFT magnitudes |Y| (frames as rows). A 512-bin input (the encoder's
        linear spectrum without the Nyquist bin) gets a zero Nyquist bin, as in B1.
    phase : array_like, same shape as ``magnitude``
        Phase in radians, numpy ``rfft`` convention (``np.angle(audio.linear_stft(x))``).
    features : FeatureConfig or Profile
        Uses ``fft_size`` (1024) and ``hop_size`` (256).
    normalise_window : bool, default False
        False: the authors' ISTFT (gain ≈ 1.5). True: divide by
        :func:`overlap_add_window_sum` with the periodic-Hann analysis window, i.e. a
        proper inverse of ``audio.linear_stft``, except that the divisor is floored at 1 %
        of its plateau (≈ 0.015) so that the first and last ~120 samples, where the
        window sum falls towards 0, are tapered instead of divided by ~1e-10 (which would
        turn any modification of the spectrum into huge spikes there).
        ``istft_paper(|X|, ∠X, normalise_window=True)[:L]`` equals the signal to ~1e-12
        between those edge regions (in the saved-audio layout the first 768 samples are
        zeros anyway).

    Returns
    -------
    numpy.ndarray, float64, shape (T·256 + 1024,)
        The last 256 samples are always 0 (no frame reaches them). For a spectrum of an
        L-sample signal (T = L/256), samples ``[0, L)`` are the signal; trim with
        :func:`match_length`, as the paper's evaluation did.

    Raises
    ------
    ValueError
        Wrong shapes, non-finite values or a bad ``features``.
    """
    feat = _features(features)
    if np.shape(magnitude) != np.shape(phase):
        raise ValueError(
            f"magnitude {np.shape(magnitude)} and phase {np.shape(phase)} must have the same shape"
        )
    mag = _as_spectrum(magnitude, "magnitude", feat)
    ph = _as_spectrum(phase, "phase", feat)
    n_frames, hop, fft = mag.shape[0], feat.hop_size, feat.fft_size
    window = _symmetric_hann(fft)
    out = np.zeros(n_frames * hop + fft)
    for start in range(0, n_frames, _CHUNK_FRAMES):
        stop = min(start + _CHUNK_FRAMES, n_frames)
        spec = mag[start:stop] * np.exp(1j * ph[start:stop])
        frames = np.fft.irfft(spec, n=fft, axis=1) * window
        _overlap_add(frames, out, start, hop)
    if normalise_window:
        total = overlap_add_window_sum(n_frames, feat, "periodic")
        floor = _WINDOW_SUM_FLOOR * float(total.max())
        out /= np.maximum(total, floor)
    return out


def stft_paper(wav, features) -> np.ndarray:
    """The authors' Griffin–Lim analysis STFT (``stft_for_reconstruction``).

    See original_code.md#oc-resynthesis.

    Frames start at ``i = 0, 256, …`` while ``i < len(wav) − 1024`` (so a signal of
    ``T·256 + 1024`` samples has exactly T frames and its last 256 samples are never
    analysed), are multiplied by the symmetric Hann ``np.hanning(1024)`` and transformed
    with ``rfft``. No padding.

    Parameters
    ----------
    wav : array_like, shape (n,)
        Finite samples, ``n > fft_size``.
    features : FeatureConfig or Profile

    Returns
    -------
    numpy.ndarray, complex128, shape (ceil((n − 1024) / 256), 513)
    """
    feat = _features(features)
    x = _as_signal(wav, "wav")
    hop, fft = feat.hop_size, feat.fft_size
    if x.shape[0] <= fft:
        raise ValueError(f"wav has {x.shape[0]} samples; expected more than fft_size = {fft}")
    n_frames = -(-(x.shape[0] - fft) // hop)
    frames = sliding_window_view(x, fft)[::hop][:n_frames]
    window = _symmetric_hann(fft)
    out = np.empty((n_frames, fft // 2 + 1), dtype=np.complex128)
    for start in range(0, n_frames, _CHUNK_FRAMES):
        out[start : start + _CHUNK_FRAMES] = np.fft.rfft(
            frames[start : start + _CHUNK_FRAMES] * window, axis=1
        )
    return out


# --------------------------------------------------------------------------------------
# Griffin–Lim
# --------------------------------------------------------------------------------------


def griffin_lim_paper(
    magnitude, features, n_iter: int = 100, rng=None, *, method: str = "paper"
) -> np.ndarray:
    """Griffin–Lim phase reconstruction as in the authors' B1 (original_code.md#oc-resynthesis).

    ``method="paper"`` (default) is the authors' ``reconstruct_signal_griffin_lim``,
    vectorised: x ~ N(0, 1) of length ``T·256 + 1024``; ``n_iter`` times:
    ``X = stft_paper(x)`` (symmetric Hann, T frames) → keep ``∠X`` → impose
    ``magnitude`` → ``x = istft_paper(...)`` (unnormalised, gain ≈ 1.5). Only the phase
    of each iterate is used, so the gain changes nothing but the level of the result.
    It is the default because it is the procedure that produced B1's numbers; vectorised,
    it takes ≈ 0.3 s per second of audio for 100 iterations on one CPU core.
    ``method="librosa"`` runs ``librosa.griffinlim`` on the same framing instead
    (≈ 0.2 s per second of audio): a well-maintained equivalent, not a bit-exact one
    (:func:`_griffin_lim_librosa` lists the differences).

    The original was **unseeded** (``np.random.randn``); here the start is drawn from a
    seeded numpy ``Generator`` so results are reproducible.

    Parameters
    ----------
    magnitude : array_like, shape (T, 513) or (T, 512)
        Target linear magnitude (frames as rows); 512 bins get a zero Nyquist bin.
    features : FeatureConfig or Profile
    n_iter : int, default 100
        Iterations (100 in the paper), >= 1. With the same ``rng`` seed, the result for
        ``n_iter = k`` is the k-th iterate of a longer run (the start is the same).
    rng : numpy.random.Generator or int, optional
        Source of the random start; an int is a seed; None means seed 0 (reproducible).
    method : {"paper", "librosa"}, default "paper"

    Returns
    -------
    numpy.ndarray, float64, shape (T·256 + 1024,)
        Trim to the reference length with :func:`match_length`.
    """
    feat = _features(features)
    mag, n_iter, rng = _griffin_lim_arguments(magnitude, feat, n_iter, rng, method)
    if method == "librosa":
        return _griffin_lim_librosa(mag, feat, n_iter, rng)
    x = rng.standard_normal(mag.shape[0] * feat.hop_size + feat.fft_size)  # white-noise start
    for _ in range(n_iter):
        # keep the phase of the current estimate, impose the target magnitude
        x = istft_paper(mag, np.angle(stft_paper(x, feat)), feat)
    return x


def _griffin_lim_arguments(magnitude, feat: FeatureConfig, n_iter, rng, method: str):
    """Validated ``(magnitude (T, 513), n_iter, Generator)`` for :func:`griffin_lim_paper`."""
    mag = _as_spectrum(magnitude, "magnitude", feat)
    n_iter = int(n_iter)
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1; got {n_iter}")
    if method not in GRIFFIN_LIM_METHODS:
        raise ValueError(f"method must be one of {GRIFFIN_LIM_METHODS}; got {method!r}")
    if rng is None:
        rng = 0
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return mag, n_iter, rng


def _griffin_lim_librosa(
    mag: np.ndarray, feat: FeatureConfig, n_iter: int, rng: np.random.Generator
) -> np.ndarray:
    """``librosa.griffinlim`` laid out on the paper's framing (``method="librosa"``).

    ``n_fft = win_length = 1024``, ``hop_length = 256``, the symmetric-Hann window,
    ``momentum=0`` (plain Griffin–Lim, as in the paper), ``center=True``, and the result
    shifted by ``fft_size // 2`` = 512 samples so that its frame m covers the same
    samples ``[256 m, 256 m + 1024)`` as the paper's. It differs from the paper's
    procedure in three details: (a) it starts from random phases on the given magnitude
    instead of white noise; (b) its inverse STFT divides by the overlap-added squared
    window, so its level is ≈ 1/1.5 of the paper variant's; (c) the first 512 and last
    768 samples of the paper's ``T·256 + 1024`` are held at zero (librosa pads there).
    Its spectral convergence after 100 iterations is similar (slightly lower on test
    signals). ``center=False``, the literal match of the paper's framing, is *not* used:
    librosa then divides the first and last samples by a squared-window sum of ~1e-10
    and Griffin–Lim's inconsistent spectra come back with spikes of ~10³ at the edges.
    """
    import librosa

    hop, fft = feat.hop_size, feat.fft_size
    length = mag.shape[0] * hop + fft
    y = librosa.griffinlim(
        mag.T,
        n_iter=n_iter,
        hop_length=hop,
        win_length=fft,
        n_fft=fft,
        window=_symmetric_hann(fft).copy(),
        center=True,
        pad_mode="constant",
        momentum=0.0,
        init="random",
        random_state=rng,
        dtype=np.float64,
    )
    # centred frame m covers y[256 m - 512, 256 m + 512): shift onto the paper's framing
    out = np.zeros(length)
    shift = fft // 2
    n = min(np.asarray(y).shape[0], length - shift)
    out[shift : shift + n] = np.asarray(y, dtype=np.float64)[:n]
    return out


# --------------------------------------------------------------------------------------
# Mel → linear
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _pinv_cached(
    sample_rate: int, fft_size: int, num_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    feat = FeatureConfig(
        sample_rate=sample_rate, fft_size=fft_size, num_mels=num_mels, fmin=fmin, fmax=fmax
    )
    pinv = np.linalg.pinv(audio.mel_basis(feat))
    pinv.setflags(write=False)
    return pinv


def mel_pseudo_inverse(features) -> np.ndarray:
    """W⁺ = ``np.linalg.pinv(mel_basis)``, the authors' mel → linear map.

    See original_code.md#oc-resynthesis.

    Parameters
    ----------
    features : FeatureConfig or Profile

    Returns
    -------
    numpy.ndarray, float64, shape (fft_size // 2 + 1, num_mels)
        Read-only (cached). ``mel_basis @ W⁺`` is the (80, 80) identity.
    """
    feat = _features(features)
    return _pinv_cached(
        int(feat.sample_rate),
        int(feat.fft_size),
        int(feat.num_mels),
        float(feat.fmin),
        float(feat.fmax),
    )


def mel_to_linear(mel_norm, features) -> np.ndarray:
    """Normalised mel spectrum → linear magnitude, as the authors did.

    See original_code.md#oc-resynthesis.

    ``audio.denormalise_mel`` (amplitude 10^((100·x − 80)/20)), then ``W⁺ ·`` each frame,
    then clip at 0. ``W⁺`` is the minimum-norm inverse: it spreads each band's amplitude
    over the band's bins (with small negative side lobes, hence the clip); bins outside
    ``[fmin, fmax]`` (below 6 and above 352 at 22050 Hz/1024) come back as 0 (to
    rounding, ~1e-16). Before
    the clip ``mel_basis @ lin`` equals the mel amplitude exactly; the clip raises it
    slightly where side lobes were negative.

    Parameters
    ----------
    mel_norm : array_like, shape (T, num_mels)
        Normalised mel in [0, 1] (``audio.mel_spectrogram`` or an encoder output);
        values outside are clipped by ``denormalise_mel``.
    features : FeatureConfig or Profile

    Returns
    -------
    numpy.ndarray, float64, shape (T, fft_size // 2 + 1), >= 0
        Linear magnitude on the scale of ``mel_basis``'s input (i.e. of the STFT the mel
        was computed from: lws window for r9y9's mel).
    """
    feat = _features(features)
    arr = np.asarray(mel_norm)
    if arr.ndim != 2 or arr.shape[1] != feat.num_mels or arr.shape[0] < 1:
        raise ValueError(
            f"mel_norm must have shape (frames, {feat.num_mels}); got shape {arr.shape}"
        )
    amplitude = audio.denormalise_mel(np.asarray(arr, dtype=np.float64), feat)
    return np.clip(amplitude @ mel_pseudo_inverse(feat).T, 0.0, None)


# --------------------------------------------------------------------------------------
# Lengths
# --------------------------------------------------------------------------------------


def match_length(wav, length: int) -> np.ndarray:
    """Truncate or zero-pad (at the end) a waveform to ``length`` samples.

    The paper's Matlab evaluation truncated the ISTFT outputs of B1-gt, IBM-gt and the
    WaveNet outputs to ``length(source)`` (original_code.md#oc-evaluation) with no time
    alignment: all these outputs start at the same sample as the source (frame m at
    sample 256 m), so cutting the end is enough. Zero-padding covers the opposite case (an output shorter
    than the reference).

    Parameters
    ----------
    wav : array_like, shape (n,)
    length : int
        Wanted number of samples, >= 0.

    Returns
    -------
    numpy.ndarray, shape (length,), dtype of ``wav``
        A copy.
    """
    arr = np.asarray(wav)
    if arr.ndim != 1:
        raise ValueError(f"wav must be a 1-D array of samples; got shape {arr.shape}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length must be a non-negative integer; got {length!r}")
    length = int(length)
    if arr.shape[0] >= length:
        return arr[:length].copy()
    out = np.zeros(length, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out
