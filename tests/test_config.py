"""Profiles load, overrides apply, mistakes are named."""

from __future__ import annotations

import pytest

from synthsep_lib.config import FeatureConfig, load_profile


def test_both_profiles_use_the_paper_features():
    for name in ("reduced", "paper"):
        assert load_profile(name).features == FeatureConfig()
    assert FeatureConfig().lead_in == 768


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
