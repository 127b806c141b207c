"""Typed configuration and the two profiles, ``reduced`` and ``paper``.

A profile is the only switch between the CI-sized book and the paper-sized one. Profiles
live in ``synthsep_lib/profiles/<name>.yaml``; :func:`load_profile` reads one into
dataclasses and applies overrides from a notebook's ``parameters`` cell.
"""

from __future__ import annotations

import dataclasses
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

PROFILES = ("reduced", "paper")


@dataclass(frozen=True)
class FeatureConfig:
    """STFT, mel and normalisation settings (see original_code.md#oc-constants).

    Defaults are the paper's and the r9y9 LJSpeech preset's; they are the same in both
    profiles because the published WaveNet checkpoint expects exactly these features.
    """

    sample_rate: int = 22050
    fft_size: int = 1024
    hop_size: int = 256
    num_mels: int = 80
    fmin: float = 125.0
    fmax: float = 7600.0
    min_level_db: float = -100.0
    ref_level_db: float = 20.0
    min_level_db_linear: float = -80.0
    ref_level_db_linear: float = 30.0
    linear_bins: int = 512
    rescaling_max: float = 0.999

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

    corpus: str = "mini"
    mini_utterances: int = 150
    mini_seed: int = 2019
    lj_test_size: float = 0.0441
    lj_split_seed: int = 1234
    esc_split_seed: int = 1234
    esc_train_fraction: float = 0.9
    valid_fraction: float = 0.8
    shuffle_seed: int = 123456789
    test_pairs_seed: int = 66666666
    test_pairs: int = 100
    min_active_seconds: float = 4.5


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

    block_frames: int = 64
    linear_lstm_units: int = 400
    mel_lstm_units: int = 200
    proposed_linear_channels: int = 4
    proposed_mel_channels: int = 4
    b1_linear_channels: int = 2
    b1_mel_channels: int = 1
    hourglass_depth: int = 3
    hourglass_filters: int = 64
    dropout: float = 0.25
    recurrent_dropout: float = 0.25
    batch_norm_momentum: float = 0.99
    l2: float = 1e-7
    batch_size: int = 32
    steps_per_epoch: int = 200
    validation_steps: int = 20
    epochs: int = 500
    learning_rate: float = 1e-3
    lr_decay: float = 0.98
    feed_workers: int = 2
    seed: int = 1234


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
    source: str = "pretrained"
    batch_size: int = 2
    max_time_steps: int = 8000
    learning_rate: float = 1e-3
    warmup_steps: int = 4000
    ema_decay: float = 0.9999
    clip_grad_norm: float = 0.0
    steps: int = 1_000_000
    checkpoint_interval: int = 10_000
    log_interval: int = 100
    synthesis_batch: int = 8
    fold_segment_seconds: float = 0.0
    fold_overlap_seconds: float = 0.05
    synthesis_files: int = 0
    seed: int = 1234

    def __post_init__(self):
        if self.source not in ("pretrained", "train"):
            raise ValueError(f"vocoder source must be 'pretrained' or 'train'; got {self.source!r}")


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

    stacks: int = 3
    dilation_depth: int = 9
    kernel_size: int = 3
    residual_filters: int = 128
    skip_filters: int = 128
    final_filters: tuple[int, int] = (2048, 256)
    target_field: int = 1601
    target_padding: int = 1
    batch_size: int = 10
    steps_per_epoch: int = 1000
    validation_steps: int = 100
    epochs: int = 500
    max_segments: int = 4
    learning_rate: float = 1e-3
    adam_epsilon: float = 1e-8
    lr_factor: float = 0.1
    lr_patience: int = 8
    lr_cooldown: int = 4
    lr_min_delta: float = 1e-4
    inference_batch: int = 10
    feed_workers: int = 2
    seed: int = 1234

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
    batch_size: int = 16
    window_frames: int = 64
    learning_rate: float = 5e-4
    lr_decay: float = 1.0
    clip_grad_norm: float = 0.0
    mel_weight: float = 45.0
    stft_weight: float = 1.0
    adversarial_start: int = 0
    adversarial_weight: float = 1.0
    feature_matching_weight: float = 2.0
    period_channels: tuple[int, ...] = (32, 128, 512, 1024)
    resolution_channels: int = 32
    ema_decay: float = 0.0
    steps: int = 1_000_000
    finetune_steps: int = 100_000
    finetune_learning_rate: float = 1e-4
    finetune_rounds: int = 1
    checkpoint_interval: int = 10_000
    log_interval: int = 100
    synthesis_files: int = 0
    seed: int = 1234

    def __post_init__(self):
        object.__setattr__(self, "period_channels", tuple(int(c) for c in self.period_channels))
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"parallel ema_decay must be in [0, 1); got {self.ema_decay}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(f"parallel lr_decay must be in (0, 1]; got {self.lr_decay}")
        if self.finetune_rounds < 1:
            raise ValueError(f"parallel finetune_rounds must be >= 1; got {self.finetune_rounds}")


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
    seed : int
        Seed of the draws (utterances, clips, offsets, rooms).
    """

    pairs: int = 10
    snr_levels_db: tuple[float, ...] = (-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0)
    reference_snr_db: float = 5.0
    t60_seconds: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    seed: int = 8888

    def __post_init__(self):
        object.__setattr__(self, "snr_levels_db", tuple(float(v) for v in self.snr_levels_db))
        object.__setattr__(self, "t60_seconds", tuple(float(v) for v in self.t60_seconds))
        object.__setattr__(self, "reference_snr_db", float(self.reference_snr_db))
        if int(self.pairs) < 1:
            raise ValueError(f"conditions pairs must be >= 1; got {self.pairs}")
        if self.reference_snr_db not in self.snr_levels_db:
            raise ValueError(
                f"conditions reference_snr_db {self.reference_snr_db} must be one of "
                f"snr_levels_db {list(self.snr_levels_db)} (it is the sweep's reference point)"
            )
        if not all(t > 0 for t in self.t60_seconds):
            raise ValueError(f"conditions t60_seconds must be > 0; got {list(self.t60_seconds)}")


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


def _build(cls, values: dict[str, Any], where: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown setting(s) {unknown} in {where}; expected some of {sorted(known)}"
        )
    return cls(**values)


def load_profile(name: str, overrides: dict[str, dict[str, Any]] | None = None) -> Profile:
    """Read profile ``name`` and apply ``overrides``.

    Parameters
    ----------
    name : {"reduced", "paper"}
        Profile to load.
    overrides : dict, optional
        Section → {setting: value}, e.g. ``{"data": {"mini_utterances": 40}}``.

    Returns
    -------
    Profile

    Raises
    ------
    ValueError
        For an unknown profile, section or setting (the message lists what exists).
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {PROFILES}")
    text = resources.files("synthsep_lib").joinpath("profiles", f"{name}.yaml").read_text()
    raw = yaml.safe_load(text) or {}
    for section, values in (overrides or {}).items():
        if section not in SECTIONS:
            raise ValueError(
                f"unknown profile section {section!r}; expected one of {sorted(SECTIONS)}"
            )
        raw.setdefault(section, {}).update(values)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ValueError(
            f"unknown section(s) {unknown} in profile {name!r}; expected {sorted(SECTIONS)}"
        )
    sections = {
        key: _build(cls, raw.get(key) or {}, f"profile {name!r} [{key}]")
        for key, cls in SECTIONS.items()
    }
    return Profile(name=name, **sections)
