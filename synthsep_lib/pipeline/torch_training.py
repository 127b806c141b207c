"""What the two PyTorch vocoders (the WaveNet, the parallel vocoder) train with.

- Clean speech as r9y9 preprocesses it, cached as ``.npy`` pairs
  (:func:`cache_training_features`), and random windows of those pairs whose batch t is
  a pure function of ``(seed, t)`` (:class:`TrainingWindows`): what makes resuming exact.
- Processes: one, or several under ``torchrun`` (:func:`process_group`), with a
  per-step seed for torch's own draws (:func:`step_seed`).
- Files: checkpoints written atomically, ``history.csv`` and TensorBoard logs.
- The command line both trainers share (:func:`training_command`), torchrun-ready.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from synthsep_lib import audio, corpora
from synthsep_lib.config import load_profile
from synthsep_lib.files import atomic_path, file_sha1
from synthsep_lib.pipeline.runs import CHAPTER_DATA, RunConfigError, require_artifact

__all__ = [
    "LOG_DIR_NAME",
    "feature_paths",
    "cache_training_features",
    "TrainingWindows",
    "lj_reader",
    "features_signature",
    "process_group",
    "barrier",
    "step_seed",
    "write_history",
    "history_frame",
    "save_torch",
    "summary_writer",
    "load_state",
    "training_command",
]

LOG_DIR_NAME = "logs"

# Tags keep the seed sequences of the three random draws apart.
_ORDER_TAG, _CROP_TAG, _DROPOUT_TAG = 0, 1, 2


# ---------------------------------------------------------------------------------------
# Data: r9y9's preprocessed utterances and random windows
# ---------------------------------------------------------------------------------------
def feature_paths(folder: Path, utt: str) -> tuple[Path, Path]:
    """``<utt>-audio.npy`` and ``<utt>-mel.npy`` in ``folder``."""
    return folder / f"{utt}-audio.npy", folder / f"{utt}-mel.npy"


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, array)


def cache_training_features(
    lj,
    utterances: Sequence[str],
    features,
    folder: str | os.PathLike,
    *,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
) -> None:
    """Preprocess utterances as r9y9 does for LJSpeech and store them as ``.npy`` files.

    For each utterance: the saved audio of :meth:`corpora.LJSpeech.load_target`
    (peak 0.999, 768 zeros in front, zeros up to whole hops: M · 256 samples) and its mel
    :func:`audio.mel_spectrogram` of ``audio[768:]`` (M frames), see
    original_code.md#oc-lead-in. Files present are kept, so an interrupted call
    continues; the caller clears a stale folder.

    Parameters
    ----------
    lj : corpora.LJSpeech
        Reader of the utterances.
    utterances : sequence of str
        Utterance IDs (e.g. ``splits.target_train``).
    features : FeatureConfig
    folder : path-like
        Where ``<utt>-audio.npy`` (float32, (M·256,)) and ``<utt>-mel.npy`` (float32,
        (M, 80)) go; written atomically, the mel last.
    rank, world_size : int
        This process prepares ``utterances[rank::world_size]`` (processes share the work).
    progress : bool
        Show a tqdm progress bar.

    Raises
    ------
    ValueError
        If an utterance's mel and audio lengths disagree (names the utterance).
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [
        u for u in list(utterances)[rank::world_size] if not feature_paths(folder, u)[1].exists()
    ]
    for utt in tqdm(todo, desc="vocoder features", unit="utt", disable=not progress or not todo):
        target = lj.load_target(utt, features)
        mel = audio.mel_spectrogram(target[features.lead_in :], features)
        if mel.shape[0] * features.hop_size != target.shape[0]:
            raise ValueError(
                f"utterance {utt}: {mel.shape[0]} mel frames do not match its "
                f"{target.shape[0]} samples of saved audio (expected frames × {features.hop_size})"
            )
        audio_path, mel_path = feature_paths(folder, utt)
        _save_npy(audio_path, target)
        _save_npy(mel_path, mel)


class TrainingWindows:
    """Batches of random windows of preprocessed utterances; batch t = f(seed, t).

    Utterances are drawn in a random order that is new each epoch (a permutation of
    ``SeedSequence([seed, 0, epoch])``); position ``t · batch_size + i`` of that endless
    sequence is item i of batch t. Its window starts at frame ``s = randint(0, Tc −
    frames)`` (``SeedSequence([seed, 1, t])``) if the utterance has more than ``frames``
    frames; shorter ones are used whole, zero-padded.

    Parameters
    ----------
    folder : path-like
        Files of :func:`cache_training_features`.
    utterances : sequence of str
        Utterance IDs, in a fixed order (e.g. ``splits.target_train``).
    frames : int
        Window length in mel frames (``max_time_steps // hop``).
    batch_size : int
        Windows per (global) batch.
    seed : int
    hop_size : int
        Samples per frame (256).

    Raises
    ------
    ValueError
        If there are no utterances, or ``frames`` or ``batch_size`` is below 1.
    FileNotFoundError
        If an utterance's features are missing (names the file).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        utterances: Sequence[str],
        frames: int,
        batch_size: int,
        seed: int,
        hop_size: int = 256,
    ):
        self.folder = Path(folder)
        self.utterances = list(utterances)
        if not self.utterances:
            raise ValueError("no training utterances: the split's target_train list is empty")
        if frames < 1 or batch_size < 1:
            raise ValueError(f"frames and batch_size must be >= 1; got {frames} and {batch_size}")
        self.frames, self.batch_size = int(frames), int(batch_size)
        self.seed, self.hop_size = int(seed), int(hop_size)
        lengths = []
        for utt in self.utterances:
            mel_path = feature_paths(self.folder, utt)[1]
            if not mel_path.exists():
                raise FileNotFoundError(f"features of {utt} are missing: {mel_path}")
            lengths.append(np.load(mel_path, mmap_mode="r").shape[0])
        #: Mel frames of every utterance.
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self._order: tuple[int, np.ndarray] | None = None
        # Opening a .npy file parses its header (about 0.1 ms; two files per window, 16
        # per batch of the reduced parallel vocoder): the recently used ones stay mapped.
        self._mapped = functools.lru_cache(maxsize=4096)(lambda p: np.load(p, mmap_mode="r"))

    def __len__(self) -> int:
        """Number of utterances."""
        return len(self.utterances)

    def epoch(self, step: int) -> int:
        """Epochs completed after ``step`` batches (r9y9's ``global_epoch``)."""
        return int(step) * self.batch_size // len(self)

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.seed, _ORDER_TAG, epoch])
            self._order = (epoch, rng.permutation(len(self)))
        return self._order[1]

    def plan(self, step: int) -> list[tuple[int, int, int]]:
        """The windows of batch ``step``: ``(utterance index, start frame, frames)`` each."""
        n = len(self)
        first = int(step) * self.batch_size
        index = [
            int(self._permutation(p // n)[p % n]) for p in range(first, first + self.batch_size)
        ]
        tc = self.lengths[index]
        rng = np.random.default_rng([self.seed, _CROP_TAG, int(step)])
        starts = rng.integers(0, np.maximum(tc - self.frames, 1))
        return [
            (i, int(s) if t > self.frames else 0, int(min(t, self.frames)))
            for i, s, t in zip(index, starts, tc, strict=True)
        ]

    def batch(self, step: int, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
        """Process ``rank``'s slice of batch ``step``, padded to the batch's longest window.

        Parameters
        ----------
        step : int
            Batch index (optimizer steps done before it).
        rank, world_size : int
            The slice ``[rank · b, (rank + 1) · b)``, ``b = batch_size / world_size``.

        Returns
        -------
        dict
            ``audio`` float32 tensor (b, 256 · F) in [-1, 1]; ``mel`` float32 tensor
            (b, 80, F); ``mask`` float32 tensor (b, 256 · F), 1 on real samples; ``share``
            float, this slice's fraction of the whole batch's predicted samples (the
            valid samples after the first of each window). F = the longest window.

        Raises
        ------
        ValueError
            If ``batch_size`` is not a multiple of ``world_size``.
        """
        if self.batch_size % world_size:
            raise ValueError(
                f"batch_size {self.batch_size} must be a multiple of the number of processes "
                f"({world_size}): each takes an equal slice of the batch"
            )
        hop = self.hop_size
        plan = self.plan(step)
        width = max(f for _, _, f in plan)
        per = self.batch_size // world_size
        mine = plan[rank * per : (rank + 1) * per]
        x = np.zeros((per, width * hop), dtype=np.float32)
        mask = np.zeros((per, width * hop), dtype=np.float32)
        mels = []
        for k, (i, s, f) in enumerate(mine):
            audio_path, mel_path = feature_paths(self.folder, self.utterances[i])
            x[k, : f * hop] = self._mapped(audio_path)[s * hop : (s + f) * hop]
            mel = self._mapped(mel_path)[s : s + f]
            mels.append(np.pad(mel, ((0, width - f), (0, 0))))
            mask[k, : f * hop] = 1.0
        c = np.stack(mels).transpose(0, 2, 1)
        predicted = sum(f * hop - 1 for _, _, f in mine)
        total = sum(f * hop - 1 for _, _, f in plan)
        return {
            "audio": torch.from_numpy(x),
            "mel": torch.from_numpy(np.ascontiguousarray(c)),
            "mask": torch.from_numpy(mask),
            "share": predicted / total,
        }


def lj_reader(profile, data_root) -> corpora.LJSpeech:
    """The profile's LJSpeech corpus (Chapter 1 must have built or downloaded it)."""
    folder = corpora.corpus_folder(profile, data_root)
    require_artifact(folder, CHAPTER_DATA)
    return corpora.LJSpeech(folder)


def features_signature(features, lj) -> str:
    """What the cached features are made from: feature settings and the corpus metadata."""
    made_from = {
        "features": features.to_dict(),
        "lj_metadata_sha1": file_sha1(Path(lj.root) / "metadata.csv"),
    }
    return hashlib.sha1(json.dumps(made_from, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def process_group(device) -> Iterator[tuple[int, int, torch.device]]:
    """Yield ``(rank, world_size, device)``; under torchrun join (and leave) the group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    created = False
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        created = True
    try:
        if dist.is_initialized():
            yield dist.get_rank(), dist.get_world_size(), device
        else:
            yield 0, 1, device
    finally:
        if created:
            dist.destroy_process_group()


def barrier(world: int) -> None:
    """Wait for every process (a no-op for one)."""
    if world > 1:
        dist.barrier()


def step_seed(seed: int, step: int, rank: int) -> int:
    """Seed of torch's generator before step ``step`` on process ``rank`` (dropout, noise)."""
    entropy = np.random.SeedSequence([int(seed), _DROPOUT_TAG, int(step), int(rank)])
    return int(entropy.generate_state(1, np.uint64)[0] % (2**63 - 1))


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------
def write_history(path: Path, rows: list[dict[str, float]], columns: Sequence[str]) -> None:
    """``rows`` as a CSV with ``columns``, written atomically."""
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=list(columns)).to_csv(tmp, index=False)


def history_frame(
    rows: list[dict[str, float]], columns: Sequence[str], folder: Path, initial_step: int
) -> pd.DataFrame:
    """The history rows as a table; ``attrs`` holds ``run_dir`` and ``initial_step``."""
    history = pd.DataFrame(rows, columns=list(columns))
    history["step"] = history["step"].astype(np.int64)
    history.attrs.update(run_dir=str(folder), initial_step=initial_step)
    return history


def save_torch(path: Path, obj: dict[str, Any]) -> None:
    """``torch.save`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def summary_writer(folder: Path, purge_step: int | None):
    """A TensorBoard writer into ``folder/logs`` (None, with a warning, without tensorboard)."""
    # tensorboard loads TensorFlow for its file I/O when it is installed: keep its C++
    # log quiet, as synthsep_lib.encoder does.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(
            "TensorBoard is not installed, so no TensorBoard logs are written (history.csv "
            "holds the same curves); `pip install tensorboard` to get them",
            UserWarning,
            stacklevel=3,
        )
        return None
    return SummaryWriter(str(folder / LOG_DIR_NAME), purge_step=purge_step)


def load_torch_file(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    what: str = "a checkpoint saved by this book (a dict of tensors and settings)",
    advice: str = "",
) -> dict[str, Any]:
    """Load a ``.pth`` file with ``torch.load(weights_only=True)``; check it holds a dict.

    The one loader of every ``.pth`` file of the book, so that an empty, truncated or
    foreign file is reported with its path instead of PyTorch's bare message.

    Parameters
    ----------
    path : path-like
        The ``.pth`` file.
    device : str or torch.device
        ``map_location`` of the tensors.
    what : str
        What the file should hold, for the error message.
    advice : str
        What the user can do, appended to the error message.

    Returns
    -------
    dict
        The saved dict (tensors and plain data only).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    RunConfigError
        If the file cannot be unpickled (damaged, truncated, empty, not a PyTorch file,
        or it holds objects ``weights_only`` refuses) or holds something other than a
        dict; the message names the file and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: expected {what}")
    tail = f"; {advice}" if advice else ""
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        # PyTorch's first sentence only: the rest of its weights_only text suggests
        # weights_only=False, which is not what a damaged file needs.
        first = str(err).strip().split("\n")[0].split(". ")[0]
        reason = f"{type(err).__name__}: {first}" if first else type(err).__name__
        raise RunConfigError(
            f"{path} cannot be read as {what} ({reason}); the file may be truncated or "
            f"damaged{tail}"
        ) from err
    if not isinstance(saved, dict):
        raise RunConfigError(f"{path} holds a {type(saved).__name__}, not {what}{tail}")
    return saved


def load_state(path: Path, device: torch.device) -> dict[str, Any]:
    """A training checkpoint (:func:`load_torch_file`); the error says to train afresh."""
    return load_torch_file(
        path, device, advice="delete the folder (or use another run root) to train afresh"
    )


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------
def training_command(
    module: str,
    description: str,
    train: Callable[..., pd.DataFrame],
    section: str,
    argv: Sequence[str] | None = None,
    stages: Sequence[str] = (),
) -> None:
    """``python -m <module>`` (or ``torchrun ... -m <module>``) for a trainer.

    Parses ``--profile --run-root --data-root --steps --overrides --device --fresh
    --no-progress`` (and ``--stage`` when ``stages`` are given), calls ``train(profile,
    run_root, data_root, steps=…, resume=…, progress=…, device=…[, stage=…])`` and, on
    rank 0, prints the last rows of the history it returns.

    Parameters
    ----------
    module, description : str
        The program name and what it does, for ``--help``.
    train : callable
        The trainer.
    section : str
        The profile section its settings live in (for the ``--overrides`` example).
    argv : sequence of str, optional
    stages : sequence of str
        Stages the trainer accepts (first = default); none: no ``--stage``.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--profile", default="reduced", help="profile name (reduced, paper, smoke)")
    if stages:
        parser.add_argument("--stage", default=stages[0], choices=stages, help="which stage")
    parser.add_argument("--run-root", default="runs", help="folder of the runs")
    parser.add_argument("--data-root", default="data", help="folder holding mini/ or real/")
    parser.add_argument("--steps", type=int, default=None, help="total steps to reach")
    parser.add_argument(
        "--overrides",
        default="{}",
        help=f'profile overrides as JSON, e.g. \'{{"{section}": {{"batch_size": 4}}}}\'',
    )
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda:LOCAL_RANK or cpu)"
    )
    parser.add_argument("--fresh", action="store_true", help="do not resume; train afresh")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    try:
        overrides = json.loads(args.overrides)
    except json.JSONDecodeError as err:
        parser.error(f"--overrides is not valid JSON ({err}): {args.overrides!r}")
    options = {"stage": args.stage} if stages else {}
    history = train(
        load_profile(args.profile, overrides),
        args.run_root,
        args.data_root,
        steps=args.steps,
        resume=not args.fresh,
        progress=not args.no_progress,
        device=args.device,
        **options,
    )
    if int(os.environ.get("RANK", "0")) == 0 and len(history):
        print(history.tail(5).to_string(index=False))
