"""A small ctypes wrapper around espeak-ng, as shipped by the ``espeakng-loader`` wheel.

Only the mini-corpus builder needs it: it turns English text into a 16-bit mono
waveform in memory, without a system espeak installation and without sound devices.
``espeakng-loader`` is an optional dependency (the ``corpus`` extra) and is imported
lazily, so importing this module never fails.

espeak-ng keeps global state inside the shared library (one synthesiser per process).
This wrapper loads the library once per process, initialises it once, and sets the
voice, every parameter and the random seed before each utterance. That is not quite
enough for bit-exact output: espeak-ng also keeps static state that no API call resets
(e.g. the phase of its pitch flutter, ``Flutter_ix`` in ``wavegen.c``; re-initialising
does not reset it either), so an utterance is byte-reproducible only as the first one
synthesised in a fresh process. The mini-corpus builder therefore synthesises each
utterance in its own worker process.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

__all__ = [
    "EspeakError",
    "EspeakSynth",
    "available_variants",
    "get_synth",
    "require_espeakng_loader",
]

# espeak_AUDIO_OUTPUT
_AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_PARAMETER
_ESPEAK_RATE = 1
_ESPEAK_VOLUME = 2
_ESPEAK_PITCH = 3
_ESPEAK_RANGE = 4
_ESPEAK_WORDGAP = 7
# espeak_POSITION_TYPE
_POS_CHARACTER = 1
# synth flags
_ESPEAK_CHARS_UTF8 = 1
# espeak_Initialize options
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
_EE_OK = 0

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_INSTALL_HINT = (
    "The mini corpus needs espeak-ng from the 'espeakng-loader' package, which is not "
    "installed. Install it with: pip install 'synthsep-lib[corpus]'"
)


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded, initialised or asked to speak."""


def require_espeakng_loader():
    """Import and return the ``espeakng_loader`` module, or explain how to install it.

    Returns
    -------
    module
        The imported ``espeakng_loader``.

    Raises
    ------
    ImportError
        If the package is missing; the message names the pip command to run.
    """
    try:
        import espeakng_loader
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(_INSTALL_HINT) from err
    return espeakng_loader


def available_variants() -> list[str]:
    """Names of the voice variants shipped in espeak-ng's data folder (``voices/!v``).

    Returns
    -------
    list of str
        Sorted file names such as ``"f3"`` or ``"m3"``; append one to a language with
        ``+`` (``"en-us+f3"``) to select it.
    """
    from pathlib import Path

    loader = require_espeakng_loader()
    folder = Path(loader.get_data_path()) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file())


class EspeakSynth:
    """One espeak-ng synthesiser (per process) writing 16-bit samples into memory.

    Parameters
    ----------
    library_path, data_path : str, optional
        Shared library and ``espeak-ng-data`` folder; default: those of ``espeakng_loader``.

    Attributes
    ----------
    sample_rate : int
        Output sample rate in Hz, as returned by ``espeak_Initialize`` (22050 for espeak-ng).
    version : str
        espeak-ng version string (``espeak_Info``).

    Notes
    -----
    Do not create more than one per process: espeak-ng's state is global. Use
    :func:`get_synth`, which caches the instance.
    """

    def __init__(self, library_path: str | None = None, data_path: str | None = None):
        if library_path is None or data_path is None:
            loader = require_espeakng_loader()
            library_path = library_path or loader.get_library_path()
            data_path = data_path or loader.get_data_path()
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as err:
            raise EspeakError(f"cannot load the espeak-ng library {library_path}: {err}") from err
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._lock = threading.Lock()

        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode("utf-8"), _ESPEAK_INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(
                f"espeak_Initialize failed (returned {rate}) with data folder {data_path}"
            )
        self.sample_rate = int(rate)
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        self.version = (lib.espeak_Info(None) or b"unknown").decode("utf-8", "replace")
        # Keep a reference to the callback: ctypes must not garbage-collect it.
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, numsamples, events):  # called by espeak-ng from espeak_Synth
        if numsamples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0  # 0 = continue synthesis

    def _check(self, code: int, what: str) -> None:
        if code != _EE_OK:
            raise EspeakError(f"espeak-ng {what} failed with error code {code}")

    def synthesize(
        self,
        text: str,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        seed: int = 0,
    ) -> np.ndarray:
        """Speak ``text`` and return the waveform.

        Parameters
        ----------
        text : str
            UTF-8 text (plain English; no SSML).
        voice : str
            espeak voice name, optionally with a variant, e.g. ``"en-us+f3"``.
        rate : int
            Speaking rate in words per minute (espeak-ng accepts 80–450).
        pitch, pitch_range : int
            Base pitch and pitch range, 0–100 (espeak's default is 50 for both).
        seed : int
            Seed of espeak-ng's internal random generator (``espeak_ng_SetRandSeed``),
            set before each utterance; without it the output varies from run to run.

        Returns
        -------
        numpy.ndarray, shape (n_samples,), dtype int16
            Samples at :attr:`sample_rate` Hz.

        Notes
        -----
        The result is reproducible only for the first call in a fresh process: espeak-ng
        keeps hidden state between utterances (e.g. the phase of its pitch flutter), so
        a repeated call with the same arguments may differ by a few samples.

        Raises
        ------
        EspeakError
            If the voice is unknown or synthesis fails.
        """
        with self._lock:
            lib = self._lib
            lib.espeak_ng_SetRandSeed(int(seed))
            # Reset everything that earlier calls may have changed, in a fixed order.
            self._check(
                lib.espeak_SetVoiceByName(voice.encode("utf-8")), f"SetVoiceByName({voice!r})"
            )
            for param, value in (
                (_ESPEAK_RATE, int(rate)),
                (_ESPEAK_VOLUME, 100),
                (_ESPEAK_PITCH, int(pitch)),
                (_ESPEAK_RANGE, int(pitch_range)),
                (_ESPEAK_WORDGAP, 0),
            ):
                self._check(
                    lib.espeak_SetParameter(param, value, 0), f"SetParameter({param}, {value})"
                )
            data = text.encode("utf-8") + b"\0"
            buf = ctypes.create_string_buffer(data, len(data))
            self._chunks = []
            code = lib.espeak_Synth(
                buf, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            self._check(code, "Synth")
            self._check(lib.espeak_Synchronize(), "Synchronize")
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks).astype(np.int16, copy=False)


_SYNTH: EspeakSynth | None = None


def get_synth() -> EspeakSynth:
    """Return this process's espeak-ng synthesiser, creating it on first use.

    Returns
    -------
    EspeakSynth
        The cached instance (espeak-ng supports one per process).
    """
    global _SYNTH
    if _SYNTH is None:
        _SYNTH = EspeakSynth()
    return _SYNTH
