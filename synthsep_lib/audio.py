"""Audio I/O and the paper's two spectral features (PAPER_FACTS §2.1, §3).

Two short-time Fourier transforms live here, because the authors' code uses two:

* the **mel** spectrum is r9y9's ``melspectrogram``: an lws-style STFT (sine-shaped
  analysis window, "perfect reconstruction" framing with 768 zeros before the signal),
  an 80-band Slaney mel filter bank applied to the magnitude, then dB and a [0, 1]
  normalisation. The pretrained WaveNet vocoder was trained on exactly these features.
* the **linear** spectrum is the authors' own: a periodic-Hann STFT of the signal padded
  at the end by 768 zeros (``librosa.stft(..., center=False)``), dB and a different
  [0, 1] normalisation, with the Nyquist bin dropped (512 bins).

Both STFTs are written here with numpy (``sliding_window_view`` framing + ``rfft``);
librosa is used only for the mel filter bank and for resampling. The ``lws`` package is a
test-time reference only and is not imported.

Signals are 1-D float arrays of samples in [-1, 1] at ``cfg.sample_rate`` (22050 Hz).
Spectrograms are stored frames-as-rows: shape ``(frames, bins)``.

Used in: Chapter 1 (01_data_simulation), Chapter 2 (02_encoder), Chapter 3 (03_wavenet_vocoder),
Chapter 4 (04_baselines), Chapter 5 (05_evaluation).
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import librosa
import numpy as np
import scipy.signal
import soundfile as sf
from numpy.lib.stride_tricks import sliding_window_view

from .config import FeatureConfig
from .runs import atomic_path

__all__ = [
    "AudioFileError",
    "load_wav",
    "save_wav",
    "peak_normalise",
    "num_frames",
    "pad_for_frames",
    "prepare_lj_audio",
    "lws_analysis_window",
    "lws_stft",
    "mel_basis",
    "mel_spectrogram",
    "linear_stft",
    "linear_spectrogram",
    "normalise_mel",
    "normalise_linear",
    "denormalise_mel",
    "denormalise_linear",
    "encoder_features",
]

# Frames per FFT call. Bounds the temporary memory of a long signal (256 frames of 1024
# float64 samples = 2 MiB) and keeps the working set in cache: on one core, 256 was
# ~30 % faster than 1024 and ~40 % faster than one call for 60 s of audio. The FFT runs
# in float64: numpy's float32 rfft measured ~1.4x slower here, and gave no gain overall.
_CHUNK_FRAMES = 256

# Subtypes that store floating-point samples: values outside [-1, 1] survive a round trip.
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})

_DEFAULT_CFG = FeatureConfig()


class AudioFileError(ValueError):
    """An audio file is missing, unreadable, corrupt, empty or holds NaN/inf samples.

    The message names the file and what was expected.

    Used in: Chapter 1 (01_data_simulation), Chapter 5 (05_evaluation)
    """


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _as_signal(wav, name: str = "wav", min_length: int = 1) -> np.ndarray:
    """Return ``wav`` as a 1-D float array (float32/float64 kept), or raise ValueError."""
    arr = np.asarray(wav)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of samples (mono); got shape {arr.shape}. "
            "Downmix or select a channel first."
        )
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        raise ValueError(
            f"{name} has dtype {arr.dtype}; expected float samples in [-1, 1] "
            "(convert PCM_16 integers with x / 32768, or read files with load_wav)"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must hold real float samples; got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.shape[0] < min_length:
        raise ValueError(f"{name} has {arr.shape[0]} samples; expected at least {min_length}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(
            f"{name} contains NaN or inf (first at sample {bad}: {arr[bad]}); expected finite samples"
        )
    return arr


def _as_finite_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; expected finite values")
    return arr


def _check_cfg(cfg: FeatureConfig) -> None:
    if not isinstance(cfg, FeatureConfig):
        raise ValueError(f"cfg must be a FeatureConfig; got {type(cfg).__name__}")
    if cfg.hop_size <= 0 or cfg.fft_size <= 0 or cfg.fft_size % cfg.hop_size != 0:
        raise ValueError(
            f"fft_size ({cfg.fft_size}) must be a positive multiple of hop_size ({cfg.hop_size})"
        )


def _check_rate(sample_rate, what: str) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise ValueError(f"{what} must be a positive integer in Hz; got {sample_rate!r}")
    if sample_rate <= 0:
        raise ValueError(f"{what} must be a positive integer in Hz; got {sample_rate}")
    return int(sample_rate)


# --------------------------------------------------------------------------------------
# I/O
# --------------------------------------------------------------------------------------


def load_wav(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Read an audio file as float32 mono samples at ``sample_rate``.

    Integer PCM is scaled to [-1, 1) (PCM_16: ``x / 32768``), as ``librosa.load`` does.
    A file with several channels is downmixed by averaging the channels; a file at
    another rate is resampled with ``librosa.resample`` (``soxr_hq``). Both emit a
    ``UserWarning`` naming the file.

    Parameters
    ----------
    path : path-like
        Audio file in any format libsndfile reads (WAV, FLAC, OGG, ...).
    sample_rate : int
        Wanted sample rate in Hz (22050 in this book).

    Returns
    -------
    numpy.ndarray, float32, shape (n,)
        Samples, nominally in [-1, 1]. After resampling, ``n = ceil(n_file * sample_rate
        / file_rate)``.

    Raises
    ------
    AudioFileError
        If the file is missing, not a regular file, unreadable or corrupt, has no
        samples, or holds NaN/inf samples.
    ValueError
        If ``sample_rate`` is not a positive integer.

    Used in: Chapter 1 (01_data_simulation), Chapter 5 (05_evaluation)
    """
    sample_rate = _check_rate(sample_rate, "sample_rate")
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"audio file {path} does not exist; expected a readable audio file")
    if not path.is_file():
        raise AudioFileError(f"audio path {path} is not a regular file; expected an audio file")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, TypeError, ValueError) as exc:
        raise AudioFileError(
            f"cannot read audio file {path} ({exc}); expected an audio file that libsndfile "
            "reads (e.g. WAV, FLAC)"
        ) from exc
    n_frames, n_channels = data.shape
    if n_frames == 0 or n_channels == 0:
        raise AudioFileError(f"audio file {path} holds no samples; expected a non-empty signal")
    if not np.all(np.isfinite(data)):
        bad = int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0])
        raise AudioFileError(
            f"audio file {path} contains NaN or inf samples (first at sample {bad}); "
            "expected finite samples"
        )
    if n_channels > 1:
        warnings.warn(
            f"{path} has {n_channels} channels; downmixing to mono by averaging them",
            UserWarning,
            stacklevel=2,
        )
        wav = data.mean(axis=1, dtype=np.float64).astype(np.float32)
    else:
        wav = np.ascontiguousarray(data[:, 0])
    if file_rate != sample_rate:
        warnings.warn(
            f"{path} is sampled at {file_rate} Hz; resampling to {sample_rate} Hz",
            UserWarning,
            stacklevel=2,
        )
        wav = librosa.resample(wav, orig_sr=file_rate, target_sr=sample_rate)
    return np.ascontiguousarray(wav, dtype=np.float32)


def save_wav(
    path: str | os.PathLike,
    wav,
    sample_rate: int,
    subtype: str = "PCM_16",
) -> Path:
    """Write mono samples to an audio file, atomically.

    The file is written to a temporary name in the same folder and renamed onto
    ``path`` only when complete, so an interrupted write never leaves a partial file and
    an existing file survives a failed write. The format follows the suffix (``.wav``).

    Values outside [-1, 1] are **not clipped silently**: with a fixed-point subtype
    (``PCM_16``, ``PCM_24``, ``PCM_32``, ``PCM_U8``, ...) they raise ``ValueError``;
    ``FLOAT``/``DOUBLE`` store them unchanged.

    Parameters
    ----------
    path : path-like
        Destination; its folder is created if needed.
    wav : array_like, shape (n,)
        Finite mono samples, nominally in [-1, 1].
    sample_rate : int
        Sample rate in Hz written in the header.
    subtype : str, default "PCM_16"
        libsndfile subtype (see ``soundfile.available_subtypes``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        For a non-1-D, empty or non-finite ``wav``; a peak above 1 with a fixed-point
        subtype (the message names the path and the peak); an unknown format/subtype.

    Used in: Chapter 1 (01_data_simulation), Chapter 3 (03_wavenet_vocoder), Chapter 4 (04_baselines), Chapter 5 (05_evaluation)
    """
    path = Path(path)
    sample_rate = _check_rate(sample_rate, "sample_rate")
    arr = _as_signal(wav, name=f"audio for {path}")
    fmt = path.suffix.lstrip(".").upper()
    if fmt not in sf.available_formats():
        raise ValueError(
            f"cannot infer an audio format from the suffix of {path}; expected one of "
            f"{sorted('.' + f.lower() for f in sf.available_formats())}"
        )
    subtype = str(subtype).upper()
    if not sf.check_format(fmt, subtype):
        raise ValueError(
            f"subtype {subtype!r} is not valid for {fmt} files ({path}); expected one of "
            f"{sorted(sf.available_subtypes(fmt))}"
        )
    peak = float(np.max(np.abs(arr)))
    if subtype not in _FLOAT_SUBTYPES and peak > 1.0:
        raise ValueError(
            f"cannot write {path} as {subtype}: peak |sample| is {peak:.6g} > 1 and would be "
            "clipped; rescale first (peak_normalise) or use subtype='FLOAT'"
        )
    with atomic_path(path) as tmp:
        sf.write(str(tmp), arr, sample_rate, subtype=subtype, format=fmt)
    return path


# --------------------------------------------------------------------------------------
# Waveform preprocessing
# --------------------------------------------------------------------------------------


def peak_normalise(wav, peak: float = 0.999) -> np.ndarray:
    """Rescale a signal so that its largest absolute sample equals ``peak``.

    ``wav / max|wav| * peak``, computed in the input's precision (float32 input gives
    the same bits as r9y9's LJSpeech preprocessing, PAPER_FACTS §2.1 step 2).

    Parameters
    ----------
    wav : array_like, shape (n,)
        Finite samples.
    peak : float, default 0.999
        Target peak (``rescaling_max``), > 0.

    Returns
    -------
    numpy.ndarray, float32, shape (n,)

    Raises
    ------
    ValueError
        If ``wav`` is silent (all zeros), empty, not 1-D or not finite, or ``peak`` <= 0.

    Used in: Chapter 1 (01_data_simulation)
    """
    if not np.isfinite(peak) or peak <= 0:
        raise ValueError(f"peak must be a positive finite number; got {peak!r}")
    arr = _as_signal(wav)
    top = np.max(np.abs(arr))
    if top == 0:
        raise ValueError(
            f"cannot peak-normalise a silent signal ({arr.shape[0]} samples, all zero)"
        )
    return (arr / top * peak).astype(np.float32, copy=False)


def num_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Frames M of an utterance of ``n_samples`` samples: ``ceil(n / hop) + fft/hop - 1``.

    This is the frame count of the lws perfect-reconstruction STFT (its mel) and of the
    padded audio ``pad_for_frames(wav)``, whose length is ``M * hop`` (PAPER_FACTS §2.9:
    22050 samples → M = 90).

    Used in: Chapter 1 (01_data_simulation)
    """
    return -(-n_samples // cfg.hop_size) + cfg.fft_size // cfg.hop_size - 1


def pad_for_frames(wav, cfg: FeatureConfig) -> np.ndarray:
    """Lay a waveform out as r9y9's saved LJSpeech audio (PAPER_FACTS §2.1 step 5).

    Output = ``[768 zeros | wav | zeros up to the next multiple of 256]``, of length
    ``M * 256`` with ``M = ceil(len(wav) / 256) + 3`` = the number of mel frames of
    ``wav``. Example (§2.9): 22050 samples → 23040 samples = 90 frames.

    Parameters
    ----------
    wav : array_like, shape (n,)
        Finite samples, n >= 1.
    cfg : FeatureConfig
        Uses ``hop_size`` and ``lead_in`` (= fft_size - hop_size).

    Returns
    -------
    numpy.ndarray, float32, shape (M * hop_size,)

    Used in: Chapter 1 (01_data_simulation), Chapter 3 (03_wavenet_vocoder)
    """
    _check_cfg(cfg)
    arr = _as_signal(wav)
    n = arr.shape[0]
    total = num_frames(n, cfg) * cfg.hop_size
    out = np.zeros(total, dtype=np.float32)
    out[cfg.lead_in : cfg.lead_in + n] = arr
    return out


def prepare_lj_audio(wav, cfg: FeatureConfig) -> np.ndarray:
    """r9y9's LJSpeech preprocessing of one utterance (PAPER_FACTS §2.1 steps 2–5).

    Peak-rescale to ``cfg.rescaling_max`` (0.999), no silence trimming, then
    :func:`pad_for_frames`.

    Parameters
    ----------
    wav : array_like, shape (n,)
        Finite, non-silent samples at ``cfg.sample_rate``.
    cfg : FeatureConfig

    Returns
    -------
    numpy.ndarray, float32, shape (M * 256,), M = ceil(n / 256) + 3
        Saved-audio layout; its first non-zero sample is at index 768.

    Used in: Chapter 1 (01_data_simulation)
    """
    _check_cfg(cfg)
    return pad_for_frames(peak_normalise(wav, cfg.rescaling_max), cfg)


# --------------------------------------------------------------------------------------
# STFTs
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _lws_window_cached(fft_size: int, hop_size: int) -> np.ndarray:
    n = np.arange(fft_size, dtype=np.float64)
    # h[n] = sin²(π(n+½)/N), evaluated as lws does, ½(1 - cos(2π(2n+1)/(2N))): the
    # cancellation near the edges moves a[0] by 2e-15 from the exact value, and matching
    # it keeps the window equal to lws's (and to PAPER_FACTS §12) to the last bit or two.
    h = 0.5 * (1.0 - np.cos(2.0 * np.pi * (2.0 * n + 1.0) / (2.0 * fft_size)))
    win = np.sqrt((2.0 * hop_size / fft_size) * h)
    win.setflags(write=False)
    return win


def lws_analysis_window(fft_size: int = 1024, hop_size: int = 256) -> np.ndarray:
    """The lws analysis window (PAPER_FACTS §3.2 step 1).

    ``a[n] = sqrt((2 H / N) * h[n])`` with ``h[n] = sin²(π (n + ½) / N)``; for N = 1024,
    H = 256 this is ``sin(π (n + ½) / 1024) / √2``, ``a[0] = 0.0010846877919254946`` and
    the squares of its four hop-shifted copies sum to 1. ``h`` is evaluated as
    ``½ (1 - cos(2π (2n + 1) / 2N))``, lws's expression, so the values agree with lws to
    ~2e-16 (the exact sine form differs by up to 2e-15 at the edges).

    Parameters
    ----------
    fft_size : int, default 1024
        Window length N in samples.
    hop_size : int, default 256
        Hop H in samples.

    Returns
    -------
    numpy.ndarray, float64, shape (fft_size,)
        A fresh (writable) copy.

    Used in: Chapter 1 (01_data_simulation), Chapter 3 (03_wavenet_vocoder)
    """
    for name, value in (("fft_size", fft_size), ("hop_size", hop_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return _lws_window_cached(int(fft_size), int(hop_size)).copy()


@functools.lru_cache(maxsize=8)
def _hann_window_cached(fft_size: int) -> np.ndarray:
    win = scipy.signal.get_window("hann", fft_size, fftbins=True).astype(np.float64)
    win.setflags(write=False)
    return win


def _frame_chunks(padded: np.ndarray, n_frames: int, cfg: FeatureConfig, window: np.ndarray):
    """Yield ``(start_frame, rfft(window * frames))`` for chunks of the framed signal."""
    frames = sliding_window_view(padded, cfg.fft_size)[:: cfg.hop_size][:n_frames]
    for start in range(0, n_frames, _CHUNK_FRAMES):
        block = frames[start : start + _CHUNK_FRAMES] * window
        yield start, np.fft.rfft(block, axis=1)


def _lws_padded(arr: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, int]:
    n_frames = num_frames(arr.shape[0], cfg)
    padded = np.zeros((n_frames - 1) * cfg.hop_size + cfg.fft_size, dtype=np.float64)
    padded[cfg.lead_in : cfg.lead_in + arr.shape[0]] = arr
    return padded, n_frames


def _linear_padded(arr: np.ndarray, cfg: FeatureConfig, name: str) -> tuple[np.ndarray, int]:
    if arr.shape[0] < cfg.hop_size:
        raise ValueError(
            f"{name} has {arr.shape[0]} samples; the linear STFT needs at least "
            f"hop_size = {cfg.hop_size}"
        )
    padded = np.zeros(arr.shape[0] + cfg.lead_in, dtype=np.float64)
    padded[: arr.shape[0]] = arr
    n_frames = (padded.shape[0] - cfg.fft_size) // cfg.hop_size + 1
    return padded, n_frames


def lws_stft(wav, cfg: FeatureConfig) -> np.ndarray:
    """STFT with lws's analysis window and "perfectrec" framing (PAPER_FACTS §3.2).

    The signal is preceded by ``lead_in`` = 768 zeros and zero-extended at the end;
    frame m covers padded samples ``[256 m, 256 m + 1024)``, multiplied by
    :func:`lws_analysis_window` and transformed with a plain ``rfft`` (numpy sign
    convention, no normalisation). Equals ``lws.lws(1024, 256).stft(wav)``.

    Parameters
    ----------
    wav : array_like, shape (n,)
        Finite samples, n >= 1.
    cfg : FeatureConfig
        Uses ``fft_size``, ``hop_size``.

    Returns
    -------
    numpy.ndarray, complex128, shape (M, fft_size // 2 + 1)
        ``M = ceil(n / 256) + 3`` frames (rows) by 513 bins.

    Used in: Chapter 1 (01_data_simulation), Chapter 3 (03_wavenet_vocoder)
    """
    _check_cfg(cfg)
    arr = _as_signal(wav)
    padded, n_frames = _lws_padded(arr, cfg)
    window = _lws_window_cached(cfg.fft_size, cfg.hop_size)
    out = np.empty((n_frames, cfg.fft_size // 2 + 1), dtype=np.complex128)
    for start, spec in _frame_chunks(padded, n_frames, cfg, window):
        out[start : start + spec.shape[0]] = spec
    return out


@functools.lru_cache(maxsize=8)
def _mel_basis_cached(
    sample_rate: int, fft_size: int, num_mels: int, fmin: float, fmax: float
) -> tuple[np.ndarray, int, int]:
    basis = librosa.filters.mel(
        sr=sample_rate, n_fft=fft_size, n_mels=num_mels, fmin=fmin, fmax=fmax, dtype=np.float64
    )
    used = np.flatnonzero(basis.any(axis=0))
    lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 0)
    basis.setflags(write=False)
    return basis, lo, hi


def mel_basis(cfg: FeatureConfig) -> np.ndarray:
    """The mel filter bank of r9y9/the paper (PAPER_FACTS §3.2 step 2).

    ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` with librosa's defaults:
    Slaney mel scale (``htk=False``) and Slaney area normalisation. Cached per setting.

    Parameters
    ----------
    cfg : FeatureConfig
        Uses ``sample_rate``, ``fft_size``, ``num_mels``, ``fmin``, ``fmax``.

    Returns
    -------
    numpy.ndarray, float64, shape (num_mels, fft_size // 2 + 1)
        Read-only (shared by the cache); for 22050 Hz/1024/80/125–7600 Hz its largest
        entry is 0.0282357.

    Used in: Chapter 1 (01_data_simulation), Chapter 3 (03_wavenet_vocoder)
    """
    _check_cfg(cfg)
    return _mel_basis_cached(
        int(cfg.sample_rate), int(cfg.fft_size), int(cfg.num_mels), float(cfg.fmin), float(cfg.fmax)
    )[0]


def _amp_to_db(amplitude: np.ndarray, floor_db: float) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(10.0 ** (floor_db / 20.0), amplitude))


def normalise_mel(mel_amplitude, cfg: FeatureConfig = _DEFAULT_CFG) -> np.ndarray:
    """Map mel amplitudes to r9y9's normalised [0, 1] scale (PAPER_FACTS §3.2 steps 4–5).

    ``S = 20 log10(max(1e-5, mel)) - ref_level_db``;
    ``clip((S - min_level_db) / -min_level_db, 0, 1)``: [-80 dB, +20 dB] ↦ [0, 1].

    Parameters
    ----------
    mel_amplitude : array_like, any shape
        Mel-band amplitudes (``mel_basis @ |X|``), >= 0.
    cfg : FeatureConfig, optional
        Uses ``min_level_db`` (-100) and ``ref_level_db`` (20).

    Returns
    -------
    numpy.ndarray, float32, same shape

    Used in: Chapter 1 (01_data_simulation)
    """
    _check_cfg(cfg)
    amp = _as_finite_array(mel_amplitude, "mel_amplitude")
    db = _amp_to_db(amp, cfg.min_level_db) - cfg.ref_level_db
    return np.clip((db - cfg.min_level_db) / -cfg.min_level_db, 0.0, 1.0).astype(np.float32)


def normalise_linear(amplitude, cfg: FeatureConfig = _DEFAULT_CFG) -> np.ndarray:
    """Map linear STFT magnitudes to the authors' [0, 1] scale (PAPER_FACTS §3.1 steps 3–4).

    ``S = 20 log10(max(10^(min_level_db/20), |X|)) - ref_level_db_linear`` (the floor
    uses the *mel* ``min_level_db`` = -100, as in the authors' code);
    ``clip((S - min_level_db_linear) / -min_level_db_linear, 0, 1)``: [-50 dB, +30 dB]
    of |X| ↦ [0, 1]. The number of bins is not changed.

    Parameters
    ----------
    amplitude : array_like, any shape
        STFT magnitudes |X|, >= 0.
    cfg : FeatureConfig, optional
        Uses ``min_level_db``, ``min_level_db_linear`` (-80), ``ref_level_db_linear`` (30).

    Returns
    -------
    numpy.ndarray, float32, same shape

    Used in: Chapter 1 (01_data_simulation), Chapter 4 (04_baselines)
    """
    _check_cfg(cfg)
    amp = _as_finite_array(amplitude, "amplitude")
    db = _amp_to_db(amp, cfg.min_level_db) - cfg.ref_level_db_linear
    lo = cfg.min_level_db_linear
    return np.clip((db - lo) / -lo, 0.0, 1.0).astype(np.float32)


def mel_spectrogram(wav, cfg: FeatureConfig) -> np.ndarray:
    """r9y9's normalised mel spectrogram (PAPER_FACTS §3.2), frames as rows.

    ``|lws_stft(wav)|`` → ``mel_basis @ magnitude`` → :func:`normalise_mel`.
    Frame m covers samples ``[256 m - 768, 256 m + 256)`` of ``wav`` (zeros outside).

    Parameters
    ----------
    wav : array_like, shape (n,)
        Finite samples, n >= 1, at ``cfg.sample_rate``.
    cfg : FeatureConfig

    Returns
    -------
    numpy.ndarray, float32, shape (M, num_mels), values in [0, 1]
        ``M = ceil(n / 256) + 3``.

    Used in: Chapter 1 (01_data_simulation), Chapter 3 (03_wavenet_vocoder), Chapter 5 (05_evaluation)
    """
    _check_cfg(cfg)
    arr = _as_signal(wav)
    padded, n_frames = _lws_padded(arr, cfg)
    window = _lws_window_cached(cfg.fft_size, cfg.hop_size)
    basis, lo, hi = _mel_basis_cached(
        int(cfg.sample_rate), int(cfg.fft_size), int(cfg.num_mels), float(cfg.fmin), float(cfg.fmax)
    )
    basis_t = np.ascontiguousarray(basis[:, lo:hi].T)
    mel = np.empty((n_frames, cfg.num_mels), dtype=np.float64)
    for start, spec in _frame_chunks(padded, n_frames, cfg, window):
        mel[start : start + spec.shape[0]] = np.abs(spec[:, lo:hi]) @ basis_t
    # dB and normalisation in float32: 2-3x faster than float64, error < 1e-6 (normalised).
    return normalise_mel(mel.astype(np.float32), cfg)


def linear_stft(signal, cfg: FeatureConfig) -> np.ndarray:
    """The authors' linear STFT (PAPER_FACTS §3.1 steps 1–2), frames as rows.

    The signal is zero-padded at the END by ``lead_in`` = 768 samples (no left pad);
    frame m covers samples ``[256 m, 256 m + 1024)`` and is multiplied by a periodic
    Hann window (``scipy.signal.get_window('hann', 1024)``) before ``rfft``; this equals
    ``librosa.stft(np.pad(signal, (0, 768)), n_fft=1024, hop_length=256,
    window='hann', center=False).T``.

    The phase follows the numpy ``rfft`` convention. (The authors' ``P/audio.py``
    returns ``-angle(X)`` because the librosa of that time returned the conjugate
    STFT; both give the numpy-convention phase of the windowed frame.)

    Parameters
    ----------
    signal : array_like, shape (L,)
        Finite samples, L >= hop_size; normally the saved-audio layout (768-sample
        lead-in, L a multiple of 256).
    cfg : FeatureConfig

    Returns
    -------
    numpy.ndarray, complex128, shape (T, fft_size // 2 + 1)
        ``T = floor(L / 256)`` frames (= L / 256 for L a multiple of 256) by 513 bins.

    Used in: Chapter 1 (01_data_simulation), Chapter 4 (04_baselines), Chapter 5 (05_evaluation)
    """
    _check_cfg(cfg)
    arr = _as_signal(signal, name="signal")
    padded, n_frames = _linear_padded(arr, cfg, "signal")
    window = _hann_window_cached(cfg.fft_size)
    out = np.empty((n_frames, cfg.fft_size // 2 + 1), dtype=np.complex128)
    for start, spec in _frame_chunks(padded, n_frames, cfg, window):
        out[start : start + spec.shape[0]] = spec
    return out


def linear_spectrogram(signal, cfg: FeatureConfig) -> np.ndarray:
    """The authors' normalised linear spectrum (PAPER_FACTS §3.1), frames as rows.

    ``|linear_stft(signal)|`` → :func:`normalise_linear` → drop the Nyquist bin
    (keep the first ``linear_bins`` = 512 bins).

    Parameters
    ----------
    signal : array_like, shape (L,)
        Finite samples, L >= hop_size.
    cfg : FeatureConfig

    Returns
    -------
    numpy.ndarray, float32, shape (T, linear_bins), values in [0, 1]
        ``T = floor(L / 256)``.

    Used in: Chapter 1 (01_data_simulation), Chapter 2 (02_encoder), Chapter 4 (04_baselines)
    """
    _check_cfg(cfg)
    n_bins = cfg.fft_size // 2 + 1
    if not 0 < cfg.linear_bins <= n_bins:
        raise ValueError(f"linear_bins must be in 1..{n_bins}; got {cfg.linear_bins}")
    arr = _as_signal(signal, name="signal")
    padded, n_frames = _linear_padded(arr, cfg, "signal")
    window = _hann_window_cached(cfg.fft_size)
    out = np.empty((n_frames, cfg.linear_bins), dtype=np.float32)
    for start, spec in _frame_chunks(padded, n_frames, cfg, window):
        magnitude = np.abs(spec[:, : cfg.linear_bins]).astype(np.float32)
        out[start : start + spec.shape[0]] = normalise_linear(magnitude, cfg)
    return out


def denormalise_mel(norm, cfg: FeatureConfig = _DEFAULT_CFG) -> np.ndarray:
    """Invert :func:`normalise_mel`: normalised mel → mel amplitude.

    ``dB = clip(x, 0, 1) * -min_level_db + min_level_db + ref_level_db`` (= x·100 − 80),
    amplitude ``10^(dB / 20)`` in [1e-4, 10].

    Parameters
    ----------
    norm : array_like, any shape
        Normalised mel values (e.g. an encoder output), nominally in [0, 1].
    cfg : FeatureConfig, optional

    Returns
    -------
    numpy.ndarray, same shape, float32 (float64 if ``norm`` is float64)

    Used in: Chapter 1 (01_data_simulation), Chapter 3 (03_wavenet_vocoder)
    """
    _check_cfg(cfg)
    x = _as_finite_array(norm, "norm")
    db = np.clip(x, 0.0, 1.0) * -cfg.min_level_db + cfg.min_level_db + cfg.ref_level_db
    return np.power(10.0, db / 20.0).astype(np.result_type(x.dtype, np.float32), copy=False)


def denormalise_linear(norm, cfg: FeatureConfig = _DEFAULT_CFG) -> np.ndarray:
    """Invert :func:`normalise_linear`: normalised linear spectrum → STFT magnitude.

    ``dB = clip(x, 0, 1) * -min_level_db_linear + min_level_db_linear +
    ref_level_db_linear`` (= x·80 − 50), amplitude ``10^(dB / 20)`` in [0.00316, 31.6]
    (PAPER_FACTS §3.1 "Inverse normalisation").

    Parameters
    ----------
    norm : array_like, any shape
        Normalised linear values, nominally in [0, 1].
    cfg : FeatureConfig, optional

    Returns
    -------
    numpy.ndarray, same shape, float32 (float64 if ``norm`` is float64)

    Used in: Chapter 1 (01_data_simulation), Chapter 4 (04_baselines)
    """
    _check_cfg(cfg)
    x = _as_finite_array(norm, "norm")
    lo = cfg.min_level_db_linear
    db = np.clip(x, 0.0, 1.0) * -lo + lo + cfg.ref_level_db_linear
    return np.power(10.0, db / 20.0).astype(np.result_type(x.dtype, np.float32), copy=False)


def encoder_features(signal, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Encoder input/target features of one signal (PAPER_FACTS §3.2, last bullets).

    ``signal`` is in the saved-audio layout (768-sample lead-in, length L a multiple of
    256), e.g. a target, noise or mixture of §2.6. The linear spectrum is taken from
    ``signal`` and the mel spectrum from ``signal[768:]``, so that frame m of both
    covers samples ``[256 m, 256 m + 1024)`` of ``signal`` and both have T = L / 256
    frames.

    Parameters
    ----------
    signal : array_like, shape (L,)
        Finite samples; L a multiple of ``hop_size`` and > ``lead_in``.
    cfg : FeatureConfig

    Returns
    -------
    linear : numpy.ndarray, float32, shape (T, linear_bins)
        :func:`linear_spectrogram` of ``signal``, in [0, 1].
    mel : numpy.ndarray, float32, shape (T, num_mels)
        :func:`mel_spectrogram` of ``signal[lead_in:]``, in [0, 1].

    Raises
    ------
    ValueError
        If L is not a multiple of ``hop_size``, L <= ``lead_in``, or the two frame
        counts differ.

    Used in: Chapter 1 (01_data_simulation), Chapter 2 (02_encoder)
    """
    _check_cfg(cfg)
    arr = _as_signal(signal, name="signal")
    n = arr.shape[0]
    if n % cfg.hop_size != 0:
        raise ValueError(
            f"signal has {n} samples, not a multiple of hop_size = {cfg.hop_size}; expected "
            "the saved-audio layout of pad_for_frames / prepare_lj_audio"
        )
    if n <= cfg.lead_in:
        raise ValueError(
            f"signal has {n} samples; expected more than the {cfg.lead_in}-sample lead-in"
        )
    linear = linear_spectrogram(arr, cfg)
    mel = mel_spectrogram(arr[cfg.lead_in :], cfg)
    if linear.shape[0] != mel.shape[0]:
        raise ValueError(
            f"linear ({linear.shape[0]}) and mel ({mel.shape[0]}) frame counts differ for a "
            f"signal of {n} samples; expected both to be {n // cfg.hop_size}"
        )
    return linear, mel
