"""Profiles load, overrides apply, mistakes are named."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from synthsep_lib import config
from synthsep_lib.config import FeatureConfig, load_profile


def test_every_profile_uses_the_paper_features():
    assert config.PROFILES == ("reduced", "paper", "smoke")
    for name in config.PROFILES:
        assert load_profile(name).features == FeatureConfig()
    assert FeatureConfig().lead_in == 768


#: Everything the smoke profile changes from the paper's, section by section: schedules,
#: the number of test mixtures and harder conditions, the feed's processes, and how much
#: the vocoder chapter and Chapter 8 synthesise (and how the WaveNet folds utterances
#: into segments and batches them). Model sizes and all else are the paper's.
SMOKE_CHANGES = {
    "data": {"test_pairs"},
    "encoder": {"steps_per_epoch", "validation_steps", "epochs", "feed_workers"},
    "vocoder": {
        "synthesis_files",
        "fold_segment_seconds",
        "fold_overlap_seconds",
        "synthesis_batch",
    },
    "denoiser": {"steps_per_epoch", "validation_steps", "epochs", "feed_workers"},
    "parallel": {"steps", "finetune_steps", "checkpoint_interval", "log_interval"},
    "conditions": {"pairs", "snr_levels_db", "t60_seconds", "max_seconds"},
}


def test_smoke_is_the_paper_with_its_schedules_cut():
    paper, smoke = load_profile("paper"), load_profile("smoke")
    for name in config.SECTIONS:
        ours, theirs = (dataclasses.asdict(getattr(p, name)) for p in (smoke, paper))
        changed = {key for key in ours if ours[key] != theirs[key]}
        assert changed == SMOKE_CHANGES.get(name, set()), f"[{name}] differs in {changed}"
    assert smoke.data.test_pairs <= 2 and smoke.vocoder.synthesis_files == 1
    assert smoke.encoder.epochs * smoke.encoder.steps_per_epoch <= 2
    assert smoke.parallel.steps + smoke.parallel.finetune_steps <= 3


def test_profiles_differ_in_their_data():
    assert load_profile("reduced").data.corpus == "mini"
    assert load_profile("paper").data.corpus == "real"
    assert load_profile("paper").data.test_pairs == 100


def test_overrides_apply():
    profile = load_profile("reduced", {"data": {"mini_utterances": 40}})
    assert profile.data.mini_utterances == 40


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("tiny", None, "unknown profile 'tiny'"),
        ("reduced", {"model": {}}, "unknown profile section 'model'"),
        ("reduced", {"data": {"utterances": 3}}, r"unknown setting\(s\) \['utterances'\]"),
    ],
)
def test_mistakes_are_named(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        load_profile(name, overrides)


# --- values are checked against their type and range (issue 14) ---------------------

BAD_VALUES = [
    ("encoder", "lr_decay", -3, r"lr_decay: -3 is not allowed; expected a number in \(0, 1\]"),
    ("parallel", "lr_decay", -3, r"lr_decay: -3 is not allowed; expected a number in \(0, 1\]"),
    ("encoder", "epochs", -1, "epochs: -1 is not allowed; expected an integer >= 1"),
    ("encoder", "epochs", 2.5, "epochs: 2.5 is not allowed; expected an integer >= 1"),
    ("encoder", "epochs", "abc", "epochs: 'abc' is not allowed; expected an integer >= 1"),
    ("encoder", "epochs", True, "epochs: True is not allowed; expected an integer >= 1"),
    ("encoder", "learning_rate", "1e-3", r"learning_rate: '1e-3' is not allowed; expected a nu"),
    ("encoder", "dropout", 1.0, r"dropout: 1.0 is not allowed; expected a number in \[0, 1\)"),
    ("data", "lj_test_size", 0, r"lj_test_size: 0 is not allowed; expected a number in \(0, 1\)"),
    ("data", "corpus", "big", r"corpus: 'big' is not allowed; expected one of \['mini', 'real'\]"),
    ("denoiser", "final_filters", [8, 0], r"final_filters: \[8, 0\] is not allowed; expected a "),
    ("conditions", "t60_seconds", [0.3, "x"], r"t60_seconds: \[0.3, 'x'\] is not allowed"),
    ("vocoder", "model", [], r"model: \[\] is not allowed; expected a mapping"),
    ("features", "fmax", float("nan"), "fmax: nan is not allowed; expected a number > 0"),
]


@pytest.fixture
def profile_text(monkeypatch):
    """Serve a profile's YAML from a test's text (``texts[name] = ...``) instead of the
    shipped file; profiles without a text are read as shipped."""
    texts, shipped = {}, config._profile_text
    monkeypatch.setattr(config, "_profile_text", lambda name: texts.get(name) or shipped(name))
    return texts


@pytest.mark.parametrize(("section", "key", "value", "message"), BAD_VALUES)
def test_bad_values_in_overrides_are_named(section, key, value, message):
    with pytest.raises(ValueError, match=rf"^profile 'reduced' \[{section}\] {message}"):
        load_profile("reduced", {section: {key: value}})


@pytest.mark.parametrize(("section", "key", "value", "message"), BAD_VALUES)
def test_bad_values_in_a_profile_file_are_named(profile_text, section, key, value, message):
    profile_text["paper"] = yaml.safe_dump({section: {key: value}})
    with pytest.raises(ValueError, match=rf"^profile 'paper' \[{section}\] {message}"):
        load_profile("paper")


def test_a_section_that_is_not_a_mapping_is_named(profile_text):
    expected = r"^profile 'reduced' \[encoder\]: expected a mapping of settings, got a list$"
    with pytest.raises(ValueError, match=expected):
        load_profile("reduced", {"encoder": ["epochs", 6]})
    profile_text["paper"] = "encoder: [epochs, 6]\n"
    with pytest.raises(ValueError, match=r"^profile 'paper' \[encoder\]: .* got a list$"):
        load_profile("paper")
    profile_text["paper"] = "encoder: 6\n"
    with pytest.raises(ValueError, match=r"^profile 'paper' \[encoder\]: .* got an int$"):
        load_profile("paper")
    profile_text["paper"] = "- encoder\n"
    with pytest.raises(ValueError, match=r"^profile 'paper': expected a mapping of sections"):
        load_profile("paper")


def test_values_at_the_edges_of_their_ranges_load(profile_text):
    profile = load_profile(
        "reduced",
        {
            "parallel": {"lr_decay": 1, "ema_decay": 0.0, "finetune_learning_rate": 0.0},
            "encoder": {"epochs": 1, "learning_rate": 1, "feed_workers": 0},
            "conditions": {"snr_levels_db": [-5, 5], "reference_snr_db": 5},
        },
    )
    assert profile.parallel.lr_decay == 1 and profile.encoder.epochs == 1
    assert profile.conditions.snr_levels_db == (-5.0, 5.0)
    profile_text["paper"] = "encoder: {epochs: 1, lr_decay: 1}\nfeatures:\n"
    assert load_profile("paper").encoder.lr_decay == 1


def test_checks_across_settings_name_the_profile_and_section():
    with pytest.raises(ValueError, match=r"^profile 'reduced' \[denoiser\]: .*kernel_size must be"):
        load_profile("reduced", {"denoiser": {"kernel_size": 2}})


# Numbers that may take any finite value: every other numeric setting declares its range.
UNBOUNDED = {
    ("features", "ref_level_db"),
    ("features", "ref_level_db_linear"),
    ("conditions", "snr_levels_db"),
    ("conditions", "reference_snr_db"),
}


def test_every_numeric_setting_declares_its_range():
    missing = {
        (name, f.name)
        for name, cls in config.SECTIONS.items()
        for f in dataclasses.fields(cls)
        if f.type not in ("str", "dict") and "range" not in f.metadata
    }
    assert missing == UNBOUNDED
