"""Training B2 on segments of mixtures simulated on the fly (original_code.md#oc-b2-training).

**Data.** As for the encoders, mixtures are never stored: for every utterance it draws,
the feed picks an ESC-50 interferer, mixes the two by the paper's recipe
(original_code.md#oc-mixing) and cuts ``min(L // (2 · 7739), 4)`` segments of the
7739-sample input length at random starts ``floor(u · (L − 7739))``, u uniform in
[0, 1) (the authors' B2 data generator). The
inputs are mixture segments; the targets are the scaled target speech and the scaled
noise at the 1603 padded-target-field samples of each segment (window samples
3068 … 4670). Sizes are the paper's; they follow from ``profile.denoiser``.

:class:`SegmentFeed` is the encoder's :class:`~synthsep_lib.pipeline.encoder_feed.BlockFeed` with
segments instead of spectrogram blocks: the same endless stream of utterances (with the
same seed, B2 draws them in the encoders' order), the same per-batch interferer draws,
the same exact-resume guarantee (batch ``index`` of epoch ``e`` is a pure function of
``(seed, e, index)``), the same worker, cache and epoch handling. Only the number of
items per utterance and their starts differ; the segment starts of a batch are drawn
from ``SeedSequence([seed, 3, e, index])``. Utterances shorter than 64 frames (0.74 s)
are skipped, as by the encoders' feed; LJSpeech has none.

**Training** (:func:`train_denoiser`): loss MAE(speech) + MAE(noise), each averaged over
the 1603 samples and the batch. As the noise output is the mixture minus the speech
output and the noise target is the mixture minus the speech target (to float rounding),
the two terms are equal: the loss is twice the speech MAE. Adam (1e-3, epsilon 1e-8); the learning rate divided by
10 when the validation loss has not improved for 8 epochs, with a cooldown of 4 epochs
(``ReduceLROnPlateau``, as the authors). The run lives in ``runs/<profile>/baselines/b2/``
with the same files as an encoder run (``config.json``, ``checkpoint.keras`` with the
embedded state, ``state.json``, ``history.csv``, ``logs/``); the checkpoint is written
after every epoch (the authors kept only the best one).

**Exact resume.** As :func:`~synthsep_lib.pipeline.encoder_training.train_encoder`: whole model with
optimizer state (its learning rate included) in the checkpoint, batches a pure function
of their index, random state re-derived per epoch, deterministic TensorFlow kernels —
plus the plateau callback's memory (best validation loss, epochs waited, cooldown left),
stored in the state and restored on resume, so the rate is cut at the same epoch as in
an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import pandas as pd

from synthsep_lib.pipeline.runs import (
    CHAPTER_BASELINES,
    CHAPTER_DATA,
    RunPaths,
    require_artifact,
    splits_fingerprint,
)

from .. import corpora, mixing
from ..baselines.denoising_wavenet import METHOD, build_denoising_wavenet
from .encoder_feed import BlockFeed, FeedError, UtterancePlan
from .keras_training import (
    CHECKPOINT_NAME,
    TrainingSetup,
    as_numpy,
    feed_state,
    load_keras_file,
    train_resumable,
)

__all__ = [
    "count_segments",
    "SegmentFeed",
    "segment_feeds",
    "denoiser_run_config",
    "train_denoiser",
]

#: Settings that may change between a run and its resumption: the number of epochs to
#: reach, the feed's processes and the batch of whole-file denoising.
RESUMABLE_CHANGES = ("denoiser.epochs", "denoiser.feed_workers", "denoiser.inference_batch")

#: Entropy tag of the segment starts (the encoder feed uses 0 and 1, its trainer 2).
_SEGMENT_TAG = 3


def count_segments(num_samples: int, input_length: int, max_segments: int) -> int:
    """Training segments drawn from an utterance: ``min(L // (2 · N), max_segments)``.

    The authors' ``Nsamples`` (see original_code.md#oc-b2-training): at N = 7739, an
    utterance shorter than 15 478 samples (0.70 s) gives none and one of 2.8 s or more
    gives 4.

    Parameters
    ----------
    num_samples : int
        L, samples of the utterance (saved-audio layout, lead-in included).
    input_length : int
        N, samples per input window.
    max_segments : int
        Upper bound (4).

    Returns
    -------
    int
    """
    return min(int(num_samples) // (2 * int(input_length)), int(max_segments))


class SegmentFeed(BlockFeed):
    """Batches of mixture segments and their speech and noise targets, for training B2.

    See the module docstring for the sampling scheme; everything about epochs, workers,
    caches and determinism is :class:`~synthsep_lib.pipeline.encoder_feed.BlockFeed`'s.

    Parameters
    ----------
    lj, esc : corpora.LJSpeech, corpora.ESC50
    utterance_ids, noise_files : sequence of str
        E.g. ``splits.target_train`` and ``splits.noise_train``.
    profile : Profile
        ``profile.denoiser`` gives the window geometry, ``batch_size``,
        ``max_segments`` and the defaults of ``steps``, ``seed`` and ``workers``.
    steps, seed, workers, batch_size : int, optional
        As for ``BlockFeed``, defaults from ``profile.denoiser`` (``steps_per_epoch``).
    **kwargs
        Other ``BlockFeed`` options (``fixed_epoch``, ``use_multiprocessing``,
        ``max_queue_size``, cache sizes).

    Attributes
    ----------
    utterances, short_utterances, num_frames, epoch, batch_size, steps, seed
        As ``BlockFeed``'s.
    config : DenoiserConfig

    Raises
    ------
    ValueError
        As ``BlockFeed``, or if no utterance is long enough for one segment.
    """

    def __init__(
        self,
        lj,
        esc,
        utterance_ids: Sequence[str],
        noise_files: Sequence[str],
        profile,
        *,
        steps: int | None = None,
        seed: int | None = None,
        workers: int | None = None,
        batch_size: int | None = None,
        **kwargs,
    ):
        cfg = profile.denoiser
        super().__init__(
            lj,
            esc,
            utterance_ids,
            noise_files,
            profile,
            steps=cfg.steps_per_epoch if steps is None else steps,
            seed=cfg.seed if seed is None else seed,
            workers=cfg.feed_workers if workers is None else workers,
            batch_size=cfg.batch_size if batch_size is None else batch_size,
            **kwargs,
        )
        self.config = cfg
        hop = self.features.hop_size
        # Segments per utterance replace blocks per utterance in BlockFeed's stream;
        # the epochs are laid out again with them.
        self._blocks = np.array(
            [self._segments(self.num_frames[u] * hop) for u in self.utterances], dtype=np.int64
        )
        if not self._blocks.any():
            raise ValueError(
                f"none of the {len(self.utterances)} utterances has 2 × {cfg.input_length} "
                "samples (one training segment); nothing to train on"
            )
        self._epoch_starts = [0]
        self.set_epoch(self.epoch, _force=True)

    def _segments(self, num_samples: int) -> int:
        return count_segments(num_samples, self.config.input_length, self.config.max_segments)

    def __repr__(self) -> str:
        return (
            f"SegmentFeed({len(self.utterances)} utterances ({self.skipped} skipped), "
            f"{len(self.noises)} noises, batch {self.batch_size}, {self.steps} steps, "
            f"epoch {self.epoch}, seed {self.seed})"
        )

    def batch_plan(self, index: int, epoch: int | None = None) -> list[UtterancePlan]:
        """Which utterances, interferers and segment starts make up batch ``index``.

        Parameters
        ----------
        index : int
            Batch number within the epoch, ``0 <= index < steps``.
        epoch : int, optional
            Default: the feed's current epoch (a feed with ``fixed_epoch``: that one).

        Returns
        -------
        list of UtterancePlan
            In batch order; ``starts`` are **sample** indices of the segments in the
            utterance (``num_frames`` stays in frames of 256 samples).
        """
        # Utterances and interferers: the stream and draws of BlockFeed (its block
        # starts are ignored); segment starts from their own generator.
        pairs = super().batch_plan(index, epoch)
        epoch = self.epoch if epoch is None or self.fixed_epoch is not None else int(epoch)
        rng = np.random.default_rng(
            np.random.SeedSequence([self.seed, _SEGMENT_TAG, int(epoch), int(index)])
        )
        n, room, plan = self.config.input_length, self.batch_size, []
        for p in pairs:
            length = p.num_frames * self.features.hop_size
            count = self._segments(length)
            starts = [int(np.floor(rng.random() * (length - n))) for _ in range(count)]
            kept = starts[:room]
            room -= len(kept)
            plan.append(
                UtterancePlan(p.utterance, p.noise, p.num_frames, tuple(kept), count - len(kept))
            )
        return plan

    def _mixture(self, p: UtterancePlan) -> mixing.Mixture:
        try:
            s1 = self._target_signal(p.utterance)
            if s1.shape[0] != p.num_frames * self.features.hop_size:
                raise ValueError(
                    f"s1 has {s1.shape[0]} samples, but its WAV header promised "
                    f"{p.num_frames} frames of {self.features.hop_size}"
                )
            return mixing.simulate_mixture_paper(
                s1, self._noise_clip(p.noise), target_id=p.utterance, noise_id=p.noise
            )
        except ValueError as err:
            raise FeedError(
                f"cannot make training segments from utterance {p.utterance!r} with noise "
                f"{p.noise!r}: {err}",
                [(p.utterance, p.noise)],
            ) from err

    def __getitem__(self, index):
        """Batch ``index`` of the current epoch.

        Returns
        -------
        mixture : numpy.ndarray, float32, shape (B, N)
            Mixture segments, N = ``input_length`` (7739).
        targets : dict
            ``"speech"`` and ``"noise"``: (B, P) float32, the scaled target and the scaled
            noise at segment samples ``[H − pad, H + TF + pad)`` (P = 1603: 3068 … 4670).

        Raises
        ------
        FeedError
            If a mixture cannot be simulated (e.g. NaN samples); names the utterance and
            noise file.
        IndexError
            If ``index`` is not in ``[0, steps)``.
        """
        cfg, b = self.config, self.batch_size
        n, p = cfg.input_length, cfg.padded_target_field
        first = cfg.half_receptive_field - cfg.target_padding
        x = np.empty((b, n), dtype=np.float32)
        speech = np.empty((b, p), dtype=np.float32)
        noise = np.empty((b, p), dtype=np.float32)
        k = 0
        for item in self.batch_plan(index):
            if not item.starts:
                continue
            mix = self._mixture(item)
            for s in item.starts:
                x[k] = mix.mixture[s : s + n]
                speech[k] = mix.target[s + first : s + first + p]
                noise[k] = mix.noise[s + first : s + first + p]
                k += 1
        return x, {"speech": speech, "noise": noise}


def segment_feeds(lj, esc, splits, profile, **kwargs) -> tuple[SegmentFeed, SegmentFeed]:
    """The training and validation feeds of a profile.

    Training: ``target_train × noise_train``, ``steps_per_epoch`` batches. Validation:
    ``target_valid × noise_valid``, ``validation_steps`` batches, always epoch 0 (the
    same batches every epoch). ``kwargs`` go to both (e.g. ``workers``).
    """
    cfg = profile.denoiser
    train = SegmentFeed(lj, esc, splits.target_train, splits.noise_train, profile, **kwargs)
    valid = SegmentFeed(
        lj,
        esc,
        splits.target_valid,
        splits.noise_valid,
        profile,
        steps=cfg.validation_steps,
        fixed_epoch=0,
        **kwargs,
    )
    return train, valid


def denoiser_run_config(profile, splits=None) -> dict[str, Any]:
    """The settings a B2 run depends on, as stored in its ``config.json``.

    Parameters
    ----------
    profile : Profile
        Its ``features`` and ``denoiser`` sections are stored.
    splits : corpora.Splits, optional
        If given, the SHA-1 of its six lists is stored as ``data.splits_sha1``.

    Returns
    -------
    dict
        ``{"method": "b2", "profile", "features": {...}, "denoiser": {...}, "data": {...}}``
        as JSON types (lists, not tuples).
    """
    config = {
        "method": METHOD,
        "profile": profile.name,
        "features": profile.features.to_dict(),
        "denoiser": dataclasses.asdict(profile.denoiser),
        "data": {} if splits is None else {"splits_sha1": splits_fingerprint(splits)},
    }
    return json.loads(json.dumps(config))


class _Plateau(keras.callbacks.ReduceLROnPlateau):
    """The authors' ``ReduceLROnPlateau`` on ``val_loss``, whose memory survives a resume."""

    def __init__(self, cfg, restore: dict[str, Any] | None = None):
        super().__init__(
            monitor="val_loss",
            mode="min",
            factor=cfg.lr_factor,
            patience=cfg.lr_patience,
            cooldown=cfg.lr_cooldown,
            min_delta=cfg.lr_min_delta,
        )
        self.restore = restore

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.restore:
            self.best = self.restore["best"]
            self.wait = int(self.restore["wait"])
            self.cooldown_counter = int(self.restore["cooldown_counter"])

    def memory(self) -> dict[str, Any]:
        best = None if self.best is None else float(as_numpy(self.best))
        return {
            "best": best,
            "wait": int(self.wait),
            "cooldown_counter": int(self.cooldown_counter),
        }


def train_denoiser(
    paths: RunPaths,
    profile,
    *,
    lj=None,
    esc=None,
    splits=None,
    epochs: int | None = None,
    progress: bool = True,
    strategy=None,
    data_root: str | os.PathLike = "data",
    callbacks: list | None = None,
    deterministic: bool = True,
) -> pd.DataFrame:
    """Train (or resume training) B2 with a profile's settings.

    The run lives in ``paths.baseline("b2")``; see the module docstring for its files and
    for how resuming is made exact. If the folder holds a checkpoint, training continues
    after its last epoch; a finished run returns its history at once.

    Parameters
    ----------
    paths : RunPaths
        The run directory; ``data/splits.json`` (Chapter 1) is read unless ``splits`` is
        given.
    profile : Profile
        Its ``features`` and ``denoiser`` settings (sizes, batch, steps, epochs,
        schedule, seed, feed workers).
    lj, esc : corpora.LJSpeech, corpora.ESC50, optional
        Corpus readers; default :func:`corpora.open_corpora` ``(profile, data_root)``.
    splits : corpora.Splits, optional
        Default: ``paths.splits``.
    epochs : int, optional
        Total number of epochs to reach; default ``profile.denoiser.epochs``.
    progress : bool
        Show a tqdm progress bar.
    strategy : tf.distribute.Strategy, optional
        Default: :func:`~synthsep_lib.pipeline.keras_training.default_strategy` (MirroredStrategy
        when several GPUs are visible).
    data_root : path-like
        Where the corpora live if ``lj`` / ``esc`` are not given.
    callbacks : list of keras.callbacks.Callback, optional
        Extra callbacks, run after the built-in ones.
    deterministic : bool
        Call ``tf.config.experimental.enable_op_determinism()`` (process-wide). Needed
        for bit-exact resumption.

    Returns
    -------
    pandas.DataFrame
        ``history.csv``: one row per epoch with ``epoch`` (0-based), ``loss`` (speech +
        noise MAE), ``speech_loss``, ``noise_loss``, the same with ``val_``,
        ``learning_rate`` (the rate used in the epoch) and ``seconds``. ``attrs`` holds
        ``run_dir`` and ``initial_epoch`` (epochs already done when called).

    Raises
    ------
    FileNotFoundError
        If ``splits`` is not given and Chapter 1's ``splits.json`` is missing.
    RunConfigError
        If the folder holds a run made with other settings (the message names them).
    FeedError
        If the data feed cannot make a batch; the message names the utterance and noise.
    NonFiniteLossError
        If the loss becomes NaN or infinite (the epoch is not saved).
    """
    cfg = profile.denoiser
    epochs = int(cfg.epochs if epochs is None else epochs)
    folder = paths.baseline(METHOD)
    folder.mkdir(parents=True, exist_ok=True)
    if splits is None:
        splits = corpora.load_splits(require_artifact(paths.splits, CHAPTER_DATA))
    config = denoiser_run_config(profile, splits)
    seed = int(cfg.seed)

    def setup(state, initial_epoch: int) -> TrainingSetup:
        readers = (lj, esc) if lj is not None and esc is not None else None
        readers = readers or corpora.open_corpora(profile, data_root)
        train_feed, valid_feed = segment_feeds(*readers, splits, profile)
        train_feed.set_epoch(initial_epoch)
        if state is None:
            model = build_denoising_wavenet(cfg)
            model.compile(
                optimizer=keras.optimizers.Adam(
                    learning_rate=cfg.learning_rate, epsilon=cfg.adam_epsilon
                ),
                loss={"speech": "mae", "noise": "mae"},
            )
        else:
            model = load_keras_file(
                folder / CHECKPOINT_NAME,
                compile=True,
                advice=f"run {CHAPTER_BASELINES} again to train B2 afresh",
            )
        plateau = _Plateau(cfg, state["plateau"] if state else None)

        def trainer_state(model, epoch: int, row: dict) -> dict:
            return {
                "learning_rate": row.get("learning_rate"),
                "next_learning_rate": float(as_numpy(model.optimizer.learning_rate)),
                "plateau": plateau.memory(),
                "feed": feed_state(train_feed, valid_feed, epoch),
                "rng": {
                    "scheme": (
                        "keras.utils.set_random_seed(seed) when training starts or resumes; "
                        "at the start of epoch e: random.seed(seed + e), "
                        "numpy.random.seed(seed + e)"
                    ),
                    "seed": seed,
                },
            }

        # the plateau decision also puts the epoch's learning rate into the logs
        return TrainingSetup(model, train_feed, valid_feed, trainer_state, after_checks=[plateau])

    return train_resumable(
        folder,
        config,
        what="B2",
        resumable=RESUMABLE_CHANGES,
        epochs=epochs,
        seed=seed,
        setup=setup,
        label="B2 denoiser" if progress else None,
        callbacks=callbacks,
        strategy=strategy,
        deterministic=deterministic,
    )
