"""Training the WaveNet vocoder on clean speech, as r9y9's ``train.py``.

See original_code.md#oc-wavenet-training.

:func:`train_vocoder` trains the profile's WaveNet on the clean training utterances of
the data split (``splits.target_train``) and leaves in ``runs/<profile>/vocoder/wavenet/``::

    config.json            the WaveNet, its training schedule, the features and the
                           fingerprints of the split and the corpus (written at the start)
    checkpoint_latest.pth  the whole training state after the last saved step (r9y9's
                           keys ``state_dict``, ``optimizer``, ``global_step``,
                           ``global_epoch``, ``global_test_step``, plus ``ema``,
                           ``config``, ``history`` and ``pending``)
    checkpoint_ema.pth     the moving average of the weights in the published format
                           (``state_dict`` with ``weight_g`` / ``weight_v`` names): what
                           synthesises, see :func:`load_trained_vocoder`
    history.csv            one row every ``log_interval`` steps: step, loss (mean NLL in
                           nats of the interval's steps), lr (of the row's step),
                           grad_norm (mean before clipping), seconds (of the interval)
    logs/                  TensorBoard event files (the same curves)
    features/              r9y9's preprocessed audio and mel of every training utterance
                           (``<utt>-audio.npy``, ``<utt>-mel.npy``)

As in the original: each step takes ``batch_size`` utterances and from each a random
window of ``max_time_steps // 256`` mel frames (31 at the paper's 8000 samples) with the
matching ``256 · frames`` samples: start frame ``s = randint(0, Tc − frames)`` (NumPy's
exclusive upper end, as r9y9's ``np.random.randint``); an utterance of at most
``frames`` frames is used whole, zero-padded, and masked out of the loss. The network
sees the audio and predicts it one sample ahead (``loss(y_hat[:, :, :-1], x[:, 1:],
mask[:, 1:])``). Adam (β 0.9 / 0.999, ε 1e-8) with the noam rate of
:func:`noam_learning_rate` set before every step; optional gradient-norm clipping (off
in the paper); after every step the moving average ``shadow ← shadow − (1 − decay) ·
(shadow − θ)`` over all parameters, starting from the initial weights. Unlike r9y9,
whose sampler groups utterances of similar length, utterances are drawn in a fresh
random order every epoch (with 31-frame windows nearly every LJSpeech utterance is
cropped, so length grouping saves no padding), and no test-set evaluation runs during
training.

Exact resume
------------
Stopping after step k and calling :func:`train_vocoder` again gives, bit for bit on a
CPU, the weights, average, optimizer state and ``history.csv`` of an uninterrupted run:

* the checkpoint holds the weights, the moving average, Adam's moments and step counts,
  the logged rows and the partial sums of the next row; the rate is a function of the
  step;
* the batch of step t is a pure function of ``(seed, t)`` (:class:`TrainingWindows`);
* before step t, torch's generator (dropout) is seeded from ``(seed, t, rank)``.

The checkpoint is written every ``checkpoint_interval`` steps and after the last one,
atomically, the average first: an interruption leaves the previous pair intact, and
``history.csv`` is rewritten from the checkpoint on resume. TensorBoard events of
steps after the checkpoint are purged on resume.

Several GPUs
------------
Under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains a
``DistributedDataParallel`` replica: NCCL on GPUs, gloo on CPUs. ``batch_size`` is the
global batch; process r takes the r-th of ``WORLD_SIZE`` equal slices of it, and its
loss is weighted by its share of the batch's valid samples, so that the averaged
gradient is that of one process on the whole batch. Only rank 0 writes files::

    torchrun --standalone --nproc_per_node=4 -m synthsep_lib.pipeline.vocoder_training \\
        --profile paper --run-root runs --data-root data
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from synthsep_lib import audio, corpora
from synthsep_lib.config import load_profile
from synthsep_lib.files import atomic_path, file_sha1, reset_if_stale, write_json_atomic
from synthsep_lib.pipeline.runs import (
    CHAPTER_DATA,
    CHAPTER_VOCODER,
    RunConfigError,
    RunPaths,
    check_same_settings,
    config_differences,
    require_artifact,
    splits_fingerprint,
)
from synthsep_lib.vocoder.wavenet import (
    WaveNet,
    WaveNetConfig,
    load_r9y9_checkpoint,
    load_r9y9_state_dict,
    to_r9y9_state_dict,
)

__all__ = [
    "CONFIG_NAME",
    "CHECKPOINT_NAME",
    "EMA_CHECKPOINT_NAME",
    "HISTORY_NAME",
    "LOG_DIR_NAME",
    "FEATURES_DIR_NAME",
    "RunConfigError",
    "wavenet_config",
    "vocoder_run_config",
    "noam_learning_rate",
    "cache_training_features",
    "TrainingWindows",
    "train_vocoder",
    "load_trained_vocoder",
    "main",
]

CONFIG_NAME = "config.json"
CHECKPOINT_NAME = "checkpoint_latest.pth"
EMA_CHECKPOINT_NAME = "checkpoint_ema.pth"
HISTORY_NAME = "history.csv"
LOG_DIR_NAME = "logs"
FEATURES_DIR_NAME = "features"

#: The vocoder settings a training run depends on (stored in ``config.json``).
TRAINING_SETTINGS = (
    "batch_size",
    "max_time_steps",
    "learning_rate",
    "warmup_steps",
    "ema_decay",
    "clip_grad_norm",
    "steps",
    "checkpoint_interval",
    "log_interval",
    "seed",
)
#: Settings that may change between a run and its resumption: the number of steps to
#: reach and when to save and log (none of them changes a step's result).
RESUMABLE_CHANGES = ("vocoder.steps", "vocoder.checkpoint_interval", "vocoder.log_interval")
HISTORY_COLUMNS = ("step", "loss", "lr", "grad_norm", "seconds")

# Tags keep the seed sequences of the three random draws apart.
_ORDER_TAG, _CROP_TAG, _DROPOUT_TAG = 0, 1, 2


# ---------------------------------------------------------------------------------------
# Configuration and schedule
# ---------------------------------------------------------------------------------------
def wavenet_config(profile) -> WaveNetConfig:
    """The WaveNet architecture of a profile: the paper's, with ``vocoder.model`` applied.

    Parameters
    ----------
    profile : Profile

    Returns
    -------
    WaveNetConfig

    Raises
    ------
    ValueError
        If the overrides name unknown fields, or the model's hop (product of
        ``upsample_scales``) or mel bands differ from the profile's features.
    """
    cfg = WaveNetConfig.from_dict(profile.vocoder.model)
    feat = profile.features
    if cfg.hop_size != feat.hop_size or cfg.cin_channels != feat.num_mels:
        raise ValueError(
            f"the WaveNet of profile {profile.name!r} has hop {cfg.hop_size} and "
            f"{cfg.cin_channels} mel bands, but its features have hop {feat.hop_size} and "
            f"{feat.num_mels} bands; set vocoder.model upsample_scales / cin_channels to match"
        )
    return cfg


def vocoder_run_config(profile, splits=None, lj=None) -> dict[str, Any]:
    """The settings a vocoder training run depends on, as stored in ``config.json``.

    Parameters
    ----------
    profile : Profile
        Its features, WaveNet architecture and training settings are stored.
    splits : corpora.Splits, optional
        If given, the SHA-1 of its six lists is stored as ``data.splits_sha1``.
    lj : corpora.LJSpeech, optional
        If given, the SHA-1 of its ``metadata.csv`` is stored as
        ``data.lj_metadata_sha1`` (a rebuilt mini corpus has other sentences).

    Returns
    -------
    dict
        ``{"profile", "features": {...}, "wavenet": {...}, "vocoder": {...}, "data": {...}}``.
    """
    voc = dataclasses.asdict(profile.vocoder)
    config = {
        "profile": profile.name,
        "features": profile.features.to_dict(),
        "wavenet": wavenet_config(profile).to_dict(),
        "vocoder": {key: voc[key] for key in TRAINING_SETTINGS},
        "data": {},
    }
    if splits is not None:
        config["data"]["splits_sha1"] = splits_fingerprint(splits)
    if lj is not None:
        config["data"]["lj_metadata_sha1"] = file_sha1(Path(lj.root) / "metadata.csv")
    return config


def noam_learning_rate(step: int, init_lr: float, warmup_steps: int) -> float:
    """r9y9's noam schedule: ``init_lr · √w · min((t+1) · w^-1.5, (t+1)^-0.5)``.

    Parameters
    ----------
    step : int
        Optimizer steps done before this one (r9y9's ``global_step``, from 0).
    init_lr : float
        Peak rate (1e-3), reached at ``step = warmup_steps - 1``.
    warmup_steps : int
        w (4000).

    Returns
    -------
    float
        2.5e-7 at step 0, 1e-3 at step 3999 and 1.118e-4 at step 320000 for the paper's
        settings (see original_code.md#oc-wavenet-training).
    """
    w = float(warmup_steps)
    t = float(step) + 1.0
    return float(init_lr * w**0.5 * min(t * w**-1.5, t**-0.5))


# ---------------------------------------------------------------------------------------
# Data: r9y9's preprocessed utterances and random windows
# ---------------------------------------------------------------------------------------
def _feature_paths(folder: Path, utt: str) -> tuple[Path, Path]:
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
        u for u in list(utterances)[rank::world_size] if not _feature_paths(folder, u)[1].exists()
    ]
    for utt in tqdm(todo, desc="vocoder features", unit="utt", disable=not progress or not todo):
        target = lj.load_target(utt, features)
        mel = audio.mel_spectrogram(target[features.lead_in :], features)
        if mel.shape[0] * features.hop_size != target.shape[0]:
            raise ValueError(
                f"utterance {utt}: {mel.shape[0]} mel frames do not match its "
                f"{target.shape[0]} samples of saved audio (expected frames × {features.hop_size})"
            )
        audio_path, mel_path = _feature_paths(folder, utt)
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
            mel_path = _feature_paths(self.folder, utt)[1]
            if not mel_path.exists():
                raise FileNotFoundError(f"features of {utt} are missing: {mel_path}")
            lengths.append(np.load(mel_path, mmap_mode="r").shape[0])
        #: Mel frames of every utterance.
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self._order: tuple[int, np.ndarray] | None = None

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
            audio_path, mel_path = _feature_paths(self.folder, self.utterances[i])
            x[k, : f * hop] = np.load(audio_path, mmap_mode="r")[s * hop : (s + f) * hop]
            mel = np.load(mel_path, mmap_mode="r")[s : s + f]
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


def _lj_reader(profile, data_root) -> corpora.LJSpeech:
    folder = corpora.corpus_folder(profile, data_root)
    require_artifact(folder, CHAPTER_DATA)
    return corpora.LJSpeech(folder)


def _features_signature(features, lj) -> str:
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
def _process_group(device) -> Iterator[tuple[int, int, torch.device]]:
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


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def _step_seed(seed: int, step: int, rank: int) -> int:
    entropy = np.random.SeedSequence([int(seed), _DROPOUT_TAG, int(step), int(rank)])
    return int(entropy.generate_state(1, np.uint64)[0] % (2**63 - 1))


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------
def _write_history(path: Path, rows: list[dict[str, float]]) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=list(HISTORY_COLUMNS)).to_csv(tmp, index=False)


def _history_frame(rows: list[dict[str, float]], folder: Path, initial_step: int) -> pd.DataFrame:
    history = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    history["step"] = history["step"].astype(np.int64)
    history.attrs.update(run_dir=str(folder), initial_step=initial_step)
    return history


def _save_torch(path: Path, obj: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _summary_writer(folder: Path, purge_step: int | None):
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


def _load_state(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        raise RunConfigError(
            f"{path} cannot be read ({err}); delete the folder (or use another run root) "
            "to train afresh"
        ) from err


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------
def train_vocoder(
    profile,
    run_root: str | os.PathLike,
    data_root: str | os.PathLike,
    *,
    steps: int | None = None,
    resume: bool = True,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Train (or resume training) the profile's WaveNet vocoder on the clean training speech.

    See the module docstring for the files written, the recipe and how resuming is made
    exact. Run under ``torchrun`` for several GPUs (or CPU processes).

    Parameters
    ----------
    profile : Profile or str
        Features, ``vocoder.model`` (architecture) and the training settings
        (``batch_size``, ``max_time_steps``, ``learning_rate``, ``warmup_steps``,
        ``ema_decay``, ``clip_grad_norm``, ``steps``, ``checkpoint_interval``,
        ``log_interval``, ``seed``); a name loads that profile.
    run_root : path-like
        Folder of the runs; ``<run_root>/<profile>/data/splits.json`` (Chapter 1) is read.
    data_root : path-like
        Folder holding the profile's corpus (``mini/`` or ``real/``, Chapter 1).
    steps : int, optional
        Total optimizer steps to reach (not "more steps"); default ``vocoder.steps``.
    resume : bool
        Continue from ``checkpoint_latest.pth`` if there is one; False deletes the run
        (not the cached features) and trains afresh.
    progress : bool
        Show tqdm progress bars (rank 0 only).
    device : str or torch.device, optional
        Default: ``cuda:<LOCAL_RANK>`` if CUDA is available, else the CPU.

    Returns
    -------
    pandas.DataFrame
        ``history.csv``: ``step`` (steps done), ``loss``, ``lr``, ``grad_norm``,
        ``seconds``; ``attrs`` holds ``run_dir`` and ``initial_step`` (steps already done
        when called). Every process returns it.

    Raises
    ------
    FileNotFoundError
        If Chapter 1's ``splits.json`` or corpus is missing (names the chapter).
    RunConfigError
        If the run folder holds a run made with other settings (names them).
    FloatingPointError
        If the loss becomes NaN or infinite (that step is not taken or saved).
    ValueError
        For inconsistent settings (window shorter than a hop, batch not divisible by
        the number of processes, model hop ≠ feature hop).
    """
    if isinstance(profile, str):
        profile = load_profile(profile)
    voc, feat = profile.vocoder, profile.features
    target = int(voc.steps if steps is None else steps)
    if target < 0:
        raise ValueError(f"steps must be >= 0, got {target}")
    cfg = wavenet_config(profile)
    frames = voc.max_time_steps // cfg.hop_size
    if frames < 1:
        raise ValueError(
            f"vocoder.max_time_steps = {voc.max_time_steps} is shorter than one hop "
            f"({cfg.hop_size} samples)"
        )
    paths = RunPaths(run_root, profile.name)
    folder = paths.vocoder
    splits = corpora.load_splits(require_artifact(paths.splits, CHAPTER_DATA))
    lj = _lj_reader(profile, data_root)
    config = vocoder_run_config(profile, splits, lj)

    with _process_group(device) as (rank, world, device):
        main_process = rank == 0
        checkpoint_path = folder / CHECKPOINT_NAME
        if main_process:
            folder.mkdir(parents=True, exist_ok=True)
            if not resume:
                for name in (CHECKPOINT_NAME, EMA_CHECKPOINT_NAME):
                    (folder / name).unlink(missing_ok=True)
        _barrier(world)
        state = _load_state(checkpoint_path, device) if checkpoint_path.exists() else None
        if state is not None:
            stored = state.get("config", {})
            check_same_settings(
                stored, config, RESUMABLE_CHANGES, "vocoder", folder, "pass resume=False"
            )
        rows: list[dict[str, float]] = list(state["history"]) if state else []
        initial = int(state["global_step"]) if state else 0
        if main_process:
            write_json_atomic(folder / CONFIG_NAME, config)
            if state is None:  # nothing of an earlier attempt may mix with a fresh run
                (folder / EMA_CHECKPOINT_NAME).unlink(missing_ok=True)
                (folder / HISTORY_NAME).unlink(missing_ok=True)
                shutil.rmtree(folder / LOG_DIR_NAME, ignore_errors=True)
            else:
                _write_history(folder / HISTORY_NAME, rows)
        if initial >= target:
            _barrier(world)
            return _history_frame(rows, folder, initial)

        features_dir = folder / FEATURES_DIR_NAME
        if main_process:
            reset_if_stale(features_dir, _features_signature(feat, lj), pattern="*.npy")
        _barrier(world)
        cache_training_features(
            lj,
            splits.target_train,
            feat,
            features_dir,
            rank=rank,
            world_size=world,
            progress=progress and main_process,
        )
        _barrier(world)
        windows = TrainingWindows(
            features_dir, splits.target_train, frames, voc.batch_size, voc.seed, cfg.hop_size
        )
        cuda_devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_devices, device_type=device.type):
            rows = _train_loop(
                cfg=cfg,
                voc=voc,
                config=config,
                windows=windows,
                state=state,
                rows=rows,
                folder=folder,
                target=target,
                rank=rank,
                world=world,
                device=device,
                progress=progress,
            )
        _barrier(world)
    return _history_frame(rows, folder, initial)


def _train_loop(
    *, cfg, voc, config, windows, state, rows, folder, target, rank, world, device, progress
):
    """The steps from the checkpoint's (or 0) to ``target``; returns the history rows."""
    main_process = rank == 0
    torch.manual_seed(int(voc.seed))
    model = WaveNet(cfg).to(device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(voc.ema_decay), use_buffers=False)
    ema.update_parameters(model)  # the first call copies: the average starts at θ0 (as r9y9)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=noam_learning_rate(0, voc.learning_rate, voc.warmup_steps),
        betas=(0.9, 0.999),
        eps=1e-8,
    )
    pending = {"loss": 0.0, "grad_norm": 0.0, "count": 0, "seconds": 0.0}
    initial = 0
    if state is not None:
        load_r9y9_state_dict(model, state["state_dict"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        pending = dict(state["pending"])
        initial = int(state["global_step"])
    net = model
    if world > 1:
        # static_graph: the last layer's residual output is never used (as in r9y9), and
        # DDP must know that those parameters get no gradient.
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True
        )
    model.train()
    # The last residual layer's conv1x1_out gets no gradient (its output is unused).
    params = [p for p in model.parameters() if p.requires_grad]

    writer = bar = None
    if main_process:
        writer = _summary_writer(folder, purge_step=initial + 1 if state is not None else None)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=target, initial=initial, desc="WaveNet training", unit="step")
    last_saved = initial
    try:
        for step in range(initial, target):
            t0 = time.perf_counter()
            lr = noam_learning_rate(step, voc.learning_rate, voc.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = windows.batch(step, rank, world)
            x = batch["audio"].to(device, non_blocking=True)
            c = batch["mel"].to(device, non_blocking=True)
            mask = batch["mask"].to(device, non_blocking=True)
            torch.manual_seed(_step_seed(voc.seed, step, rank))
            optimizer.zero_grad(set_to_none=True)
            y_hat = net(model.model_input(x), c)
            loss = model.loss(y_hat[:, :, :-1], x[:, 1:], mask[:, 1:])
            if world > 1:
                # DDP averages gradients over processes: weighting each process's mean by
                # its share of the batch's samples gives the whole batch's mean.
                weighted = loss * batch["share"]
                (weighted * world).backward()
                total = weighted.detach().clone()
                dist.all_reduce(total)
            else:
                loss.backward()
                total = loss.detach()
            if voc.clip_grad_norm > 0:
                grad_norm = torch.nn.utils.clip_grad_norm_(params, voc.clip_grad_norm)
            else:
                grad_norm = torch.nn.utils.get_total_norm(
                    [p.grad for p in params if p.grad is not None]
                )
            value = float(total)
            if not math.isfinite(value):
                saved = (
                    f"the checkpoint holds step {last_saved}"
                    if last_saved
                    else "no checkpoint was written yet"
                )
                raise FloatingPointError(
                    f"the WaveNet training loss became {value} at step {step + 1} (learning "
                    f"rate {lr:.3g}); training stopped before that step, {saved}. Try a lower "
                    "learning rate or clip_grad_norm."
                )
            optimizer.step()
            ema.update_parameters(model)
            done = step + 1
            pending["loss"] += value
            pending["grad_norm"] += float(grad_norm)
            pending["count"] += 1
            pending["seconds"] += time.perf_counter() - t0
            if done % voc.log_interval == 0:
                n = pending["count"]
                row = {
                    "step": done,
                    "loss": pending["loss"] / n,
                    "lr": lr,
                    "grad_norm": pending["grad_norm"] / n,
                    "seconds": pending["seconds"],
                }
                rows.append(row)
                pending = {"loss": 0.0, "grad_norm": 0.0, "count": 0, "seconds": 0.0}
                if main_process:
                    _write_history(folder / HISTORY_NAME, rows)
                    if writer is not None:
                        for key in ("loss", "lr", "grad_norm"):
                            writer.add_scalar(f"train/{key}", row[key], done)
                        writer.flush()
            if done % voc.checkpoint_interval == 0 or done == target:
                if main_process:
                    _save_checkpoints(
                        folder, model, ema, optimizer, windows, done, config, rows, pending
                    )
                last_saved = done
            if bar is not None:
                bar.set_postfix(loss=f"{value:.4g}", refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    return rows


def _save_checkpoints(folder, model, ema, optimizer, windows, step, config, rows, pending):
    """The moving average (published format), then the whole training state, atomically."""
    epoch = windows.epoch(step)
    _save_torch(
        folder / EMA_CHECKPOINT_NAME,
        {
            "state_dict": to_r9y9_state_dict(ema.module),
            "optimizer": None,
            "global_step": step,
            "global_epoch": epoch,
            "global_test_step": 0,
            "config": config,
        },
    )
    _save_torch(
        folder / CHECKPOINT_NAME,
        {
            "state_dict": to_r9y9_state_dict(model),
            "optimizer": optimizer.state_dict(),
            "global_step": step,
            "global_epoch": epoch,
            "global_test_step": 0,
            "ema": ema.state_dict(),
            "config": config,
            "history": rows,
            "pending": dict(pending),
            "versions": {"torch": str(torch.__version__)},
        },
    )


# ---------------------------------------------------------------------------------------
# The trained model
# ---------------------------------------------------------------------------------------
def load_trained_vocoder(
    run_root: str | os.PathLike, profile, device: str | torch.device = "cpu"
) -> WaveNet:
    """The moving average of a trained WaveNet (``checkpoint_ema.pth``), ready to synthesise.

    Parameters
    ----------
    run_root : path-like
        Folder of the runs.
    profile : Profile or str
        Its features and WaveNet architecture must be those the model was trained with.
    device : str or torch.device
        Where the weights go.

    Returns
    -------
    WaveNet
        In eval mode.

    Raises
    ------
    FileNotFoundError
        If the checkpoint is missing (names Chapter 3, which trains it).
    RunConfigError
        If the profile's features or architecture differ from the trained model's.
    """
    if isinstance(profile, str):
        profile = load_profile(profile)
    path = require_artifact(
        RunPaths(run_root, profile.name).vocoder / EMA_CHECKPOINT_NAME, CHAPTER_VOCODER
    )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    stored = checkpoint.get("config", {})
    current = vocoder_run_config(profile)
    wanted = ("features", "wavenet")
    diffs = config_differences({k: stored.get(k) for k in wanted}, {k: current[k] for k in wanted})
    if diffs:
        raise RunConfigError(
            f"the WaveNet in {path} was trained with other settings: {'; '.join(diffs)}. "
            f"Train it again ({CHAPTER_VOCODER}) or use the profile it was trained with."
        )
    model, _ = load_r9y9_checkpoint(checkpoint, WaveNetConfig.from_dict(stored["wavenet"]))
    return model.to(device)


# ---------------------------------------------------------------------------------------
# Command line (torchrun)
# ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m synthsep_lib.pipeline.vocoder_training`` (or ``torchrun ... -m``)."""
    parser = argparse.ArgumentParser(
        prog="python -m synthsep_lib.pipeline.vocoder_training",
        description="Train the WaveNet vocoder of a profile on the clean training speech "
        "(run it under torchrun for several GPUs).",
    )
    parser.add_argument("--profile", default="reduced", help="profile name (reduced, paper)")
    parser.add_argument("--run-root", default="runs", help="folder of the runs")
    parser.add_argument("--data-root", default="data", help="folder holding mini/ or real/")
    parser.add_argument("--steps", type=int, default=None, help="total steps to reach")
    parser.add_argument(
        "--overrides",
        default="{}",
        help='profile overrides as JSON, e.g. \'{"vocoder": {"batch_size": 4}}\'',
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
    history = train_vocoder(
        load_profile(args.profile, overrides),
        args.run_root,
        args.data_root,
        steps=args.steps,
        resume=not args.fresh,
        progress=not args.no_progress,
        device=args.device,
    )
    if int(os.environ.get("RANK", "0")) == 0 and len(history):
        print(history.tail(5).to_string(index=False))


if __name__ == "__main__":
    main()
