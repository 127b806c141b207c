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

import dataclasses
import math
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from synthsep_lib import corpora
from synthsep_lib.config import load_profile
from synthsep_lib.files import file_sha1, reset_if_stale, write_json_atomic
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
from synthsep_lib.pipeline.torch_training import (
    LOG_DIR_NAME,
    TrainingWindows,
    barrier,
    cache_training_features,
    features_signature,
    history_frame,
    lj_reader,
    load_state,
    load_torch_file,
    process_group,
    save_torch,
    step_seed,
    summary_writer,
    training_command,
    write_history,
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
    "train_vocoder",
    "load_trained_vocoder",
    "load_profile_wavenet",
    "load_vocoder_file",
    "main",
]

CONFIG_NAME = "config.json"
CHECKPOINT_NAME = "checkpoint_latest.pth"
EMA_CHECKPOINT_NAME = "checkpoint_ema.pth"
HISTORY_NAME = "history.csv"
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
    lj = lj_reader(profile, data_root)
    config = vocoder_run_config(profile, splits, lj)

    with process_group(device) as (rank, world, device):
        main_process = rank == 0
        checkpoint_path = folder / CHECKPOINT_NAME
        if main_process:
            folder.mkdir(parents=True, exist_ok=True)
            if not resume:
                for name in (CHECKPOINT_NAME, EMA_CHECKPOINT_NAME):
                    (folder / name).unlink(missing_ok=True)
        barrier(world)
        state = load_state(checkpoint_path, device) if checkpoint_path.exists() else None
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
                write_history(folder / HISTORY_NAME, rows, HISTORY_COLUMNS)
        if initial >= target:
            barrier(world)
            return history_frame(rows, HISTORY_COLUMNS, folder, initial)

        features_dir = folder / FEATURES_DIR_NAME
        if main_process:
            reset_if_stale(features_dir, features_signature(feat, lj), pattern="*.npy")
        barrier(world)
        cache_training_features(
            lj,
            splits.target_train,
            feat,
            features_dir,
            rank=rank,
            world_size=world,
            progress=progress and main_process,
        )
        barrier(world)
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
        barrier(world)
    return history_frame(rows, HISTORY_COLUMNS, folder, initial)


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
        writer = summary_writer(folder, purge_step=initial + 1 if state is not None else None)
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
            torch.manual_seed(step_seed(voc.seed, step, rank))
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
                    write_history(folder / HISTORY_NAME, rows, HISTORY_COLUMNS)
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
    save_torch(
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
    save_torch(
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
    return load_vocoder_file(path, profile, device)


def load_profile_wavenet(
    run_root: str | os.PathLike, profile, device: str | torch.device = "cpu"
) -> WaveNet:
    """The WaveNet that profile ``profile`` synthesises with, as ``vocoder.source`` says.

    ``pretrained``: the published checkpoint in ``<run>/vocoder/wavenet/published`` (downloaded
    there, or verified, by
    :func:`~synthsep_lib.pipeline.pretrained_wavenet.load_pretrained_wavenet`);
    ``train``: :func:`load_trained_vocoder`.

    Returns
    -------
    WaveNet
        In eval mode on ``device``.
    """
    if isinstance(profile, str):
        profile = load_profile(profile)
    if profile.vocoder.source == "pretrained":
        from .pretrained_wavenet import load_pretrained_wavenet

        folder = RunPaths(run_root, profile.name).published_wavenet
        return load_pretrained_wavenet(folder, device, progress=False)
    return load_trained_vocoder(run_root, profile, device)


def load_vocoder_file(
    path: str | os.PathLike, profile, device: str | torch.device = "cpu"
) -> WaveNet:
    """:func:`load_trained_vocoder` from a given ``.pth`` file (e.g. a copy of a run's).

    Raises
    ------
    RunConfigError
        If the profile's features or architecture differ from the trained model's, or
        the file is damaged or not a checkpoint of this book (names the file).
    """
    checkpoint = load_torch_file(path, advice=f"train it again ({CHAPTER_VOCODER})")
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
    training_command(
        "synthsep_lib.pipeline.vocoder_training",
        "Train the WaveNet vocoder of a profile on the clean training speech "
        "(run it under torchrun for several GPUs).",
        train_vocoder,
        "vocoder",
        argv,
    )


if __name__ == "__main__":
    main()
