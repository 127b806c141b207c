"""Tests of synthsep_lib.pipeline.author_samples against a local HTTP server on 127.0.0.1.

Thirty small WAV files with the real names, subtypes and length relations (B1 1024
samples longer in DOUBLE, B2 6138 shorter in PCM_16 holding ``source[3069:…]``) are
generated in the test, served from a temporary folder and fetched with their computed
checksums. Nothing touches the internet, and the authors' unlicensed files are never used.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from synthsep_lib.pipeline import author_samples as aus
from synthsep_lib.pipeline.author_samples import (
    AUTHOR_SAMPLES,
    AUTHOR_SAMPLES_BASE_URL,
    AUTHOR_SAMPLES_COMMIT,
    B1_EXTRA_SAMPLES,
    B2_OFFSET,
    B2_OFFSET_AUTHORS,
    B2_SHORTER_BY,
    INDICES,
    METHODS,
    MIRROR_ENV,
    SAMPLE_RATE,
    ChecksumMismatchError,
    DownloadError,
    align_author_outputs,
    author_sample_name,
    author_samples_present,
    evaluate_author_samples,
    fetch_author_samples,
    load_author_sample_set,
)

SUBTYPES = {"source": "FLOAT", "mixture": "FLOAT", "proposed": "FLOAT", "b1": "DOUBLE"}


# --------------------------------------------------------------------------- fake samples


def _speech_like(n: int, rng: np.random.Generator) -> np.ndarray:
    """Broadband, syllable-modulated signal (so adjacent-sample shifts are visible)."""
    t = np.arange(n) / SAMPLE_RATE
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t)) ** 2
    x = envelope * (0.2 * voiced + rng.standard_normal(n))
    return 0.5 * x / np.max(np.abs(x))


def make_samples(folder: Path) -> dict[str, str]:
    """Write 30 fake author samples into ``folder``; return name → sha256 hex."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2019)
    for index in INDICES:
        n = 256 * (96 + 8 * index)
        source = _speech_like(n, rng)
        noise = 0.1 * rng.standard_normal(n)
        signals = {
            "source": source,
            "mixture": source + noise,
            "proposed": 0.9 * source + 0.01 * rng.standard_normal(n),
            "b1": np.concatenate(
                [source + 0.005 * rng.standard_normal(n), 1e-3 * rng.standard_normal(1024)]
            ),
            "b2": source[B2_OFFSET : B2_OFFSET + n - B2_SHORTER_BY]
            + 0.001 * rng.standard_normal(n - B2_SHORTER_BY),
        }
        for kind, signal in signals.items():
            sf.write(
                folder / author_sample_name(index, kind),
                signal,
                SAMPLE_RATE,
                subtype=SUBTYPES.get(kind, "PCM_16"),
            )
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.wav"))
    }


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("samples") / "AudioSamples"
    return folder, make_samples(folder)


# --------------------------------------------------------------------------- server


@pytest.fixture
def server(samples, local_server):
    """Serves the fake samples under ``/AudioSamples/``."""
    srv = local_server(samples[0].parent)
    srv.base = f"{srv.url}/AudioSamples/"
    return srv


@pytest.fixture
def fetched(samples, tmp_path) -> Path:
    """A folder with the fake samples, as if fetched (copied, no server)."""
    dest = tmp_path / "author_samples"
    dest.mkdir()
    for name in samples[1]:
        (dest / name).write_bytes((samples[0] / name).read_bytes())
    return dest


# --------------------------------------------------------------------------- registry


def test_registry_has_the_30_names_and_sha256_hashes():
    expected = {
        f"Ind_{i}_{part}.wav"
        for i in range(6)
        for part in ("source", "mixture", "est_proposed", "est_B1", "est_B2")
    }
    assert set(AUTHOR_SAMPLES) == expected
    assert len(AUTHOR_SAMPLES) == 30
    for value in AUTHOR_SAMPLES.values():
        assert re.fullmatch(r"[0-9a-f]{64}", value)
    assert len(set(AUTHOR_SAMPLES.values())) == 30
    assert AUTHOR_SAMPLES_COMMIT == "d930db4f08ea860eeb35527377caf74804b2a617"
    assert AUTHOR_SAMPLES_BASE_URL == (
        "https://raw.githubusercontent.com/QLQL/SpeechSynthesis4Separation/"
        "d930db4f08ea860eeb35527377caf74804b2a617/AudioSamples/"
    )


def test_sample_names():
    assert author_sample_name(0, "b2") == "Ind_0_est_B2.wav"
    assert author_sample_name(5, "proposed") == "Ind_5_est_proposed.wav"
    assert author_sample_name(3, "source") == "Ind_3_source.wav"
    with pytest.raises(ValueError, match="index"):
        author_sample_name(6, "source")
    with pytest.raises(ValueError, match="kind"):
        author_sample_name(0, "b3")


def test_base_url_resolution(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert aus._resolve_base_url(None) == AUTHOR_SAMPLES_BASE_URL
    assert aus._resolve_base_url("http://h/x") == "http://h/x/"
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.example/data/")
    assert aus._resolve_base_url(None) == "http://mirror.example/data/AudioSamples/"
    assert aus._resolve_base_url("http://h/x/") == "http://h/x/"


# --------------------------------------------------------------------------- fetch


def test_fetch_downloads_verifies_and_is_idempotent(server, samples, tmp_path):
    folder, registry = samples
    dest = tmp_path / "author_samples"
    assert not author_samples_present(dest, registry=registry)

    out = fetch_author_samples(dest, base_url=server.base, registry=registry, progress=False)
    assert out == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(registry)
    for name in registry:
        assert (dest / name).read_bytes() == (folder / name).read_bytes()
    assert sum(server.hits.values()) == 30
    assert all(server.hits[f"/AudioSamples/{name}"] == 1 for name in registry)
    assert author_samples_present(dest, registry=registry)
    assert author_samples_present(dest, verify=True, registry=registry)
    assert not author_samples_present(dest, verify=True)  # the real hashes differ

    server.hits.clear()
    fetch_author_samples(dest, base_url=server.base, registry=registry, progress=False)
    assert sum(server.hits.values()) == 0

    # one missing and one corrupted file: only those two are fetched again
    (dest / "Ind_2_est_B1.wav").unlink()
    (dest / "Ind_4_source.wav").write_bytes(b"garbage")
    assert not author_samples_present(dest, registry=registry)
    fetch_author_samples(dest, base_url=server.base, registry=registry, progress=True)
    assert set(server.hits) == {"/AudioSamples/Ind_2_est_B1.wav", "/AudioSamples/Ind_4_source.wav"}
    assert author_samples_present(dest, verify=True, registry=registry)


def test_fetch_uses_the_mirror_variable(server, samples, tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, server.url + "/")
    dest = tmp_path / "via_mirror"
    fetch_author_samples(dest, registry=samples[1], progress=False)
    assert author_samples_present(dest, verify=True, registry=samples[1])
    assert sum(server.hits.values()) == 30


def test_fetch_accepts_pooch_form_hashes(server, samples, tmp_path):
    registry = {name: f"sha256:{h}" for name, h in samples[1].items()}
    dest = tmp_path / "pooch_form"
    fetch_author_samples(dest, base_url=server.base, registry=registry, progress=False)
    assert author_samples_present(dest, verify=True, registry=registry)


def test_wrong_hash_is_a_clear_error_and_the_file_is_removed(server, samples, tmp_path):
    registry = dict(samples[1])
    name = "Ind_1_est_B2.wav"
    actual = registry[name]
    wrong = "0" * 64
    registry[name] = wrong
    dest = tmp_path / "author_samples"
    dest.mkdir()
    (dest / name).write_bytes(b"an old, outdated copy")
    with pytest.raises(ChecksumMismatchError) as info:
        fetch_author_samples(dest, base_url=server.base, registry=registry, progress=False)
    message = str(info.value)
    assert name in message
    assert f"{server.base}{name}" in message
    assert f"sha256:{wrong}" in message
    assert actual in message
    assert isinstance(info.value, DownloadError)
    assert not (dest / name).exists()
    assert not [p for p in dest.iterdir() if p.name.startswith("tmp")]
    assert not author_samples_present(dest, registry=registry)


def test_404_is_a_clear_error(server, samples, tmp_path):
    registry = dict(samples[1])
    registry["Ind_9_missing.wav"] = "1" * 64
    dest = tmp_path / "author_samples"
    with pytest.raises(DownloadError) as info:
        fetch_author_samples(dest, base_url=server.base, registry=registry, progress=False)
    assert not isinstance(info.value, ChecksumMismatchError)
    message = str(info.value)
    assert "Ind_9_missing.wav" in message
    assert f"{server.base}Ind_9_missing.wav" in message
    assert "404" in message
    assert not (dest / "Ind_9_missing.wav").exists()
    assert not [p for p in dest.iterdir() if p.name.startswith("tmp")]


def test_unreachable_server_is_a_clear_error(samples, tmp_path, local_server):
    srv = local_server(tmp_path)
    url = srv.url + "/AudioSamples/"
    srv.close()  # nothing listens on the port any more
    with pytest.raises(
        DownloadError,
        match=r"could not download author sample Ind_0_\w+\.wav from http://127\.0\.0\.1",
    ):
        fetch_author_samples(tmp_path / "d", base_url=url, registry=samples[1], progress=False)


# --------------------------------------------------------------------------- load and align


def test_load_author_sample_set(fetched):
    for index in (0, 5):
        s = load_author_sample_set(fetched, index)
        assert list(s) == ["source", "mixture", "proposed", "b1", "b2"]
        n = len(s["source"])
        assert n == 256 * (96 + 8 * index)
        assert all(v.dtype == np.float64 and v.ndim == 1 for v in s.values())
        assert len(s["mixture"]) == len(s["proposed"]) == n
        assert len(s["b1"]) == n + B1_EXTRA_SAMPLES
        assert len(s["b2"]) == n - B2_SHORTER_BY


def test_load_checks_files_and_rate(fetched):
    (fetched / "Ind_3_est_B2.wav").unlink()
    with pytest.raises(FileNotFoundError, match="fetch_author_samples"):
        load_author_sample_set(fetched, 3)
    sf.write(fetched / "Ind_2_mixture.wav", np.zeros(100), 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="16000 Hz"):
        load_author_sample_set(fetched, 2)
    sf.write(fetched / "Ind_1_mixture.wav", np.zeros((100, 2)), SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(ValueError, match="mono"):
        load_author_sample_set(fetched, 1)
    with pytest.raises(ValueError, match="index"):
        load_author_sample_set(fetched, 7)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_align_b2_true_offset_and_authors_variant(fetched):
    s = load_author_sample_set(fetched, 0)
    n = len(s["source"])
    pairs = align_author_outputs(s)
    ref, est = pairs["b2"]
    assert len(ref) == len(est) == n - B2_SHORTER_BY
    assert np.shares_memory(ref, s["source"])
    np.testing.assert_array_equal(ref, s["source"][3069 : 3069 + len(est)])
    true_corr = _corr(ref, est)
    assert true_corr > 0.999

    ref_a, est_a = align_author_outputs(s, b2_offset=B2_OFFSET_AUTHORS)["b2"]
    assert B2_OFFSET_AUTHORS == 3068
    np.testing.assert_array_equal(ref_a, s["source"][3068 : 3068 + len(est)])
    assert len(est_a) == len(est)
    assert _corr(ref_a, est_a) < true_corr - 0.05

    # a B2 reference running past the source's end is shortened together with the estimate
    ref_late, est_late = align_author_outputs(s, b2_offset=B2_SHORTER_BY + 100)["b2"]
    assert len(ref_late) == len(est_late) == n - (B2_SHORTER_BY + 100)


def test_align_b1_mixture_proposed(fetched):
    s = load_author_sample_set(fetched, 1)
    n = len(s["source"])
    pairs = align_author_outputs(s)
    assert list(pairs) == list(METHODS)
    for method in ("mixture", "proposed", "b1"):
        ref, est = pairs[method]
        assert len(ref) == len(est) == n
        np.testing.assert_array_equal(ref, s["source"])
        np.testing.assert_array_equal(est, s[method][:n])
    assert _corr(*pairs["b1"]) > 0.99


def test_align_validates():
    s = {"source": np.zeros(10), "b2": np.zeros(5)}
    assert list(align_author_outputs(s, b2_offset=2)) == ["b2"]
    with pytest.raises(ValueError, match="b2_offset"):
        align_author_outputs(s, b2_offset=-1)
    with pytest.raises(ValueError, match="b2_offset"):
        align_author_outputs(s, b2_offset=1.5)
    with pytest.raises(ValueError, match="nothing to compare"):
        align_author_outputs(s, b2_offset=10)


# --------------------------------------------------------------------------- evaluation


@pytest.fixture
def stand_in_metrics(monkeypatch):
    """Replace synthsep_lib.evaluation.metrics by a module recording its calls."""
    calls = []

    def compute_metrics(reference, estimate, sample_rate, *, metrics=("corr", "n"), **kw):
        calls.append(
            {"n": len(reference), "sample_rate": sample_rate, "metrics": metrics, "kw": kw}
        )
        assert len(reference) == len(estimate)
        values = {"corr": _corr(reference, estimate), "n": float(len(reference))}
        return {name: values[name] for name in metrics}

    module = types.ModuleType("synthsep_lib.evaluation.metrics")
    module.compute_metrics = compute_metrics
    monkeypatch.setitem(sys.modules, "synthsep_lib.evaluation.metrics", module)
    return calls


def test_evaluate_with_a_stand_in(fetched, stand_in_metrics):
    table = evaluate_author_samples(fetched, progress=False)
    assert isinstance(table, pd.DataFrame)
    assert table.shape == (24, 4)
    assert list(table.columns) == ["index", "method", "corr", "n"]
    assert list(table["index"]) == [i for i in INDICES for _ in METHODS]
    assert list(table["method"]) == list(METHODS) * 6
    assert all(c["sample_rate"] == SAMPLE_RATE and c["kw"] == {} for c in stand_in_metrics)
    assert (table.query("method != 'mixture'")["corr"] > 0.95).all()
    b2 = table[table["method"] == "b2"].reset_index(drop=True)
    source_lengths = np.array([256 * (96 + 8 * i) for i in INDICES])
    np.testing.assert_array_equal(b2["n"], source_lengths - B2_SHORTER_BY)
    b1 = table[table["method"] == "b1"].reset_index(drop=True)
    np.testing.assert_array_equal(b1["n"], source_lengths)

    stand_in_metrics.clear()
    authors = evaluate_author_samples(
        fetched, metrics=["corr"], b2_offset=B2_OFFSET_AUTHORS, indices=[2], progress=True
    )
    assert authors.shape == (4, 3)
    assert all(c["metrics"] == ["corr"] for c in stand_in_metrics)
    true_b2 = table.query("index == 2 and method == 'b2'")["corr"].item()
    assert authors.query("method == 'b2'")["corr"].item() < true_b2


def _real_metrics_module():
    path = Path(aus.__file__).with_name("metrics.py")
    if not path.is_file():
        pytest.skip("synthsep_lib/evaluation/metrics.py does not exist yet")
    try:
        return importlib.import_module("synthsep_lib.evaluation.metrics")
    except ImportError as err:
        pytest.skip(f"synthsep_lib.evaluation.metrics does not import: {err}")


def test_evaluate_with_the_real_metrics(fetched):
    metrics_module = _real_metrics_module()
    table = evaluate_author_samples(fetched, indices=[0], progress=False)
    assert list(table["method"]) == list(METHODS)
    assert list(table["index"]) == [0] * 4
    metric_columns = [c for c in table.columns if c not in ("index", "method")]
    assert metric_columns
    default = getattr(metrics_module, "DEFAULT_METRICS", None)
    if default is not None:
        assert set(metric_columns) >= set(default)
    assert np.isfinite(table[metric_columns].to_numpy(dtype=float)).any()
    if "si_sdr" in table:
        by = table.set_index("method")["si_sdr"]
        assert by["b2"] > by["mixture"]
