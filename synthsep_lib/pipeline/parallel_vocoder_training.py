"""Training the parallel vocoder: on clean speech, then on the encoder's estimates.

:func:`train_parallel_vocoder` trains :class:`~synthsep_lib.vocoder.parallel.ParallelVocoder`
in two stages, each in its own folder under ``runs/<profile>/vocoder/parallel/``:

``clean``
    Pairs (mel of a clean training utterance, its saved audio), exactly the WaveNet's
    (:func:`~synthsep_lib.pipeline.torch_training.cache_training_features`, cached in
    ``features/``), for ``parallel.steps`` steps.
``finetuned``
    Starts from the clean stage's generator and discriminators and trains
    ``parallel.finetune_steps`` more steps on pairs (the Proposed encoder's estimate of
    a simulated training mixture, the clean target)
    (:func:`~synthsep_lib.pipeline.estimate_pairs.build_estimate_pairs`, cached in
    ``estimates/``), at ``parallel.finetune_learning_rate``.

Each stage folder holds::

    config.json       architecture, settings and fingerprints of the data
    checkpoint.pth    the whole training state after the last saved step
    generator.pth     the weights that synthesise (the moving average if
                      ``ema_decay`` > 0) and ``config``: what :func:`load_parallel_vocoder` reads
    history.csv       one row every ``log_interval`` steps (:data:`HISTORY_COLUMNS`)
    logs/             TensorBoard event files (the same curves)

Every step takes ``batch_size`` windows of ``window_frames`` frames
(:class:`~synthsep_lib.pipeline.torch_training.TrainingWindows`) and runs
:func:`~synthsep_lib.vocoder.adversarial.training_step`: spectral losses only before
``adversarial_start``, then also the discriminators (AdamW, β 0.8 / 0.99, the rate
multiplied by ``lr_decay`` every 1000 steps, as HiFi-GAN and Vocos).

Exact resume: batch t is a pure function of ``(seed, t)``, torch's generator is seeded
before every step, and the checkpoint holds every network, both optimisers, the
average, the logged rows and the partial sums of the next row. Stopping after step k
and calling again gives, on a CPU, the weights of an uninterrupted run bit for bit.

Several GPUs: under ``torchrun`` each process trains
``DistributedDataParallel`` replicas on its equal slice of every batch::

    torchrun --standalone --nproc_per_node=4 -m synthsep_lib.pipeline.parallel_vocoder_training \\
        --profile paper --stage clean
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

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from synthsep_lib import audio, corpora
from synthsep_lib.config import load_profile
from synthsep_lib.files import file_sha1, reset_if_stale, write_json_atomic
from synthsep_lib.pipeline.runs import (
    CHAPTER_DATA,
    CHAPTER_PARALLEL,
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
    load_state,
    load_torch_file,
    process_group,
    save_torch,
    step_seed,
    summary_writer,
    training_command,
    write_history,
)
from synthsep_lib.vocoder.adversarial import (
    MelScale,
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
    training_step,
)
from synthsep_lib.vocoder.parallel import ParallelVocoder, ParallelVocoderConfig

__all__ = [
    "STAGES",
    "CONFIG_NAME",
    "CHECKPOINT_NAME",
    "GENERATOR_NAME",
    "HISTORY_NAME",
    "HISTORY_COLUMNS",
    "parallel_vocoder_config",
    "stage_folder",
    "train_parallel_vocoder",
    "load_parallel_vocoder",
    "load_generator_file",
    "time_training_step",
    "main",
]

#: The two stages, in training order.
STAGES = ("clean", "finetuned")
CONFIG_NAME = "config.json"
CHECKPOINT_NAME = "checkpoint.pth"
GENERATOR_NAME = "generator.pth"
HISTORY_NAME = "history.csv"
HISTORY_COLUMNS = (
    "step",
    "loss",
    "mel",
    "stft",
    "adversarial",
    "feature_matching",
    "discriminator",
    "lr",
    "grad_norm",
    "seconds",
)
_LOSS_PARTS = ("mel", "stft", "adversarial", "feature_matching", "discriminator")
#: Settings that change no step's result: how far to go and when to save and log.
RESUMABLE_CHANGES = (
    "parallel.steps",
    "parallel.finetune_steps",
    "parallel.checkpoint_interval",
    "parallel.log_interval",
    "parallel.synthesis_files",
)


def parallel_vocoder_config(profile) -> ParallelVocoderConfig:
    """The generator of a profile: Vocos' size with ``parallel.model`` applied.

    Raises
    ------
    ValueError
        For unknown fields, or a hop or number of mel bands other than the features'.
    """
    cfg = ParallelVocoderConfig.from_dict(profile.parallel.model)
    feat = profile.features
    if (cfg.hop_size, cfg.num_mels) != (feat.hop_size, feat.num_mels):
        raise ValueError(
            f"the parallel vocoder of profile {profile.name!r} has hop {cfg.hop_size} and "
            f"{cfg.num_mels} mel bands, but the features have hop {feat.hop_size} and "
            f"{feat.num_mels}; set parallel.model hop_size / num_mels to match"
        )
    return cfg


def stage_folder(paths: RunPaths, stage: str) -> Path:
    """``vocoder/parallel/<stage>/`` of a run, for ``stage`` in :data:`STAGES`."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    return paths.parallel_vocoder / stage


def _run_config(profile, stage: str, data: dict[str, str]) -> dict[str, Any]:
    settings = dataclasses.asdict(profile.parallel)
    settings.pop("model")
    return {
        "profile": profile.name,
        "stage": stage,
        "features": profile.features.to_dict(),
        "generator": parallel_vocoder_config(profile).to_dict(),
        "parallel": settings,
        "data": data,
    }


class _Nets:
    """The generator, its moving average, the discriminators and both optimisers."""

    def __init__(self, profile, device):
        par = profile.parallel
        torch.manual_seed(int(par.seed))
        self.generator = ParallelVocoder(parallel_vocoder_config(profile), profile.features).to(
            device
        )
        self.discriminators = torch.nn.ModuleList(
            [
                MultiPeriodDiscriminator(par.period_channels),
                MultiResolutionDiscriminator(par.resolution_channels),
            ]
        ).to(device)
        self.ema = None
        if par.ema_decay > 0:
            self.ema = AveragedModel(
                self.generator, multi_avg_fn=get_ema_multi_avg_fn(par.ema_decay), use_buffers=True
            )
        betas = (0.8, 0.99)
        self.g_opt = torch.optim.AdamW(self.generator.parameters(), par.learning_rate, betas)
        self.d_opt = torch.optim.AdamW(self.discriminators.parameters(), par.learning_rate, betas)

    def synthesiser(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.generator

    def state(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "discriminators": self.discriminators.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "g_opt": self.g_opt.state_dict(),
            "d_opt": self.d_opt.state_dict(),
        }

    def load(self, state: dict[str, Any], optimisers: bool = True) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminators.load_state_dict(state["discriminators"])
        if self.ema is not None:
            if state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            else:  # a fine-tuning average starts from the clean stage's synthesiser
                self.ema.module.load_state_dict(state["synthesiser"])
        if optimisers:
            self.g_opt.load_state_dict(state["g_opt"])
            self.d_opt.load_state_dict(state["d_opt"])


def _clean_pairs(profile, paths, lj, splits, rank, world, progress) -> tuple[Path, list[str]]:
    folder = paths.parallel_vocoder / "features"
    if rank == 0:
        reset_if_stale(folder, features_signature(profile.features, lj), pattern="*.npy")
    barrier(world)
    cache_training_features(
        lj,
        splits.target_train,
        profile.features,
        folder,
        rank=rank,
        world_size=world,
        progress=progress and rank == 0,
    )
    return folder, list(splits.target_train)


def _estimate_pairs(profile, paths, lj, esc, splits, rank, world, progress):
    from synthsep_lib.pipeline.estimate_pairs import build_estimate_pairs, pair_names

    folder = paths.parallel_vocoder / "estimates"
    if rank == 0:  # the encoder runs in one process; the others wait for its files
        build_estimate_pairs(paths, profile, lj, esc, splits, folder, progress=progress)
    barrier(world)
    return folder, pair_names(splits.target_train, profile.parallel.finetune_rounds)


def train_parallel_vocoder(
    profile,
    run_root: str | os.PathLike,
    data_root: str | os.PathLike,
    *,
    stage: str = "clean",
    steps: int | None = None,
    resume: bool = True,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Train (or resume) one stage of the profile's parallel vocoder.

    See the module docstring for the stages, the files and how resuming is made exact.

    Parameters
    ----------
    profile : Profile or str
    run_root : path-like
        Folder of the runs (Chapter 1's ``splits.json``; for ``finetuned``, Chapter 2's
        Proposed encoder and this chapter's clean stage).
    data_root : path-like
        Folder holding the profile's corpus.
    stage : {"clean", "finetuned"}
    steps : int, optional
        Total steps of the stage to reach (default ``parallel.steps`` or
        ``parallel.finetune_steps``).
    resume : bool
        Continue from the stage's checkpoint; False trains the stage afresh (its
        cached training pairs are kept).
    progress : bool
    device : str or torch.device, optional
        Default: ``cuda:<LOCAL_RANK>`` if CUDA is available, else the CPU.

    Returns
    -------
    pandas.DataFrame
        ``history.csv`` (:data:`HISTORY_COLUMNS`); ``attrs`` holds ``run_dir`` and
        ``initial_step``.

    Raises
    ------
    FileNotFoundError
        If Chapter 1's data, Chapter 2's encoder or the clean stage is missing (names
        what makes it).
    RunConfigError
        If the stage folder holds a run made with other settings or features (names them).
    FloatingPointError
        If a loss becomes NaN or infinite (names the step and its windows; nothing of
        that step is saved).
    """
    if isinstance(profile, str):
        profile = load_profile(profile)
    par = profile.parallel
    default = par.steps if stage == "clean" else par.finetune_steps
    target = int(default if steps is None else steps)
    if target < 0:
        raise ValueError(f"steps must be >= 0, got {target}")
    paths = RunPaths(run_root, profile.name)
    folder = stage_folder(paths, stage)
    splits = corpora.load_splits(require_artifact(paths.splits, CHAPTER_DATA))
    lj, esc = corpora.open_corpora(profile, data_root)
    data = {
        "splits_sha1": splits_fingerprint(splits),
        "lj_metadata_sha1": file_sha1(Path(lj.root) / "metadata.csv"),
    }
    start_from = None
    if stage == "finetuned":
        clean = require_artifact(
            stage_folder(paths, "clean") / CHECKPOINT_NAME,
            f"{CHAPTER_PARALLEL} (the clean stage)",
        )
        data["clean_checkpoint_sha1"] = file_sha1(clean)
        start_from = clean
    config = _run_config(profile, stage, data)

    with process_group(device) as (rank, world, device):
        main_process = rank == 0
        checkpoint = folder / CHECKPOINT_NAME
        if main_process:
            folder.mkdir(parents=True, exist_ok=True)
            if not resume:
                checkpoint.unlink(missing_ok=True)
        barrier(world)
        state = load_state(checkpoint, device) if checkpoint.exists() else None
        if state is not None:
            check_same_settings(
                state.get("config", {}),
                config,
                RESUMABLE_CHANGES,
                "parallel vocoder",
                folder,
                "pass resume=False",
            )
        rows = list(state["history"]) if state else []
        initial = int(state["step"]) if state else 0
        if main_process:
            write_json_atomic(folder / CONFIG_NAME, config)
            if state is None:
                for name in (GENERATOR_NAME, HISTORY_NAME):
                    (folder / name).unlink(missing_ok=True)
                shutil.rmtree(folder / LOG_DIR_NAME, ignore_errors=True)
            else:
                write_history(folder / HISTORY_NAME, rows, HISTORY_COLUMNS)
        if initial >= target:
            barrier(world)
            return history_frame(rows, HISTORY_COLUMNS, folder, initial)
        if stage == "clean":
            pairs, names = _clean_pairs(profile, paths, lj, splits, rank, world, progress)
        else:
            pairs, names = _estimate_pairs(profile, paths, lj, esc, splits, rank, world, progress)
        barrier(world)
        windows = TrainingWindows(
            pairs, names, par.window_frames, par.batch_size, par.seed, profile.features.hop_size
        )
        nets = _Nets(profile, device)
        if state is not None:
            nets.load(state["nets"])
        elif start_from is not None:
            clean_state = load_state(start_from, device)
            nets.load(
                {**clean_state["nets"], "synthesiser": clean_state["synthesiser"]}, optimisers=False
            )
        learning_rate = par.learning_rate if stage == "clean" else par.finetune_learning_rate
        cuda = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda, device_type=device.type):
            rows = _train_loop(
                profile,
                nets,
                windows,
                state,
                rows,
                folder,
                config,
                target,
                learning_rate,
                stage,
                rank,
                world,
                device,
                progress,
            )
        barrier(world)
    return history_frame(rows, HISTORY_COLUMNS, folder, initial)


def _wrap(module, world, device):
    if world == 1:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def _new_pending() -> dict[str, float]:
    return {**{k: 0.0 for k in ("loss", *_LOSS_PARTS, "grad_norm", "seconds")}, "count": 0}


def _train_loop(
    profile,
    nets,
    windows,
    state,
    rows,
    folder,
    config,
    target,
    learning_rate,
    stage,
    rank,
    world,
    device,
    progress,
):
    par = profile.parallel
    main_process = rank == 0
    initial = int(state["step"]) if state else 0
    pending = dict(state["pending"]) if state else _new_pending()
    generator = _wrap(nets.generator, world, device)
    # Not wrapped in DDP: the generator's loss runs through them too, and DDP would average
    # those gradients (which are discarded) instead of the discriminators' own (below).
    discriminators = list(nets.discriminators)
    valid_from = profile.features.fft_size - profile.features.hop_size
    mel_scale = MelScale(
        audio.mel_basis(profile.features), profile.features.fft_size, profile.features.hop_size
    ).to(device)
    weights = {
        "mel": par.mel_weight,
        "stft": par.stft_weight,
        "adversarial": par.adversarial_weight,
        "feature_matching": par.feature_matching_weight,
    }
    nets.generator.train()
    writer = bar = None
    if main_process:
        writer = summary_writer(folder, purge_step=initial + 1 if state is not None else None)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=target, initial=initial, desc=f"parallel vocoder ({stage})", unit="step"
            )
    last_saved = initial
    try:
        for step in range(initial, target):
            t0 = time.perf_counter()
            lr = learning_rate * par.lr_decay ** (step / 1000)
            for opt in (nets.g_opt, nets.d_opt):
                for group in opt.param_groups:
                    group["lr"] = lr
            batch = windows.batch(step, rank, world)
            torch.manual_seed(step_seed(par.seed, step, rank))
            adversarial = step >= par.adversarial_start
            g_total, d_total, parts = training_step(
                generator,
                discriminators,
                mel_scale,
                batch["mel"].to(device),
                batch["audio"].to(device),
                weights,
                adversarial,
                valid_from=valid_from,
            )
            values = torch.stack(
                [g_total.detach(), *(parts.get(k, g_total.new_zeros(())) for k in _LOSS_PARTS)]
            )
            if world > 1:
                dist.all_reduce(values)
                values /= world
            values = values.tolist()
            if not all(math.isfinite(v) for v in values):
                _non_finite(stage, step, values, windows, last_saved)
            nets.g_opt.zero_grad(set_to_none=True)
            g_total.backward()
            grad_norm = _clip(nets.generator, par.clip_grad_norm)
            if d_total is not None:
                nets.d_opt.zero_grad(set_to_none=True)  # the generator's loss reached them too
                d_total.backward()
                _average_gradients(nets.discriminators, world)
                _clip(nets.discriminators, par.clip_grad_norm)
                nets.d_opt.step()
            nets.g_opt.step()
            if nets.ema is not None:
                nets.ema.update_parameters(nets.generator)
            done = step + 1
            for key, value in zip(("loss", *_LOSS_PARTS), values, strict=True):
                pending[key] += value
            pending["grad_norm"] += grad_norm
            pending["count"] += 1
            pending["seconds"] += time.perf_counter() - t0
            if done % par.log_interval == 0:
                n = pending["count"]
                row = {"step": done, "lr": lr, "seconds": pending["seconds"]}
                row.update({k: pending[k] / n for k in ("loss", *_LOSS_PARTS, "grad_norm")})
                rows.append(row)
                pending = _new_pending()
                if main_process:
                    write_history(folder / HISTORY_NAME, rows, HISTORY_COLUMNS)
                    if writer is not None:
                        for key in ("loss", *_LOSS_PARTS, "lr", "grad_norm"):
                            writer.add_scalar(f"train/{key}", row[key], done)
                        writer.flush()
            if done % par.checkpoint_interval == 0 or done == target:
                if main_process:
                    _save(folder, nets, done, config, rows, pending)
                last_saved = done
            if bar is not None:
                bar.set_postfix(loss=f"{values[0]:.3g}", refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    return rows


def _average_gradients(module: torch.nn.Module, world: int) -> None:
    """Average a module's gradients over the processes (what DDP does for the generator)."""
    if world > 1:
        for p in module.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world


def _clip(module: torch.nn.Module, max_norm: float) -> float:
    params = [p for p in module.parameters() if p.grad is not None]
    if max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.nn.utils.get_total_norm([p.grad for p in params]))


def _non_finite(stage, step, values, windows, last_saved):
    names = ", ".join(f"{windows.utterances[i]} from frame {s}" for i, s, _ in windows.plan(step))
    losses = ", ".join(f"{k} {v:.4g}" for k, v in zip(("loss", *_LOSS_PARTS), values, strict=True))
    saved = f"the checkpoint holds step {last_saved}" if last_saved else "no checkpoint yet"
    raise FloatingPointError(
        f"the parallel vocoder's {stage} training became non-finite at step {step + 1} "
        f"({losses}); its windows: {names}. Training stopped before that step; {saved}. "
        "Try a lower learning rate or clip_grad_norm."
    )


def _save(folder: Path, nets: _Nets, step: int, config, rows, pending) -> None:
    """The synthesising weights, then the whole state, each atomically."""
    synthesiser = nets.synthesiser().state_dict()
    save_torch(folder / GENERATOR_NAME, {"state_dict": synthesiser, "config": config, "step": step})
    save_torch(
        folder / CHECKPOINT_NAME,
        {
            "nets": nets.state(),
            "synthesiser": synthesiser,
            "step": step,
            "config": config,
            "history": rows,
            "pending": dict(pending),
            "versions": {"torch": str(torch.__version__)},
        },
    )


def load_parallel_vocoder(
    run_root: str | os.PathLike, profile, stage: str = "finetuned", device="cpu"
) -> ParallelVocoder:
    """A trained stage's generator (``generator.pth``), in eval mode.

    Raises
    ------
    FileNotFoundError
        If the stage has not been trained (names Chapter 7).
    RunConfigError
        If the profile's features or architecture differ from the trained model's.
    """
    if isinstance(profile, str):
        profile = load_profile(profile)
    path = require_artifact(
        stage_folder(RunPaths(run_root, profile.name), stage) / GENERATOR_NAME,
        f"{CHAPTER_PARALLEL} (the {stage} stage)",
    )
    return load_generator_file(path, profile, device)


def load_generator_file(path: str | os.PathLike, profile, device="cpu") -> ParallelVocoder:
    """:func:`load_parallel_vocoder` from a given ``generator.pth`` file, in eval mode.

    Raises
    ------
    RunConfigError
        If the profile's features or architecture differ from the trained model's, or
        the file is damaged or not a checkpoint of this book (names the file).
    """
    saved = load_torch_file(path, advice=f"train it again ({CHAPTER_PARALLEL})")
    stored = saved.get("config", {})
    current = {
        "features": profile.features.to_dict(),
        "generator": parallel_vocoder_config(profile).to_dict(),
    }
    diffs = config_differences({k: stored.get(k) for k in current}, current)
    if diffs:
        raise RunConfigError(
            f"the parallel vocoder in {path} was trained with other settings: "
            f"{'; '.join(diffs)}. Train it again ({CHAPTER_PARALLEL}) or use its profile."
        )
    model = ParallelVocoder(ParallelVocoderConfig.from_dict(stored["generator"]), profile.features)
    model.load_state_dict(saved["state_dict"])
    return model.eval().to(device)


def time_training_step(
    profile,
    *,
    adversarial: bool = True,
    device="cpu",
    batch_size: int | None = None,
    repeats: int = 2,
) -> float:
    """Seconds of one training step of a profile's networks (random data, median).

    Forward and backward of the generator and, with ``adversarial``, of the
    discriminators, at the profile's batch and window size; one untimed warm-up step.
    Optimiser updates are left out (a small share of a step).

    Parameters
    ----------
    profile : Profile or str
    adversarial : bool
        Time a step with the discriminators (as after ``adversarial_start``) or without.
    device : str or torch.device
    batch_size : int, optional
        Windows per step (default the profile's ``parallel.batch_size``).
    repeats : int
        Timed steps; the median is returned.

    Returns
    -------
    float
        Seconds per step.
    """
    if isinstance(profile, str):
        profile = load_profile(profile)
    device = torch.device(device)
    par, feat = profile.parallel, profile.features
    nets = _Nets(profile, device)
    mel_scale = MelScale(audio.mel_basis(feat), feat.fft_size, feat.hop_size).to(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    batch = int(batch_size or par.batch_size)
    mel = torch.rand(batch, feat.num_mels, par.window_frames, generator=gen)
    wave = 0.1 * torch.randn(batch, par.window_frames * feat.hop_size, generator=gen)
    mel, wave = mel.to(device), wave.to(device)
    weights = dict.fromkeys(("mel", "stft", "adversarial", "feature_matching"), 1.0)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        g_total, d_total, _ = training_step(
            nets.generator,
            nets.discriminators,
            mel_scale,
            mel,
            wave,
            weights,
            adversarial,
            valid_from=feat.fft_size - feat.hop_size,
        )
        (g_total if d_total is None else g_total + d_total).backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m synthsep_lib.pipeline.parallel_vocoder_training`` (or under torchrun)."""
    training_command(
        "synthsep_lib.pipeline.parallel_vocoder_training",
        "Train one stage of the parallel vocoder of a profile (run it under torchrun for "
        "several GPUs).",
        train_parallel_vocoder,
        "parallel",
        argv,
        stages=STAGES,
    )


if __name__ == "__main__":
    main()
