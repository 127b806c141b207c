"""Typed configuration and the profiles ``reduced``, ``paper`` and ``smoke``.

A profile is the only switch between the CI-sized book and the paper-sized one; ``smoke``
is the paper's profile with every schedule cut to a step or two, which proves the paper's
path (sizes, real-corpus layout, published checkpoint) on a CPU in minutes. Profiles
live in ``synthsep_lib/profiles/<name>.yaml``; :func:`load_profile` reads one into
dataclasses and applies overrides from a notebook's ``parameters`` cell.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

__all__ = [
    "FeatureConfig",
    "DataConfig",
    "EncoderConfig",
    "VocoderConfig",
    "DenoiserConfig",
    "ParallelConfig",
    "ConditionsConfig",
    "Profile",
    "section",
    "load_profile",
    "PROFILES",
]

PROFILES = ("reduced", "paper", "smoke")


@dataclass(frozen=True)
class Range:
    """The numbers a setting allows: from ``low`` to ``high`` (``None``: unbounded).

    ``ends`` says which ends belong to the range, as in interval notation: ``"[]"``,
    ``"[)"``, ``"(]"`` or ``"()"``.
    """

    low: float | None = None
    high: float | None = None
    ends: str = "[]"

    def __contains__(self, value) -> bool:
        low_ok = self.low is None or (
            value >= self.low if self.ends[0] == "[" else value > self.low
        )
        high_ok = self.high is None or (
            value <= self.high if self.ends[1] == "]" else value < self.high
        )
        return low_ok and high_ok

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>=' if self.ends[0] == '[' else '>'} {self.low}"
        if self.low is None:
            return f"{'<=' if self.ends[1] == ']' else '<'} {self.high}"
        return f"in {self.ends[0]}{self.low}, {self.high}{self.ends[1]}"


# The ranges the settings below draw on (declared per field with ``_setting``).
COUNT = Range(1)  # sizes, steps, epochs, intervals
NON_NEGATIVE = Range(0)  # seeds, worker counts, weights, "0 = none" settings
POSITIVE = Range(0, None, "(]")  # rates, frequencies, durations
FRACTION = Range(0, 1, "()")  # a share of a list that leaves something on both sides
DECAY = Range(0, 1, "(]")  # a factor applied again and again: 1 = constant
BELOW_ONE = Range(0, 1, "[)")  # dropout, moving-average decays: 0 = none, 1 = never changes
NEGATIVE = Range(None, 0, "[)")  # decibel floors


def _setting(default, allowed: Range | None = None, *, choices: tuple | None = None):
    """A dataclass field with its allowed range (each item's, for a tuple) or choices.

    :func:`load_profile` checks every value of a profile and its overrides against
    these and against the field's type annotation.
    """
    metadata = {}
    if allowed is not None:
        metadata["range"] = allowed
    if choices is not None:
        metadata["choices"] = choices
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class FeatureConfig:
    """STFT, mel and normalisation settings (see original_code.md#oc-constants).

    Defaults are the paper's and the r9y9 LJSpeech preset's; they are the same in both
    profiles because the published WaveNet checkpoint expects exactly these features.
    """

    sample_rate: int = _setting(22050, COUNT)
    fft_size: int = _setting(1024, COUNT)
    hop_size: int = _setting(256, COUNT)
    num_mels: int = _setting(80, COUNT)
    fmin: float = _setting(125.0, NON_NEGATIVE)
    fmax: float = _setting(7600.0, POSITIVE)
    min_level_db: float = _setting(-100.0, NEGATIVE)
    ref_level_db: float = 20.0
    min_level_db_linear: float = _setting(-80.0, NEGATIVE)
    ref_level_db_linear: float = 30.0
    linear_bins: int = _setting(512, COUNT)
    rescaling_max: float = _setting(0.999, DECAY)

    @property
    def lead_in(self) -> int:
        """Zeros before the waveform in r9y9's saved audio: ``fft_size - hop_size`` (768)."""
        return self.fft_size - self.hop_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DataConfig:
    """Where the corpora come from and how they are split and mixed (original_code.md#oc-mixing).

    Attributes
    ----------
    corpus : {"mini", "real"}
        ``mini`` builds the embedded mini corpus; ``real`` uses LJSpeech-1.1 + ESC-50.
    mini_utterances, mini_seed : int
        Size and seed of the mini corpus (ignored for ``real``).
    lj_test_size : float
        Fraction of LJSpeech held out for testing (r9y9's ``test_size``).
    lj_split_seed : int
        ``random_state`` of that split (1234 in r9y9 and the paper).
    esc_split_seed : int
        Seed of the ESC-50 90/10 permutation (unseeded in the original code).
    esc_train_fraction, valid_fraction : float
        0.9 ESC train/test, then 0.8 train/valid of both train lists.
    shuffle_seed : int
        Python ``random`` seed that shuffles the train/valid lists (123456789).
    test_pairs_seed : int
        Seed of the test pair recipe (66666666 in the original).
    test_pairs : int
        Number of test mixtures evaluated (100 in the paper).
    min_active_seconds : float
        ESC clips must have first-to-last non-zero span longer than this (4.5 s).
    """

    corpus: str = _setting("mini", choices=("mini", "real"))
    mini_utterances: int = _setting(150, COUNT)
    mini_seed: int = _setting(2019, NON_NEGATIVE)
    lj_test_size: float = _setting(0.0441, FRACTION)
    lj_split_seed: int = _setting(1234, NON_NEGATIVE)
    esc_split_seed: int = _setting(1234, NON_NEGATIVE)
    esc_train_fraction: float = _setting(0.9, FRACTION)
    valid_fraction: float = _setting(0.8, FRACTION)
    shuffle_seed: int = _setting(123456789, NON_NEGATIVE)
    test_pairs_seed: int = _setting(66666666, NON_NEGATIVE)
    test_pairs: int = _setting(100, COUNT)
    min_active_seconds: float = _setting(4.5, NON_NEGATIVE)


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes and schedule of the encoder (original_code.md#oc-encoder). Defaults are the paper's.

    The two streams' dense layers are sized as ``channels × output bins`` so that they
    reshape onto the output grid: the paper's Proposed model has 4 + 4 channels on the
    80 mel bins (Dense 320 each), its B1 model 2 + 1 channels on the 512 linear bins
    (Dense 1024 and 512).

    Attributes
    ----------
    block_frames : int
        Frames per block (64).
    linear_lstm_units, mel_lstm_units : int
        LSTM units per direction of the linear-spectrum and mel streams (400, 200).
    proposed_linear_channels, proposed_mel_channels : int
        Channels per mel bin of the two streams in the Proposed model (4, 4).
    b1_linear_channels, b1_mel_channels : int
        Channels per linear bin of the two streams in the B1 model (2, 1).
    hourglass_depth : int
        Levels of the hourglass (3: 64×80 → 8×10 at the bottleneck).
    hourglass_filters : int
        Output channels of every residual unit (64); their inner convolutions use half.
    dropout, recurrent_dropout : float
        Of both LSTMs (0.25).
    batch_norm_momentum : float
        Momentum of the batch-norm moving statistics used at inference (Keras' 0.99,
        a memory of ~100 steps: far shorter than the paper's 100 000 steps, but longer
        than a run of the reduced profile, which therefore uses less).
    l2 : float
        L2 weight on the LSTM and dense kernels, recurrent kernels and biases (1e-7).
    batch_size : int
        Blocks per step (32).
    steps_per_epoch, validation_steps : int
        Training and validation steps per epoch (200, 20: 1.32 h of audio per epoch).
    epochs : int
        Training epochs (500).
    learning_rate, lr_decay : float
        Adam's rate 1e-3, multiplied by ``lr_decay ** epoch`` (0.98).
    feed_workers : int
        Processes simulating mixtures for the data feed (0: in the training process).
    seed : int
        Seed of weights, dropout and the data feed.
    """

    block_frames: int = _setting(64, COUNT)
    linear_lstm_units: int = _setting(400, COUNT)
    mel_lstm_units: int = _setting(200, COUNT)
    proposed_linear_channels: int = _setting(4, COUNT)
    proposed_mel_channels: int = _setting(4, COUNT)
    b1_linear_channels: int = _setting(2, COUNT)
    b1_mel_channels: int = _setting(1, COUNT)
    hourglass_depth: int = _setting(3, COUNT)
    hourglass_filters: int = _setting(64, COUNT)
    dropout: float = _setting(0.25, BELOW_ONE)
    recurrent_dropout: float = _setting(0.25, BELOW_ONE)
    batch_norm_momentum: float = _setting(0.99, BELOW_ONE)
    l2: float = _setting(1e-7, NON_NEGATIVE)
    batch_size: int = _setting(32, COUNT)
    steps_per_epoch: int = _setting(200, COUNT)
    validation_steps: int = _setting(20, COUNT)
    epochs: int = _setting(500, COUNT)
    learning_rate: float = _setting(1e-3, POSITIVE)
    lr_decay: float = _setting(0.98, DECAY)
    feed_workers: int = _setting(2, NON_NEGATIVE)
    seed: int = _setting(1234, NON_NEGATIVE)


@dataclass(frozen=True)
class VocoderConfig:
    """The WaveNet vocoder: model, training and synthesis (original_code.md#oc-wavenet-hparams).

    Defaults are the paper's (the r9y9 LJSpeech preset).

    Attributes
    ----------
    model : dict
        Overrides of the paper's architecture (``WaveNetConfig`` fields, e.g.
        ``layers``, ``residual_channels``, ``input_type``); empty = the paper's model.
    source : {"pretrained", "train"}
        Where the weights come from: the published LJSpeech checkpoint (the paper's
        choice) or training on the clean speech of the training split.
    batch_size : int
        Utterance windows per training step (2).
    max_time_steps : int
        Window length in samples, rounded down to whole hops (8000 → 7936).
    learning_rate, warmup_steps : float, int
        Peak rate and warm-up of the noam schedule (1e-3, 4000 steps).
    ema_decay : float
        Decay of the exponential moving average of the weights (0.9999); the average
        is what synthesises.
    clip_grad_norm : float
        Clip the gradient norm to this value; 0 = no clipping (the paper's).
    steps : int
        Optimiser steps in total.
    checkpoint_interval, log_interval : int
        Steps between checkpoints and between log rows.
    synthesis_batch : int
        Segments or utterances generated together in one batch.
    fold_segment_seconds, fold_overlap_seconds : float
        Folded generation: length of the segments an utterance is cut into and of
        their cross-faded overlap; 0 = generate every utterance whole.
    synthesis_files : int
        Test files synthesised by the vocoder chapter (0 = all).
    seed : int
        Seed of weights, windows, dropout and sampling.
    """

    model: dict = field(default_factory=dict)
    source: str = _setting("pretrained", choices=("pretrained", "train"))
    batch_size: int = _setting(2, COUNT)
    max_time_steps: int = _setting(8000, COUNT)
    learning_rate: float = _setting(1e-3, POSITIVE)
    warmup_steps: int = _setting(4000, COUNT)
    ema_decay: float = _setting(0.9999, BELOW_ONE)
    clip_grad_norm: float = _setting(0.0, NON_NEGATIVE)
    steps: int = _setting(1_000_000, COUNT)
    checkpoint_interval: int = _setting(10_000, COUNT)
    log_interval: int = _setting(100, COUNT)
    synthesis_batch: int = _setting(8, COUNT)
    fold_segment_seconds: float = _setting(0.0, NON_NEGATIVE)
    fold_overlap_seconds: float = _setting(0.05, NON_NEGATIVE)
    synthesis_files: int = _setting(0, NON_NEGATIVE)
    seed: int = _setting(1234, NON_NEGATIVE)


@dataclass(frozen=True)
class DenoiserConfig:
    """Baseline B2, the authors' denoising WaveNet (original_code.md#oc-b2-architecture).

    Defaults are the paper's.

    The network's geometry follows from the first five settings; at the paper's values
    the receptive field is 6139 samples (278 ms), the input window 7739 samples and the
    output 1603 samples (the 1601-sample target field and one sample each side).

    Attributes
    ----------
    stacks : int
        Stacks of dilated residual blocks (3).
    dilation_depth : int
        Each stack has dilations 1, 2, 4, …, ``2 ** dilation_depth`` (9: up to 512, ten
        blocks per stack).
    kernel_size : int
        Odd length of every convolution but the 1×1 ones (3).
    residual_filters, skip_filters : int
        Channels of the residual path and of every skip output (128, 128).
    final_filters : tuple of (int, int)
        Channels of the two convolutions after the sum of the skips (2048, 256).
    target_field : int
        Output samples per window that are kept at test time (1601).
    target_padding : int
        Extra output samples each side of the target field, trained but dropped at test
        time (1: 1603 outputs per window).
    batch_size : int
        Segments per training step (10).
    steps_per_epoch, validation_steps : int
        Training and validation batches per epoch (1000, 100).
    epochs : int
        Training epochs (500).
    max_segments : int
        At most this many random segments per utterance (4); an utterance of L samples
        gives ``min(L // (2 · input length), max_segments)``.
    learning_rate, adam_epsilon : float
        Adam's rate and epsilon (1e-3, 1e-8).
    lr_factor, lr_patience, lr_cooldown, lr_min_delta : float, int, int, float
        ReduceLROnPlateau on the validation loss: multiply the rate by 0.1 after 8
        epochs without an improvement of at least 1e-4, then wait 4 epochs (Keras'
        defaults for the factor and the minimum change).
    inference_batch : int
        Windows per prediction batch when denoising whole files (10).
    feed_workers : int
        Processes simulating mixtures for the data feed (0: in the training process).
    seed : int
        Seed of weights and data feed (the encoders': B2 draws the training utterances
        in the same order as they do).
    """

    stacks: int = _setting(3, COUNT)
    dilation_depth: int = _setting(9, NON_NEGATIVE)
    kernel_size: int = _setting(3, COUNT)
    residual_filters: int = _setting(128, COUNT)
    skip_filters: int = _setting(128, COUNT)
    final_filters: tuple[int, int] = _setting((2048, 256), COUNT)
    target_field: int = _setting(1601, COUNT)
    target_padding: int = _setting(1, NON_NEGATIVE)
    batch_size: int = _setting(10, COUNT)
    steps_per_epoch: int = _setting(1000, COUNT)
    validation_steps: int = _setting(100, COUNT)
    epochs: int = _setting(500, COUNT)
    max_segments: int = _setting(4, COUNT)
    learning_rate: float = _setting(1e-3, POSITIVE)
    adam_epsilon: float = _setting(1e-8, POSITIVE)
    lr_factor: float = _setting(0.1, FRACTION)
    lr_patience: int = _setting(8, NON_NEGATIVE)
    lr_cooldown: int = _setting(4, NON_NEGATIVE)
    lr_min_delta: float = _setting(1e-4, NON_NEGATIVE)
    inference_batch: int = _setting(10, COUNT)
    feed_workers: int = _setting(2, NON_NEGATIVE)
    seed: int = _setting(1234, NON_NEGATIVE)

    def __post_init__(self):
        object.__setattr__(self, "final_filters", tuple(int(f) for f in self.final_filters))
        if len(self.final_filters) != 2:
            raise ValueError(
                f"denoiser final_filters must be two channel counts; got {list(self.final_filters)}"
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(
                f"denoiser kernel_size must be odd and positive; got {self.kernel_size}"
            )
        if not 0 <= self.target_padding <= self.half_receptive_field:
            raise ValueError(
                f"denoiser target_padding must be in [0, {self.half_receptive_field}] (half the "
                f"receptive field); got {self.target_padding}"
            )

    @property
    def receptive_field(self) -> int:
        """Input samples one output sample depends on: stacks·(k − 1)·(2^(depth+1) − 1) + 1."""
        return self.stacks * (self.kernel_size - 1) * (2 ** (self.dilation_depth + 1) - 1) + 1

    @property
    def half_receptive_field(self) -> int:
        """Context each side of an output sample (3069; original_code.md#oc-b2-offset)."""
        return self.receptive_field // 2

    @property
    def input_length(self) -> int:
        """Samples per input window: receptive field + target field − 1 (7739)."""
        return self.receptive_field + self.target_field - 1

    @property
    def padded_target_field(self) -> int:
        """Output samples per window: target field + 2 · target padding (1603)."""
        return self.target_field + 2 * self.target_padding


@dataclass(frozen=True)
class ParallelConfig:
    """The parallel vocoder of Chapter 7: model, training on clean speech, fine-tuning.

    Not part of the paper: defaults are a Vocos-sized generator (13.5 M parameters) and
    schedules for a GPU. See :mod:`synthsep_lib.pipeline.parallel_vocoder_training`.

    Attributes
    ----------
    model : dict
        Overrides of the architecture (``ParallelVocoderConfig`` fields: ``dim``,
        ``intermediate_dim``, ``num_blocks`` …); empty = Vocos' size.
    batch_size : int
        Windows per training step.
    window_frames : int
        Window length in mel frames (× 256 samples).
    learning_rate : float
        AdamW's rate for the generator and the discriminators (β 0.8 / 0.99).
    lr_decay : float
        The rate is multiplied by this every 1000 steps (1 = constant).
    clip_grad_norm : float
        Clip each network's gradient norm to this value; 0 = no clipping.
    mel_weight, stft_weight : float
        Weights of the log-mel L1 and the multi-resolution STFT losses.
    adversarial_start : int
        Step from which the discriminators train and judge (before it: spectral losses only).
    adversarial_weight, feature_matching_weight : float
        Weights of the generator's GAN loss and of feature matching.
    period_channels : tuple of int
        Widths of the multi-period discriminator's strided convolutions.
    resolution_channels : int
        Width of the multi-resolution discriminator's convolutions.
    ema_decay : float
        Decay of a moving average of the generator's weights, which then synthesises;
        0 = none (the trained weights synthesise).
    steps : int
        Training steps on clean speech.
    finetune_steps : int
        Further steps on the encoder's estimates of simulated training mixtures.
    finetune_learning_rate : float
        Rate of the fine-tuning steps.
    finetune_rounds : int
        Mixtures simulated per training utterance for fine-tuning (each with a fresh
        interferer).
    checkpoint_interval, log_interval : int
        Steps between checkpoints and between rows of ``history.csv``.
    synthesis_files : int
        Test files the chapter synthesises (0 = all).
    seed : int
        Seed of weights, windows and mixtures.
    """

    model: dict = field(default_factory=dict)
    batch_size: int = _setting(16, COUNT)
    window_frames: int = _setting(64, COUNT)
    learning_rate: float = _setting(5e-4, POSITIVE)
    lr_decay: float = _setting(1.0, DECAY)
    clip_grad_norm: float = _setting(0.0, NON_NEGATIVE)
    mel_weight: float = _setting(45.0, NON_NEGATIVE)
    stft_weight: float = _setting(1.0, NON_NEGATIVE)
    adversarial_start: int = _setting(0, NON_NEGATIVE)
    adversarial_weight: float = _setting(1.0, NON_NEGATIVE)
    feature_matching_weight: float = _setting(2.0, NON_NEGATIVE)
    period_channels: tuple[int, ...] = _setting((32, 128, 512, 1024), COUNT)
    resolution_channels: int = _setting(32, COUNT)
    ema_decay: float = _setting(0.0, BELOW_ONE)
    steps: int = _setting(1_000_000, COUNT)
    finetune_steps: int = _setting(100_000, COUNT)
    finetune_learning_rate: float = _setting(1e-4, NON_NEGATIVE)
    finetune_rounds: int = _setting(1, COUNT)
    checkpoint_interval: int = _setting(10_000, COUNT)
    log_interval: int = _setting(100, COUNT)
    synthesis_files: int = _setting(0, NON_NEGATIVE)
    seed: int = _setting(1234, NON_NEGATIVE)

    def __post_init__(self):
        # YAML gives lists; the ranges are checked by load_profile
        object.__setattr__(self, "period_channels", tuple(int(c) for c in self.period_channels))


@dataclass(frozen=True)
class ConditionsConfig:
    """The harder mixing conditions of Chapter 8 (beyond the paper).

    Every condition mixes the same ``pairs`` test utterances, each with its own test noise
    clip (one of the paper's categories), with the SNR-controlled protocol, and changes
    one thing at a time from the reference condition (``reference_snr_db``, no room, one
    interferer). See :mod:`synthsep_lib.pipeline.harder_conditions`.

    Attributes
    ----------
    pairs : int
        Test utterances (each with its own noise clip) in every condition.
    snr_levels_db : tuple of float
        SNRs of the sweep, dB.
    reference_snr_db : float
        SNR of the other conditions (rooms, two interferers, unseen noise, the real
        voice), dB; also a level of the sweep.
    t60_seconds : tuple of float
        Reverberation times of the rooms, s.
    max_seconds : float
        Every target (test utterance or the real voice) is cut to its central
        ``max_seconds`` seconds before it is mixed; 0 = whole targets (the default).
    seed : int
        Seed of the draws (utterances, clips, offsets, rooms).
    """

    pairs: int = _setting(10, COUNT)
    snr_levels_db: tuple[float, ...] = (-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0)
    reference_snr_db: float = 5.0
    t60_seconds: tuple[float, ...] = _setting((0.2, 0.4, 0.6, 0.8), POSITIVE)
    max_seconds: float = _setting(0.0, NON_NEGATIVE)
    seed: int = _setting(8888, NON_NEGATIVE)

    def __post_init__(self):
        object.__setattr__(self, "snr_levels_db", tuple(float(v) for v in self.snr_levels_db))
        object.__setattr__(self, "t60_seconds", tuple(float(v) for v in self.t60_seconds))
        object.__setattr__(self, "reference_snr_db", float(self.reference_snr_db))
        if self.reference_snr_db not in self.snr_levels_db:
            raise ValueError(
                f"conditions reference_snr_db {self.reference_snr_db} must be one of "
                f"snr_levels_db {list(self.snr_levels_db)} (it is the sweep's reference point)"
            )


@dataclass(frozen=True)
class Profile:
    """A named bundle of every setting a chapter needs."""

    name: str
    features: FeatureConfig = field(default_factory=FeatureConfig)
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    conditions: ConditionsConfig = field(default_factory=ConditionsConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {
    "features": FeatureConfig,
    "data": DataConfig,
    "encoder": EncoderConfig,
    "vocoder": VocoderConfig,
    "denoiser": DenoiserConfig,
    "parallel": ParallelConfig,
    "conditions": ConditionsConfig,
}


def section(settings, cls: type):
    """One section of the settings: ``settings`` itself if it is a ``cls``, else the
    Profile's section of that type (e.g. ``section(profile, FeatureConfig)``).

    Functions that need one section accept either, so a chapter can pass its Profile.

    Raises
    ------
    TypeError
        If ``settings`` is neither a ``cls`` nor something holding one under the
        section's name.
    """
    name = next(key for key, value in SECTIONS.items() if value is cls)
    found = settings if isinstance(settings, cls) else getattr(settings, name, None)
    if not isinstance(found, cls):
        raise TypeError(f"expected a Profile or a {cls.__name__}, got {type(settings).__name__}")
    return found


def _article(value) -> str:
    """``"a list"``, ``"an int"``: the type of ``value`` for a message."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _settings(values, where: str) -> dict[str, Any]:
    """``values`` as a dict of settings (``None``: none), or a ValueError naming ``where``."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: expected a mapping of settings, got {_article(values)}")
    return dict(values)


def _fits(kind, value, allowed: Range | None, choices: tuple | None) -> bool:
    """Whether ``value`` has type ``kind`` (a field's annotation) and lies in its range."""
    if typing.get_origin(kind) is tuple:  # tuple[int, int] or tuple[float, ...]: each item
        item = typing.get_args(kind)[0]
        return isinstance(value, (list, tuple)) and all(
            _fits(item, v, allowed, choices) for v in value
        )
    if kind is bool:
        fits = isinstance(value, bool)
    elif isinstance(value, bool):  # True is an int to Python, never a count or a rate here
        fits = False
    elif kind is int:
        fits = isinstance(value, numbers.Integral)
    elif kind is float:  # an int is a fine float (YAML reads 1 as one)
        fits = isinstance(value, numbers.Real) and math.isfinite(value)
    elif kind is str:
        fits = isinstance(value, str)
    elif kind is dict:
        fits = isinstance(value, Mapping)
    else:
        raise TypeError(f"no check for settings of type {kind}: add one to config._fits")
    if fits and allowed is not None:
        fits = value in allowed
    return fits and (choices is None or value in choices)


def _expected(kind, allowed: Range | None, choices: tuple | None) -> str:
    """What :func:`_fits` accepts, in words."""
    if typing.get_origin(kind) is tuple:
        return f"a list of items, each {_expected(typing.get_args(kind)[0], allowed, choices)}"
    if choices is not None:
        return f"one of {list(choices)}"
    words = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        dict: "a mapping of settings",
    }[kind]
    return words if allowed is None else f"{words} {allowed}"


def _build(cls, values: dict[str, Any], where: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown setting(s) {unknown} in {where}; expected some of {sorted(known)}"
        )
    kinds = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        allowed, choices = f.metadata.get("range"), f.metadata.get("choices")
        if not _fits(kinds[f.name], values[f.name], allowed, choices):
            raise ValueError(
                f"{where} {f.name}: {values[f.name]!r} is not allowed; "
                f"expected {_expected(kinds[f.name], allowed, choices)}"
            )
    try:
        return cls(**values)
    except ValueError as err:  # a check across settings (__post_init__)
        raise ValueError(f"{where}: {err}") from err


def _profile_text(name: str) -> str:
    """The YAML text of shipped profile ``name``."""
    return resources.files("synthsep_lib").joinpath("profiles", f"{name}.yaml").read_text()


def load_profile(name: str, overrides: dict[str, dict[str, Any]] | None = None) -> Profile:
    """Read profile ``name`` and apply ``overrides``.

    Every value is checked against its setting's type (an integer setting refuses 2.5,
    ``"3"`` and ``True``; a number setting takes an integer) and its declared range.

    Parameters
    ----------
    name : {"reduced", "paper", "smoke"}
        Profile to load.
    overrides : dict, optional
        Section → {setting: value}, e.g. ``{"data": {"mini_utterances": 40}}``.

    Returns
    -------
    Profile

    Raises
    ------
    ValueError
        For an unknown profile, section or setting (the message lists what exists), a
        section that is not a mapping, or a value of the wrong type or out of range (the
        message names the profile, section, setting, value and what is allowed).
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {PROFILES}")
    raw = yaml.safe_load(_profile_text(name))
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"profile {name!r}: expected a mapping of sections, got {_article(raw)}")
    raw = dict(raw)
    for key, values in (overrides or {}).items():
        if key not in SECTIONS:
            raise ValueError(f"unknown profile section {key!r}; expected one of {sorted(SECTIONS)}")
        where = f"profile {name!r} [{key}]"
        raw[key] = {**_settings(raw.get(key), where), **_settings(values, where)}
    unknown = sorted(set(raw) - set(SECTIONS), key=str)
    if unknown:
        raise ValueError(
            f"unknown section(s) {unknown} in profile {name!r}; expected {sorted(SECTIONS)}"
        )
    sections = {}
    for key, cls in SECTIONS.items():
        where = f"profile {name!r} [{key}]"
        sections[key] = _build(cls, _settings(raw.get(key), where), where)
    return Profile(name=name, **sections)
