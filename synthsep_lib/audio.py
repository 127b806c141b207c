"""Audio I/O and the paper's two spectral features (original_code.md#oc-linear-spectrum).

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

Signals are 1-D float arrays of samples in [-1, 1] at ``features.sample_rate`` (22050 Hz).
Spectrograms are stored frames-as-rows: shape ``(frames, bins)``.
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

from synthsep_lib.files import atomic_path

from .config import FeatureConfig, section

__all__ = [
    "AudioFileError",
    "as_signal",
    "load_wav",
    "save_wav",
    "peak_normalise",
    "num_frames",
    "pad_for_frames",
    "prepare_lj_audio",
    "lws_analysis_window",
    "mel_basis",
    "mel_spectrogram",
    "linear_stft",
    "linear_spectrogram",
    "normalise_mel",
    "normalise_linear",
    "denormalise_mel",
    "denormalise_linear",
    "encoder_features",
    "target_mel",
]

# Frames per FFT call. Bounds the temporary memory of a long signal (256 frames of 1024
# float64 samples = 2 MiB) and keeps the working set in cache: on one core, 256 was
# ~30 % faster than 1024 and ~40 % faster than one call for 60 s of audio. The FFT runs
# in float64: numpy's float32 rfft measured ~1.4x slower here, and gave no gain overall.
_CHUNK_FRAMES = 256

# Subtypes that store floating-point samples: values outside [-1, 1] survive a round trip.
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})

_DEFAULT_FEATURES = FeatureConfig()


class AudioFileError(ValueError):
    """An audio file is missing, unreadable, corrupt, empty or holds NaN/inf samples.

    The message names the file and what was expected.
    """


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def as_signal(wav, name: str = "wav", min_length: int = 1) -> np.ndarray:
    """``wav`` as a 1-D float array of finite samples (float32/float64 kept).

    The one check every function taking a waveform applies.

    Parameters
    ----------
    wav : array_like, shape (n,)
        Float samples; integer PCM is refused (it would need scaling first).
    name : str
        The argument's name, for the message.
    min_length : int
        Fewest samples accepted.

    Raises
    ------
    ValueError
        Not 1-D, not float, fewer than ``min_length`` samples (an empty one is called
        empty), or a NaN or inf (its position named).
    """
    arr = np.asarray(wav)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of samples (mono); got shape {arr.shape}. "
            "Downmix or select a channel first."
        )
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        # refused, not rescaled: the scale of integer samples is a guess (int32 may hold
        # PCM_24 or PCM_32, int64 plain counts); the hint gives the usual PCM scaling.
        if np.issubdtype(arr.dtype, np.unsignedinteger):
            half = 2 ** (8 * arr.dtype.itemsize - 1)
            hint = f"convert unsigned PCM with (x - {half}) / {half}"
        elif np.issubdtype(arr.dtype, np.signedinteger):
            hint = f"convert PCM integers with x / {2 ** (8 * arr.dtype.itemsize - 1)}"
        else:
            hint = "convert it to float samples"
        raise ValueError(
            f"{name} has dtype {arr.dtype}; expected float samples in [-1, 1] "
            f"({hint}, or read files with load_wav)"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must hold real float samples; got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; expected at least {max(min_length, 1)} sample(s)")
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


def _check_features(features: FeatureConfig) -> None:
    if not isinstance(features, FeatureConfig):
        raise ValueError(f"features must be a FeatureConfig; got {type(features).__name__}")
    if (
        features.hop_size <= 0
        or features.fft_size <= 0
        or features.fft_size % features.hop_size != 0
    ):
        raise ValueError(
            f"fft_size ({features.fft_size}) must be a positive multiple of hop_size ({features.hop_size})"
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


def _wav_header_frames(path: Path) -> int | None:
    """Frames promised by a RIFF/WAVE file's ``data`` chunk header, or None.

    None for other formats, an unreadable layout, or a streaming header whose data size
    is unset (0 or 0xFFFFFFFF). Only the chunk headers before ``data`` are read.
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 0
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if cid == b"data":
                if block_align <= 0 or size in (0, 0xFFFFFFFF):
                    return None
                return size // block_align
            body = fh.read(size + (size & 1)) if cid == b"fmt " else None
            if body is None:
                fh.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to even sizes
            elif len(body) >= 14:
                block_align = int.from_bytes(body[12:14], "little")  # bytes per frame


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
        If the file is missing, not a regular file, unreadable or corrupt, truncated
        (fewer frames than its header promises), has no samples, or holds NaN/inf samples.
    ValueError
        If ``sample_rate`` is not a positive integer.
    """
    sample_rate = _check_rate(sample_rate, "sample_rate")
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"audio file {path} does not exist; expected a readable audio file")
    if not path.is_file():
        raise AudioFileError(f"audio path {path} is not a regular file; expected an audio file")
    try:
        with sf.SoundFile(str(path)) as f:
            header_frames, file_rate = f.frames, f.samplerate
            data = f.read(dtype="float32", always_2d=True)
        # libsndfile shortens a WAV's frame count to the bytes present; the header's is kept
        promised = _wav_header_frames(path) or header_frames
    except (sf.SoundFileError, RuntimeError, OSError, TypeError, ValueError) as exc:
        raise AudioFileError(
            f"cannot read audio file {path} ({exc}); expected an audio file that libsndfile "
            "reads (e.g. WAV, FLAC)"
        ) from exc
    n_frames, n_channels = data.shape
    if n_frames < promised:
        raise AudioFileError(
            f"audio file {path} is truncated or damaged: its header promises {promised} frames "
            f"but only {n_frames} could be read; re-download or rebuild it"
        )
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
    """
    path = Path(path)
    sample_rate = _check_rate(sample_rate, "sample_rate")
    arr = as_signal(wav, name=f"audio for {path}")
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
    the same bits as r9y9's LJSpeech preprocessing, see original_code.md#oc-lead-in).

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
    """
    if not np.isfinite(peak) or peak <= 0:
        raise ValueError(f"peak must be a positive finite number; got {peak!r}")
    arr = as_signal(wav)
    top = np.max(np.abs(arr))
    if top == 0:
        raise ValueError(
            f"cannot peak-normalise a silent signal ({arr.shape[0]} samples, all zero)"
        )
    return (arr / top * peak).astype(np.float32, copy=False)


def num_frames(n_samples: int, features: FeatureConfig) -> int:
    """Frames M of an utterance of ``n_samples`` samples: ``ceil(n / hop) + fft/hop - 1``.

    This is the frame count of the lws perfect-reconstruction STFT (its mel) and of the
    padded audio ``pad_for_frames(wav)``, whose length is ``M * hop``
    (original_code.md#oc-worked-example: 22050 samples → M = 90).
    """
    return -(-n_samples // features.hop_size) + features.fft_size // features.hop_size - 1


def pad_for_frames(wav, features: FeatureConfig) -> np.ndarray:
    """Lay a waveform out as r9y9's saved LJSpeech audio (see original_code.md#oc-lead-in).

    Output = ``[768 zeros | wav | zeros up to the next multiple of 256]``, of length
    ``M * 256`` with ``M = ceil(len(wav) / 256) + 3`` = the number of mel frames of
    ``wav``. Example (original_code.md#oc-worked-example): 22050 samples → 23040
    samples = 90 frames.

    Parameters
    ----------
    wav : array_like, shape (n,)
        Finite samples, n >= 1.
    features : FeatureConfig
        Uses ``hop_size`` and ``lead_in`` (= fft_size - hop_size).

    Returns
    -------
    numpy.ndarray, float32, shape (M * hop_size,)
    """
    _check_features(features)
    arr = as_signal(wav)
    n = arr.shape[0]
    total = num_frames(n, features) * features.hop_size
    out = np.zeros(total, dtype=np.float32)
    out[features.lead_in : features.lead_in + n] = arr
    return out


def prepare_lj_audio(wav, features: FeatureConfig) -> np.ndarray:
    """r9y9's LJSpeech preprocessing of one utterance (see original_code.md#oc-lead-in).

    Peak-rescale to ``features.rescaling_max`` (0.999), no silence trimming, then
    :func:`pad_for_frames`.

    Parameters
    ----------
    wav : array_like, shape (n,)
        Finite, non-silent samples at ``features.sample_rate``.
    features : FeatureConfig

    Returns
    -------
    numpy.ndarray, float32, shape (M * 256,), M = ceil(n / 256) + 3
        Saved-audio layout; its first non-zero sample is at index 768.
    """
    _check_features(features)
    return pad_for_frames(peak_normalise(wav, features.rescaling_max), features)


# --------------------------------------------------------------------------------------
# STFTs
# --------------------------------------------------------------------------------------


def lws_analysis_window(fft_size: int = 1024, hop_size: int = 256) -> np.ndarray:
    """The lws analysis window (see original_code.md#oc-mel-spectrum).

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
        A fresh (writable) array.
    """
    _check_window_sizes(fft_size, hop_size)
    n = np.arange(fft_size, dtype=np.float64)
    # h[n] = sin²(π(n+½)/N), evaluated as lws does, ½(1 - cos(2π(2n+1)/(2N))): the
    # cancellation near the edges moves a[0] by 2e-15 from the exact value, and matching
    # it keeps the window equal to lws's to the last bit or two.
    h = 0.5 * (1.0 - np.cos(2.0 * np.pi * (2.0 * n + 1.0) / (2.0 * fft_size)))
    # scaled so that the squares of the N/H hop-shifted copies sum to 1
    return np.sqrt((2.0 * hop_size / fft_size) * h)


def _check_window_sizes(fft_size, hop_size) -> None:
    for name, value in (("fft_size", fft_size), ("hop_size", hop_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")


@functools.lru_cache(maxsize=8)
def _lws_window_cached(fft_size: int, hop_size: int) -> np.ndarray:
    win = lws_analysis_window(fft_size, hop_size)
    win.setflags(write=False)
    return win


@functools.lru_cache(maxsize=8)
def _hann_window_cached(fft_size: int) -> np.ndarray:
    win = scipy.signal.get_window("hann", fft_size, fftbins=True).astype(np.float64)
    win.setflags(write=False)
    return win


def _frame_chunks(padded: np.ndarray, n_frames: int, features: FeatureConfig, window: np.ndarray):
    """Yield ``(start_frame, rfft(window * frames))`` for chunks of the framed signal."""
    frames = sliding_window_view(padded, features.fft_size)[:: features.hop_size][:n_frames]
    for start in range(0, n_frames, _CHUNK_FRAMES):
        block = frames[start : start + _CHUNK_FRAMES] * window
        yield start, np.fft.rfft(block, axis=1)


def _lws_padded(arr: np.ndarray, features: FeatureConfig) -> tuple[np.ndarray, int]:
    n_frames = num_frames(arr.shape[0], features)
    padded = np.zeros((n_frames - 1) * features.hop_size + features.fft_size, dtype=np.float64)
    padded[features.lead_in : features.lead_in + arr.shape[0]] = arr
    return padded, n_frames


def _linear_padded(arr: np.ndarray, features: FeatureConfig, name: str) -> tuple[np.ndarray, int]:
    if arr.shape[0] < features.hop_size:
        raise ValueError(
            f"{name} has {arr.shape[0]} samples; the linear STFT needs at least "
            f"hop_size = {features.hop_size}"
        )
    padded = np.zeros(arr.shape[0] + features.lead_in, dtype=np.float64)
    padded[: arr.shape[0]] = arr
    n_frames = (padded.shape[0] - features.fft_size) // features.hop_size + 1
    return padded, n_frames


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


def _mel_basis_band(features: FeatureConfig) -> tuple[np.ndarray, int, int]:
    """``(basis[:, lo:hi].T, lo, hi)``: the filter bank on the FFT bins it uses, transposed."""
    basis, lo, hi = _mel_basis_cached(
        int(features.sample_rate),
        int(features.fft_size),
        int(features.num_mels),
        float(features.fmin),
        float(features.fmax),
    )
    return np.ascontiguousarray(basis[:, lo:hi].T), lo, hi


def mel_basis(features: FeatureConfig) -> np.ndarray:
    """The mel filter bank of r9y9/the paper (see original_code.md#oc-mel-spectrum).

    ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` with librosa's defaults:
    Slaney mel scale (``htk=False``) and Slaney area normalisation. Cached per setting.

    Parameters
    ----------
    features : FeatureConfig
        Uses ``sample_rate``, ``fft_size``, ``num_mels``, ``fmin``, ``fmax``.

    Returns
    -------
    numpy.ndarray, float64, shape (num_mels, fft_size // 2 + 1)
        Read-only (shared by the cache); for 22050 Hz/1024/80/125–7600 Hz its largest
        entry is 0.0282357.
    """
    _check_features(features)
    return _mel_basis_cached(
        int(features.sample_rate),
        int(features.fft_size),
        int(features.num_mels),
        float(features.fmin),
        float(features.fmax),
    )[0]


def _amp_to_db(amplitude: np.ndarray, floor_db: float) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(10.0 ** (floor_db / 20.0), amplitude))


def normalise_mel(mel_amplitude, features: FeatureConfig = _DEFAULT_FEATURES) -> np.ndarray:
    """Map mel amplitudes to r9y9's normalised [0, 1] scale (see original_code.md#oc-mel-spectrum).

    ``S = 20 log10(max(1e-5, mel)) - ref_level_db``;
    ``clip((S - min_level_db) / -min_level_db, 0, 1)``: [-80 dB, +20 dB] ↦ [0, 1].

    Parameters
    ----------
    mel_amplitude : array_like, any shape
        Mel-band amplitudes (``mel_basis @ |X|``), >= 0.
    features : FeatureConfig, optional
        Uses ``min_level_db`` (-100) and ``ref_level_db`` (20).

    Returns
    -------
    numpy.ndarray, float32, same shape
    """
    _check_features(features)
    amp = _as_finite_array(mel_amplitude, "mel_amplitude")
    db = _amp_to_db(amp, features.min_level_db) - features.ref_level_db
    return np.clip((db - features.min_level_db) / -features.min_level_db, 0.0, 1.0).astype(
        np.float32
    )


def normalise_linear(amplitude, features: FeatureConfig = _DEFAULT_FEATURES) -> np.ndarray:
    """Map linear STFT magnitudes to the authors' [0, 1] scale.

    See original_code.md#oc-linear-spectrum.

    ``S = 20 log10(max(10^(min_level_db/20), |X|)) - ref_level_db_linear`` (the floor
    uses the *mel* ``min_level_db`` = -100, as in the authors' code);
    ``clip((S - min_level_db_linear) / -min_level_db_linear, 0, 1)``: [-50 dB, +30 dB]
    of |X| ↦ [0, 1]. The number of bins is not changed.

    Parameters
    ----------
    amplitude : array_like, any shape
        STFT magnitudes |X|, >= 0.
    features : FeatureConfig, optional
        Uses ``min_level_db``, ``min_level_db_linear`` (-80), ``ref_level_db_linear`` (30).

    Returns
    -------
    numpy.ndarray, float32, same shape
    """
    _check_features(features)
    amp = _as_finite_array(amplitude, "amplitude")
    db = _amp_to_db(amp, features.min_level_db) - features.ref_level_db_linear
    lo = features.min_level_db_linear
    return np.clip((db - lo) / -lo, 0.0, 1.0).astype(np.float32)


def mel_spectrogram(wav, features: FeatureConfig) -> np.ndarray:
    """r9y9's normalised mel spectrogram (see original_code.md#oc-mel-spectrum), frames as rows.

    ``|STFT(wav)|`` (lws's window and framing) → ``mel_basis @ magnitude`` → :func:`normalise_mel`.
    Frame m covers samples ``[256 m - 768, 256 m + 256)`` of ``wav`` (zeros outside).

    Parameters
    ----------
    wav : array_like, shape (n,)
        Finite samples, n >= 1, at ``features.sample_rate``.
    features : FeatureConfig

    Returns
    -------
    numpy.ndarray, float32, shape (M, num_mels), values in [0, 1]
        ``M = ceil(n / 256) + 3``.
    """
    _check_features(features)
    # 768 zeros before the signal: frame m covers samples [256 m - 768, 256 m + 256)
    padded, n_frames = _lws_padded(as_signal(wav), features)
    window = _lws_window_cached(features.fft_size, features.hop_size)
    # the Slaney mel filter bank, restricted to the FFT bins lo:hi it uses (fmin to fmax)
    basis_t, lo, hi = _mel_basis_band(features)
    mel = np.empty((n_frames, features.num_mels), dtype=np.float64)
    for start, spec in _frame_chunks(padded, n_frames, features, window):
        mel[start : start + spec.shape[0]] = np.abs(spec[:, lo:hi]) @ basis_t
    # dB and normalisation in float32: 2-3x faster than float64, error < 1e-6 (normalised).
    return normalise_mel(mel.astype(np.float32), features)


def linear_stft(signal, features: FeatureConfig) -> np.ndarray:
    """The authors' linear STFT (see original_code.md#oc-linear-spectrum), frames as rows.

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
    features : FeatureConfig

    Returns
    -------
    numpy.ndarray, complex128, shape (T, fft_size // 2 + 1)
        ``T = floor(L / 256)`` frames (= L / 256 for L a multiple of 256) by 513 bins.
    """
    _check_features(features)
    arr = as_signal(signal, name="signal")
    padded, n_frames = _linear_padded(arr, features, "signal")
    window = _hann_window_cached(features.fft_size)
    out = np.empty((n_frames, features.fft_size // 2 + 1), dtype=np.complex128)
    for start, spec in _frame_chunks(padded, n_frames, features, window):
        out[start : start + spec.shape[0]] = spec
    return out


def linear_spectrogram(signal, features: FeatureConfig) -> np.ndarray:
    """The authors' normalised linear spectrum, frames as rows.

    See original_code.md#oc-linear-spectrum.

    ``|linear_stft(signal)|`` → :func:`normalise_linear` → drop the Nyquist bin
    (keep the first ``linear_bins`` = 512 bins).

    Parameters
    ----------
    signal : array_like, shape (L,)
        Finite samples, L >= hop_size.
    features : FeatureConfig

    Returns
    -------
    numpy.ndarray, float32, shape (T, linear_bins), values in [0, 1]
        ``T = floor(L / 256)``.
    """
    _check_features(features)
    n_bins = features.fft_size // 2 + 1
    if not 0 < features.linear_bins <= n_bins:
        raise ValueError(f"linear_bins must be in 1..{n_bins}; got {features.linear_bins}")
    arr = as_signal(signal, name="signal")
    padded, n_frames = _linear_padded(arr, features, "signal")
    window = _hann_window_cached(features.fft_size)
    out = np.empty((n_frames, features.linear_bins), dtype=np.float32)
    for start, spec in _frame_chunks(padded, n_frames, features, window):
        magnitude = np.abs(spec[:, : features.linear_bins]).astype(np.float32)
        out[start : start + spec.shape[0]] = normalise_linear(magnitude, features)
    return out


def denormalise_mel(norm, features: FeatureConfig = _DEFAULT_FEATURES) -> np.ndarray:
    """Invert :func:`normalise_mel`: normalised mel → mel amplitude.

    ``dB = clip(x, 0, 1) * -min_level_db + min_level_db + ref_level_db`` (= x·100 − 80),
    amplitude ``10^(dB / 20)`` in [1e-4, 10].

    Parameters
    ----------
    norm : array_like, any shape
        Normalised mel values (e.g. an encoder output), nominally in [0, 1].
    features : FeatureConfig, optional

    Returns
    -------
    numpy.ndarray, same shape, float32 (float64 if ``norm`` is float64)
    """
    _check_features(features)
    x = _as_finite_array(norm, "norm")
    db = (
        np.clip(x, 0.0, 1.0) * -features.min_level_db
        + features.min_level_db
        + features.ref_level_db
    )
    return np.power(10.0, db / 20.0).astype(np.result_type(x.dtype, np.float32), copy=False)


def denormalise_linear(norm, features: FeatureConfig = _DEFAULT_FEATURES) -> np.ndarray:
    """Invert :func:`normalise_linear`: normalised linear spectrum → STFT magnitude.

    ``dB = clip(x, 0, 1) * -min_level_db_linear + min_level_db_linear +
    ref_level_db_linear`` (= x·80 − 50), amplitude ``10^(dB / 20)`` in [0.00316, 31.6]
    (see original_code.md#oc-linear-spectrum).

    Parameters
    ----------
    norm : array_like, any shape
        Normalised linear values, nominally in [0, 1].
    features : FeatureConfig, optional

    Returns
    -------
    numpy.ndarray, same shape, float32 (float64 if ``norm`` is float64)
    """
    _check_features(features)
    x = _as_finite_array(norm, "norm")
    lo = features.min_level_db_linear
    db = np.clip(x, 0.0, 1.0) * -lo + lo + features.ref_level_db_linear
    return np.power(10.0, db / 20.0).astype(np.result_type(x.dtype, np.float32), copy=False)


def encoder_features(signal, features: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Encoder input/target features of one signal (see original_code.md#oc-mel-spectrum).

    ``signal`` is in the saved-audio layout (768-sample lead-in, length L a multiple of
    256), e.g. a target, noise or mixture of original_code.md#oc-mixing. The linear
    spectrum is taken from ``signal`` and the mel spectrum from ``signal[768:]``, so that
    frame m of both covers samples ``[256 m, 256 m + 1024)`` of ``signal`` and both have
    T = L / 256 frames.

    Parameters
    ----------
    signal : array_like, shape (L,)
        Finite samples; L a multiple of ``hop_size`` and > ``lead_in``.
    features : FeatureConfig

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
    """
    arr = _as_saved_audio(signal, features)
    linear = linear_spectrogram(arr, features)
    # the mel's STFT puts its own 768 zeros in front: skipping the lead-in aligns the frames
    mel = mel_spectrogram(arr[features.lead_in :], features)
    _check_same_frames(linear, mel, arr.shape[0], features)
    return linear, mel


def _as_saved_audio(signal, features: FeatureConfig) -> np.ndarray:
    """``signal`` as a float array in the saved-audio layout, or ValueError."""
    _check_features(features)
    arr = as_signal(signal, name="signal")
    n = arr.shape[0]
    if n % features.hop_size != 0:
        raise ValueError(
            f"signal has {n} samples, not a multiple of hop_size = {features.hop_size}; expected "
            "the saved-audio layout of pad_for_frames / prepare_lj_audio"
        )
    if n <= features.lead_in:
        raise ValueError(
            f"signal has {n} samples; expected more than the {features.lead_in}-sample lead-in"
        )
    return arr


def _check_same_frames(
    linear: np.ndarray, mel: np.ndarray, n: int, features: FeatureConfig
) -> None:
    if linear.shape[0] != mel.shape[0]:
        raise ValueError(
            f"linear ({linear.shape[0]}) and mel ({mel.shape[0]}) frame counts differ for a "
            f"signal of {n} samples; expected both to be {n // features.hop_size}"
        )


def target_mel(target_scaled, features) -> np.ndarray:
    """The encoder's target mel of a (scaled) target: ``mel_spectrogram(target[768:])``.

    Exactly as the encoder's training targets are made (:func:`encoder_features`,
    see original_code.md#oc-mel-spectrum), so frame m covers samples ``[256 m, 256 m + 1024)``
    of the target and there are ``len(target) / 256`` frames.

    Parameters
    ----------
    target_scaled : array_like, shape (L,)
        ``scale · s1`` (Chapter 1's ``NNN_target.wav``), L a multiple of 256.
    features : FeatureConfig or Profile

    Returns
    -------
    numpy.ndarray, float32, shape (L / 256, num_mels)
    """
    return encoder_features(target_scaled, section(features, FeatureConfig))[1]
