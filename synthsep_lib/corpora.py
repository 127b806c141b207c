"""LJSpeech and ESC-50 readers, the paper's noise-selection rule, and the data splits.

The paper's targets are LJSpeech-1.1 utterances; its interferers are ESC-50 clips from
20 "noise-like" classes. This module reads both corpora, applies the paper's selection
rule to ESC-50 (see original_code.md#oc-esc-selection) and reproduces every split of the
original code:

* LJSpeech train/test: sklearn ``train_test_split(test_size=0.0441, random_state=1234)``
  semantics, re-implemented with ``numpy.random.RandomState`` (see original_code.md#oc-lj-split);
* ESC-50 90/10 train/test: a seeded permutation (the original was unseeded, see
  original_code.md#oc-esc-split);
* 80/20 train/valid of both train lists, then Python ``random`` shuffles (see
  original_code.md#oc-train-valid).
"""

from __future__ import annotations

import json
import math
import os
import random
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthsep_lib.files import write_json_atomic

from . import audio
from .config import DataConfig, FeatureConfig, section

__all__ = [
    "CorpusError",
    "CorpusFormatError",
    "LJSpeech",
    "ESC50",
    "NOISE_TARGETS",
    "LJSPEECH_UTTERANCES",
    "ESC50_CLIPS_PER_CLASS",
    "select_noise_clips",
    "selection_summary",
    "active_span_seconds",
    "lj_split",
    "esc_split",
    "train_valid_split",
    "Splits",
    "make_splits",
    "save_splits",
    "load_splits",
    "corpus_folder",
    "open_corpora",
]

#: ESC-50 classes the paper mixes with speech: 10–19 "Natural soundscapes & water
#: sounds" and 40–49 "Exterior/urban noises" (see original_code.md#oc-esc-selection).
NOISE_TARGETS: tuple[int, ...] = tuple(range(10, 20)) + tuple(range(40, 50))

#: Utterances in the real LJSpeech-1.1 (lines of its ``metadata.csv``).
LJSPEECH_UTTERANCES = 13_100

#: Clips per class in the real ESC-50 (2 000 clips in 50 classes).
ESC50_CLIPS_PER_CLASS = 40

_GET_MINI = "run Chapter 1 or `make corpus` to build the mini corpus"
_GET_REAL = "run `python -m data_scripts.download ljspeech esc50 --dest DIR` for the real corpora"

ESC_COLUMNS = ("filename", "fold", "target", "category")


class CorpusError(FileNotFoundError):
    """A corpus folder or its metadata file is missing."""


class CorpusFormatError(ValueError):
    """A corpus metadata file exists but does not have the expected format."""


def _data_cfg(cfg) -> DataConfig:
    return section(cfg, DataConfig)


def _feature_cfg(features) -> FeatureConfig:
    return section(features, FeatureConfig)


def _missing(what: str, path: Path) -> CorpusError:
    return CorpusError(f"{what} not found: {path}. To get it, {_GET_MINI} or {_GET_REAL}.")


# ---------------------------------------------------------------------------------------
# LJSpeech
# ---------------------------------------------------------------------------------------
class LJSpeech:
    """Reader for an LJSpeech-1.1 folder (``metadata.csv`` + ``wavs/<ID>.wav``).

    ``metadata.csv`` has no header, three pipe-separated fields per line (ID,
    transcription, normalised transcription) and **no quoting** (transcripts contain
    bare double quotes), so it is split on ``|`` by hand (see original_code.md#oc-ljspeech-source).

    Parameters
    ----------
    root : path-like
        The ``LJSpeech-1.1`` folder, or a folder that contains ``LJSpeech-1.1/``.

    Attributes
    ----------
    root : pathlib.Path
        Folder holding ``metadata.csv``.
    ids : list of str
        Utterance IDs in ``metadata.csv`` line order (the order r9y9 numbers from 1).

    Raises
    ------
    CorpusError
        If the folder or ``metadata.csv`` is missing.
    CorpusFormatError
        If a line of ``metadata.csv`` does not have three fields or repeats an ID.
    """

    def __init__(self, root: str | os.PathLike):
        root = Path(root)
        if not root.is_dir():
            raise _missing("LJSpeech folder", root)
        if (
            not (root / "metadata.csv").is_file()
            and (root / "LJSpeech-1.1" / "metadata.csv").is_file()
        ):
            root = root / "LJSpeech-1.1"
        self.root = root
        self.metadata_path = root / "metadata.csv"
        if not self.metadata_path.is_file():
            raise _missing("LJSpeech metadata.csv", self.metadata_path)
        self.ids: list[str] = []
        self._text: dict[str, tuple[str, str]] = {}
        self._parse()
        self._index = {utt: i for i, utt in enumerate(self.ids)}

    def _parse(self) -> None:
        raw = self.metadata_path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorpusFormatError(f"{self.metadata_path} is not UTF-8 text ({err})") from err
        lines = text.split("\n")
        # A final newline leaves one empty string; trailing blank lines are harmless.
        while lines and lines[-1].strip("\r") == "":
            lines.pop()
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\r")
            fields = line.split("|")
            if len(fields) != 3 or not fields[0]:
                raise CorpusFormatError(
                    f"{self.metadata_path}, line {number}: expected 3 pipe-separated fields "
                    f"'ID|transcription|normalised transcription', got {len(fields)} field(s): "
                    f"{line[:80]!r}"
                )
            utt = fields[0].strip()
            if utt in self._text:
                raise CorpusFormatError(
                    f"{self.metadata_path}, line {number}: utterance ID {utt!r} appears twice"
                )
            self.ids.append(utt)
            self._text[utt] = (fields[1], fields[2])
        if not self.ids:
            raise CorpusFormatError(f"{self.metadata_path} lists no utterances")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"LJSpeech({str(self.root)!r}, {len(self)} utterances)"

    def _check(self, utt: str) -> None:
        if utt not in self._text:
            raise KeyError(f"utterance {utt!r} is not listed in {self.metadata_path}")

    def index(self, utt: str) -> int:
        """0-based line number of ``utt`` in ``metadata.csv`` (r9y9's file number − 1)."""
        self._check(utt)
        return self._index[utt]

    def transcript(self, utt: str, normalised: bool = False) -> str:
        """Transcription of ``utt`` (field 2), or the normalised one (field 3)."""
        self._check(utt)
        return self._text[utt][1 if normalised else 0]

    def wav_path(self, utt: str) -> Path:
        """Path of ``wavs/<utt>.wav``."""
        self._check(utt)
        return self.root / "wavs" / f"{utt}.wav"

    def load(self, utt: str, features) -> np.ndarray:
        """Load utterance ``utt`` as float32 mono at ``cfg.sample_rate``.

        Parameters
        ----------
        utt : str
            Utterance ID, e.g. ``"LJ001-0001"``.
        features : FeatureConfig or Profile
            Supplies ``sample_rate`` (22050 Hz).

        Returns
        -------
        numpy.ndarray, shape (n,), float32
            The waveform in [-1, 1], unnormalised.

        Raises
        ------
        KeyError
            If ``utt`` is not in ``metadata.csv``.
        audio.AudioFileError
            If the WAV is missing, unreadable or truncated (the message names the file).
        """
        return audio.load_wav(self.wav_path(utt), _feature_cfg(features).sample_rate)

    def load_target(self, utt: str, features) -> np.ndarray:
        """Load ``utt`` as r9y9's saved audio s1 (see original_code.md#oc-lead-in).

        Peak-rescaled to ``cfg.rescaling_max`` (0.999), then 768 zeros in front and zeros
        at the end up to a multiple of 256 samples (:func:`audio.prepare_lj_audio`).

        Parameters
        ----------
        utt : str
            Utterance ID.
        features : FeatureConfig or Profile

        Returns
        -------
        numpy.ndarray, shape (T*256,), float32
            s1, whose first non-zero sample is at index 768; T = number of frames.
        """
        feat = _feature_cfg(features)
        return audio.prepare_lj_audio(self.load(utt, feat), feat)


# ---------------------------------------------------------------------------------------
# ESC-50
# ---------------------------------------------------------------------------------------
class ESC50:
    """Reader for an ESC-50 folder (``meta/esc50.csv`` + ``audio/*.wav``).

    Parameters
    ----------
    root : path-like
        The ``ESC-50-master`` (or ``ESC-50-<sha>``) folder, or a folder containing
        exactly one such folder.

    Attributes
    ----------
    root : pathlib.Path
    clips : pandas.DataFrame
        ``meta/esc50.csv`` as read (columns filename, fold, target, category, esc10,
        src_file, take), in file order.

    Raises
    ------
    CorpusError
        If the folder or ``meta/esc50.csv`` is missing.
    CorpusFormatError
        If ``esc50.csv`` lacks a required column or has a non-integer target.
    """

    def __init__(self, root: str | os.PathLike):
        root = Path(root)
        if not root.is_dir():
            raise _missing("ESC-50 folder", root)
        if not (root / "meta" / "esc50.csv").is_file():
            inner = sorted(p for p in root.glob("ESC-50-*") if (p / "meta" / "esc50.csv").is_file())
            if len(inner) == 1:
                root = inner[0]
        self.root = root
        self.meta_path = root / "meta" / "esc50.csv"
        if not self.meta_path.is_file():
            raise _missing("ESC-50 meta/esc50.csv", self.meta_path)
        try:
            clips = pd.read_csv(self.meta_path)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
            raise CorpusFormatError(f"{self.meta_path} is not a readable CSV file ({err})") from err
        missing = [c for c in ESC_COLUMNS if c not in clips.columns]
        if missing:
            raise CorpusFormatError(
                f"{self.meta_path} lacks column(s) {missing}; expected the header "
                "'filename,fold,target,category,esc10,src_file,take'"
            )
        if not pd.api.types.is_integer_dtype(clips["target"]):
            raise CorpusFormatError(f"{self.meta_path}: column 'target' must hold integers 0–49")
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __repr__(self) -> str:
        return f"ESC50({str(self.root)!r}, {len(self)} clips)"

    def wav_path(self, filename: str) -> Path:
        """Path of ``audio/<filename>``."""
        return self.root / "audio" / filename

    def load(self, filename: str, sample_rate: int = 22050) -> np.ndarray:
        """Load one clip as float32 mono at ``sample_rate`` (resampled from 44.1 kHz).

        The paper loads with ``librosa.load(path)``, i.e. at 22050 Hz (see
        original_code.md#oc-esc-selection). Resampling is expected here, so the loader's
        resampling warning is silenced.

        Parameters
        ----------
        filename : str
            ``{FOLD}-{CLIP_ID}-{TAKE}-{TARGET}.wav``.
        sample_rate : int
            Output rate in Hz.

        Returns
        -------
        numpy.ndarray, shape (n,), float32
            110 250 samples for a 5 s clip at 22050 Hz.

        Raises
        ------
        audio.AudioFileError
            If the WAV is missing, unreadable or truncated (the message names the file).
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*[Rr]esampl.*")
            return audio.load_wav(self.wav_path(filename), sample_rate)


def active_span_seconds(wav: np.ndarray, sample_rate: int = 22050) -> float:
    """(last non-zero index − first non-zero index) / ``sample_rate``, exact-zero test.

    Parameters
    ----------
    wav : numpy.ndarray, shape (n,)
    sample_rate : int
        Hz.

    Returns
    -------
    float
        Seconds; 0.0 for an all-zero signal.
    """
    nonzero = np.flatnonzero(np.asarray(wav) != 0)
    if nonzero.size == 0:
        return 0.0
    return float(nonzero[-1] - nonzero[0]) / sample_rate


def select_noise_clips(
    esc: ESC50, profile, progress: bool = True, sample_rate: int = 22050
) -> pd.DataFrame:
    """Apply the paper's ESC-50 selection rule (see original_code.md#oc-esc-selection).

    1. Sort ``esc50.csv`` by ``target``. The original used pandas' default
       ``sort_values`` (quicksort, *not* stable), so its within-class order was
       implementation dependent; we use a **stable** sort, which keeps the CSV's
       order within each class.
    2. Keep targets 10–19 and 40–49 (:data:`NOISE_TARGETS`).
    3. Load each at 22050 Hz; keep it iff
       ``(last non-zero index − first non-zero index) / 22050 > cfg.min_active_seconds``
       (4.5 s), with an exact-zero test on the resampled signal.

    The original resampled with librosa's ``kaiser_best`` (resampy); we use
    :func:`audio.load_wav` (``soxr_hq``). Both filters ring a few hundred samples into
    zero padding, so spans differ slightly and a clip very close to 4.5 s may be decided
    differently; the original's kept count was never recorded (see
    original_code.md#oc-esc-selection).

    Parameters
    ----------
    esc : ESC50
    profile : Profile (or its DataConfig)
        Supplies ``min_active_seconds``.
    progress : bool
        Show a tqdm bar while loading clips.
    sample_rate : int
        Rate the clips are loaded at and the span is measured in (22050 Hz).

    Returns
    -------
    pandas.DataFrame
        Every clip of ``esc50.csv`` in the stable target-sorted order (index reset), with
        the CSV columns plus ``active_seconds`` (float; NaN for clips not loaded),
        ``kept`` (bool) and ``reason`` (``""`` for kept clips, ``"wrong category"`` or
        ``"too short active span"``). The selected clips, in paper order, are
        ``df[df.kept]``; :func:`selection_summary` counts the reasons.

    Raises
    ------
    audio.AudioFileError
        If a clip of a selected class cannot be read (the message names the file).
    """
    data = _data_cfg(profile)
    clips = esc.clips.sort_values("target", kind="stable").reset_index(drop=True)
    in_class = clips["target"].isin(NOISE_TARGETS).to_numpy()
    active = np.full(len(clips), np.nan)
    reason = np.where(in_class, "", "wrong category").astype(object)
    rows = np.flatnonzero(in_class)
    iterator: Iterable[int] = rows
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(rows, desc="ESC-50 clips", unit="clip")
    for i in iterator:
        wav = esc.load(clips.at[i, "filename"], sample_rate)
        active[i] = active_span_seconds(wav, sample_rate)
        if not active[i] > data.min_active_seconds:
            reason[i] = "too short active span"
    clips["active_seconds"] = active
    clips["reason"] = reason
    clips["kept"] = clips["reason"] == ""
    return clips


def selection_summary(selection: pd.DataFrame) -> pd.DataFrame:
    """Count the clips per outcome of :func:`select_noise_clips`.

    Parameters
    ----------
    selection : pandas.DataFrame
        Output of :func:`select_noise_clips`.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome`` (``"kept"``, ``"wrong category"``, ``"too short active span"``)
        and ``clips``.
    """
    outcome = selection["reason"].where(selection["reason"] != "", "kept")
    counts = outcome.value_counts()
    order = ["kept", "wrong category", "too short active span"]
    return pd.DataFrame({"outcome": order, "clips": [int(counts.get(k, 0)) for k in order]})


# ---------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------
def lj_split(n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/test indices with ``train_test_split`` semantics (original_code.md#oc-lj-split).

    ``n_test = ceil(test_size·n)``, ``perm = RandomState(seed).permutation(n)``,
    ``test = perm[:n_test]``, ``train = perm[n_test:]``, both kept in permuted order —
    exactly sklearn's ``ShuffleSplit`` (which ``train_test_split`` uses), without
    depending on scikit-learn.

    Parameters
    ----------
    n : int
        Number of items (13 100 for LJSpeech).
    test_size : float
        Fraction in (0, 1) held out (0.0441).
    seed : int
        ``random_state`` (1234).

    Returns
    -------
    train, test : numpy.ndarray of int64, shapes (n − n_test,), (n_test,)
        0-based indices into the metadata order. For n = 13100 these have 12 522 and
        578 entries and ``test[0] == 389``.

    Raises
    ------
    ValueError
        If ``test_size`` is not in (0, 1) or either part would be empty.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_test < 1 or n_train < 1:
        raise ValueError(
            f"splitting {n} items with test_size={test_size} leaves {n_train} train and "
            f"{n_test} test items; both must be at least 1"
        )
    perm = np.random.RandomState(seed).permutation(n).astype(np.int64)
    return perm[n_test:], perm[:n_test]


def esc_split(k: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ESC-50 train/test split: a seeded permutation, first ``round(0.9·k)`` train.

    The original shuffled with the **unseeded** global NumPy RNG (``random.seed(1234)``
    seeded only Python's RNG, see original_code.md#oc-esc-split), so its split cannot be
    reproduced. We seed it: ``RandomState(seed).permutation(k)`` is what
    ``np.random.seed(seed); np.random.shuffle(arange(k))`` would have given.

    Parameters
    ----------
    k : int
        Number of selected clips.
    train_fraction : float
        0.9 in the paper.
    seed : int
        ``DataConfig.esc_split_seed``.

    Returns
    -------
    train, test : numpy.ndarray of int64
        Indices into the selected-clip list; ``len(train) == int(round(train_fraction·k))``
        (Python's round, half to even).
    """
    if k < 1:
        raise ValueError(f"cannot split {k} noise clips; the selection kept none")
    perm = np.random.RandomState(seed).permutation(k).astype(np.int64)
    n_train = int(round(train_fraction * k))
    return perm[:n_train], perm[n_train:]


def train_valid_split(items: Sequence, fraction: float) -> tuple[list, list]:
    """First ``int(round(fraction·n))`` items for training, the rest for validation.

    Parameters
    ----------
    items : sequence
        An already permuted train list.
    fraction : float
        0.8 in the paper (see original_code.md#oc-train-valid): 12 522 → 10 018 / 2 504.

    Returns
    -------
    train, valid : list
    """
    items = list(items)
    n_train = int(round(fraction * len(items)))
    return items[:n_train], items[n_train:]


@dataclass
class Splits:
    """Every list of the paper's data split (original_code.md#oc-lj-split and after).

    Attributes
    ----------
    target_train, target_valid, target_test : list of str
        LJSpeech utterance IDs. Train/valid are shuffled (original_code.md#oc-train-valid);
        test keeps the permuted order of :func:`lj_split` (the order the test pair recipe
        indexes).
    noise_train, noise_valid, noise_test : list of str
        ESC-50 filenames, the same way.
    settings : dict
        The split settings that produced the lists (seeds, fractions, corpus sizes).
    """

    target_train: list[str]
    target_valid: list[str]
    target_test: list[str]
    noise_train: list[str]
    noise_valid: list[str]
    noise_test: list[str]
    settings: dict[str, Any] = field(default_factory=dict)

    LISTS = (
        "target_train",
        "target_valid",
        "target_test",
        "noise_train",
        "noise_valid",
        "noise_test",
    )

    @property
    def counts(self) -> dict[str, int]:
        """Length of each list, e.g. ``{"target_train": 10018, ...}``."""
        return {name: len(getattr(self, name)) for name in self.LISTS}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: list(getattr(self, name)) for name in self.LISTS}
        out["counts"] = self.counts
        out["settings"] = dict(self.settings)
        return out


def make_splits(
    lj: LJSpeech | Sequence[str], esc_selected: pd.DataFrame | Sequence[str], profile
) -> Splits:
    """Build all six lists of the paper's split (original_code.md#oc-lj-split and after).

    1. LJ: :func:`lj_split` over metadata order (``lj_test_size``, ``lj_split_seed``).
    2. ESC: :func:`esc_split` over the selected clips in paper order
       (``esc_train_fraction``, ``esc_split_seed``).
    3. 80/20 (:func:`train_valid_split`, ``valid_fraction``) of both train lists.
    4. ``random.Random(shuffle_seed)`` shuffles target_train, target_valid, noise_train,
       noise_valid — in that order, as ``random.seed(123456789)`` + ``random.shuffle``
       did in the original. Test lists are not shuffled.

    Parameters
    ----------
    lj : LJSpeech or sequence of str
        The reader (its ``ids``) or the IDs in metadata order.
    esc_selected : pandas.DataFrame or sequence of str
        Output of :func:`select_noise_clips` (rows with ``kept`` True are used; without a
        ``kept`` column all rows), or the selected filenames in paper order.
    profile : Profile (or its DataConfig)

    Returns
    -------
    Splits
        For the full LJSpeech: 10 018 / 2 504 / 578 target utterances.
    """
    data = _data_cfg(profile)
    ids = list(lj.ids) if isinstance(lj, LJSpeech) else list(lj)
    if isinstance(esc_selected, pd.DataFrame):
        df = esc_selected
        if "kept" in df.columns:
            df = df[df["kept"].astype(bool)]
        noise = [str(f) for f in df["filename"]]
    else:
        noise = [str(f) for f in esc_selected]

    lj_train, lj_test = lj_split(len(ids), data.lj_test_size, data.lj_split_seed)
    esc_train, esc_test = esc_split(len(noise), data.esc_train_fraction, data.esc_split_seed)
    target_train, target_valid = train_valid_split([ids[i] for i in lj_train], data.valid_fraction)
    noise_train, noise_valid = train_valid_split([noise[i] for i in esc_train], data.valid_fraction)
    rng = random.Random(data.shuffle_seed)
    for lst in (target_train, target_valid, noise_train, noise_valid):
        rng.shuffle(lst)
    settings = {
        "lj_utterances": len(ids),
        "noise_clips": len(noise),
        "lj_test_size": data.lj_test_size,
        "lj_split_seed": data.lj_split_seed,
        "esc_split_seed": data.esc_split_seed,
        "esc_train_fraction": data.esc_train_fraction,
        "valid_fraction": data.valid_fraction,
        "shuffle_seed": data.shuffle_seed,
    }
    return Splits(
        target_train=target_train,
        target_valid=target_valid,
        target_test=[ids[i] for i in lj_test],
        noise_train=noise_train,
        noise_valid=noise_valid,
        noise_test=[noise[i] for i in esc_test],
        settings=settings,
    )


def save_splits(path: str | os.PathLike, splits: Splits) -> Path:
    """Write ``splits`` as JSON atomically (lists, counts, settings)."""
    return write_json_atomic(path, splits.to_dict())


def load_splits(path: str | os.PathLike) -> Splits:
    """Read a JSON file written by :func:`save_splits`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not JSON or lacks one of the six lists (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"splits file not found: {path} (Chapter 1 writes it)")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object with the split lists")
    missing = [name for name in Splits.LISTS if not isinstance(obj.get(name), list)]
    if missing:
        raise ValueError(f"{path} lacks the list(s) {missing}; expected {list(Splits.LISTS)}")
    lists = {name: [str(x) for x in obj[name]] for name in Splits.LISTS}
    return Splits(**lists, settings=dict(obj.get("settings", {})))


# ---------------------------------------------------------------------------------------
# Getting the corpora of a profile
# ---------------------------------------------------------------------------------------
def corpus_folder(profile, data_root: str | os.PathLike) -> Path:
    """Folder holding ``LJSpeech-1.1/`` and ``ESC-50-master/`` for ``profile``.

    ``<data_root>/mini`` for the embedded mini corpus (``corpus: mini``),
    ``<data_root>/real`` for the real corpora (``corpus: real``).
    """
    kind = _data_cfg(profile).corpus
    if kind not in ("mini", "real"):
        raise ValueError(f"unknown corpus kind {kind!r} in the profile; expected 'mini' or 'real'")
    return Path(data_root) / kind


def open_corpora(profile, data_root: str | os.PathLike) -> tuple[LJSpeech, ESC50]:
    """Readers of the profile's corpora, once they are in place.

    The corpora are made available by Chapter 1 or ``make corpus``
    (:func:`data_scripts.prepare.prepare_corpora`: the mini corpus is built, the real
    corpora are downloaded and verified).

    Parameters
    ----------
    profile : Profile
        Its ``data`` section says which corpus (``mini`` or ``real``).
    data_root : path-like
        Folder under which ``mini/`` or ``real/`` lives.

    Returns
    -------
    (LJSpeech, ESC50)

    Raises
    ------
    CorpusError
        If a corpus folder is missing; the message says how to get it.
    """
    folder = corpus_folder(profile, data_root)
    return LJSpeech(folder / "LJSpeech-1.1"), ESC50(folder / "ESC-50-master")
