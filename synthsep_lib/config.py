"""Typed configuration and the two profiles, ``reduced`` and ``paper``.

A profile is the only switch between the CI-sized book and the paper-sized one. Profiles
live in ``synthsep_lib/profiles/<name>.yaml``; :func:`load_profile` reads one into
dataclasses and applies overrides from a notebook's ``parameters`` cell.

Used in: every chapter.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

__all__ = ["FeatureConfig", "DataConfig", "Profile", "load_profile", "PROFILES"]

PROFILES = ("reduced", "paper")


@dataclass(frozen=True)
class FeatureConfig:
    """STFT, mel and normalisation settings (PAPER_FACTS §1, §3).

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
    """Where the corpora come from and how they are split and mixed (PAPER_FACTS §2).

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
class Profile:
    """A named bundle of every setting a chapter needs."""

    name: str
    features: FeatureConfig = field(default_factory=FeatureConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
        if section not in ("features", "data"):
            raise ValueError(f"unknown profile section {section!r}; expected 'features' or 'data'")
        raw.setdefault(section, {}).update(values)
    return Profile(
        name=name,
        features=_build(FeatureConfig, raw.get("features", {}), f"profile {name!r} [features]"),
        data=_build(DataConfig, raw.get("data", {}), f"profile {name!r} [data]"),
    )
