"""The evaluation runner's cache, resumption and tables, on a tiny run folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthsep_lib import audio
from synthsep_lib.config import load_profile
from synthsep_lib.evaluation import metrics as metrics_module
from synthsep_lib.evaluation import paper_numbers, tables
from synthsep_lib.mixing import MANIFEST_COLUMNS, write_test_manifest
from synthsep_lib.pipeline import scoring as runner
from synthsep_lib.pipeline.runs import RunPaths
from synthsep_lib.pipeline.vocoding import PARALLEL_METHODS

SR = 22050
PAIRS = 5


@pytest.fixture
def run(tmp_path):
    """A run folder with a 5-pair manifest, references, and outputs of two methods."""
    paths = RunPaths(tmp_path / "runs", "reduced")
    rng = np.random.default_rng(0)
    rows = []
    for pair in range(PAIRS):
        source = (0.5 * np.sin(2 * np.pi * 220 * np.arange(SR) / SR) * rng.uniform(0.5, 1)).astype(
            np.float32
        )
        audio.save_wav(paths.test_audio / f"{pair:03d}_source.wav", source, SR, subtype="FLOAT")
        audio.save_wav(
            paths.test_audio / f"{pair:03d}_target.wav", 0.9 * source, SR, subtype="FLOAT"
        )
        for method, noise in (("input", 0.1), ("ibm-gt", 0.01)):
            out = source + noise * rng.standard_normal(SR).astype(np.float32)
            audio.save_wav(paths.output_wav(method, pair), out, SR, subtype="FLOAT")
        rows.append(
            {c: 0 for c in MANIFEST_COLUMNS}
            | {
                "pair": pair,
                "target_id": f"LJ001-{pair:04d}",
                "noise_file": "1-1-A-10.wav",
                "num_samples": SR,
            }
        )
    write_test_manifest(paths.test_manifest, pd.DataFrame(rows))
    return paths


@pytest.fixture
def counted(monkeypatch):
    """A stand-in for compute_metrics that records its calls (SNR of the estimate)."""
    calls = []

    def fake(reference, estimate, sample_rate, **kwargs):
        calls.append(len(estimate))
        err = estimate - reference
        with np.errstate(divide="ignore"):
            return {
                "stoi": 1.0,
                "si_sdr": float(10 * np.log10(np.sum(reference**2) / np.sum(err**2))),
            }

    monkeypatch.setattr(metrics_module, "compute_metrics", fake)
    return calls


def test_scores_every_output_once_and_caches(run, counted):
    cfg = load_profile("reduced")
    first = runner.evaluate_outputs(run, cfg, n_jobs=1, progress=False)
    assert len(first) == 2 * PAIRS and len(counted) == 2 * PAIRS
    assert set(first["method"]) == {"input", "ibm-gt"}
    means = first.groupby("method")["si_sdr"].mean()
    assert means["ibm-gt"] > means["input"] + 15  # 0.01 vs 0.1 noise: 20 dB apart
    again = runner.evaluate_outputs(run, cfg, n_jobs=1, progress=False)
    assert len(counted) == 2 * PAIRS, "a rerun must compute nothing new"
    pd.testing.assert_frame_equal(first, again)


def test_a_changed_output_is_rescored(run, counted):
    cfg = load_profile("reduced")
    runner.evaluate_outputs(run, cfg, n_jobs=1, progress=False)
    reference = audio.load_wav(run.test_audio / "002_source.wav", SR)
    audio.save_wav(run.output_wav("input", 2), reference, SR, subtype="FLOAT")
    table = runner.evaluate_outputs(run, cfg, n_jobs=1, progress=False)
    assert len(counted) == 2 * PAIRS + 1
    assert np.isinf(table.query("method == 'input' and pair == 2")["si_sdr"]).all()


def test_interrupted_evaluation_resumes(run, monkeypatch):
    cfg = load_profile("reduced")
    monkeypatch.setattr(runner, "FLUSH_EVERY", 3)
    calls = []

    def failing(reference, estimate, sample_rate, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return {"stoi": 0.5}

    monkeypatch.setattr(metrics_module, "compute_metrics", failing)
    with pytest.raises(KeyboardInterrupt):
        runner.evaluate_outputs(run, cfg, n_jobs=1, progress=False)
    cached = pd.read_csv(run.eval / "metrics.csv")
    assert len(cached) == 3  # flushed after 3; the 4th was lost with the interruption
    calls.clear()
    monkeypatch.setattr(metrics_module, "compute_metrics", lambda r, e, sr, **k: {"stoi": 0.5})
    table = runner.evaluate_outputs(run, cfg, n_jobs=1, progress=False)
    assert len(table) == 2 * PAIRS


def test_missing_manifest_names_chapter_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="01_data_simulation"):
        runner.evaluate_outputs(
            RunPaths(tmp_path, "reduced"), load_profile("reduced"), progress=False
        )


def test_table_one_marks_rows_not_run_and_sits_beside_the_paper(run, counted):
    scores = runner.evaluate_outputs(run, load_profile("reduced"), n_jobs=1, progress=False)
    table = tables.table_one(scores)
    assert list(table.index[:7]) == list(paper_numbers.TABLE_ONE.index)
    assert table.loc["Input", "status"] == "computed" and table.loc["Input", "files"] == PAIRS
    assert table.loc["Proposed", "status"] == "not run" and np.isnan(table.loc["Proposed", "STOI"])
    assert table.loc["B1-gt", "paper PESQ"] == 3.26
    assert table.loc["IBM-gt", "SI-SDR"] == pytest.approx(
        scores.query("method == 'ibm-gt'")["si_sdr"].mean()
    )


def test_timing_table_projects_the_real_time_factor(tmp_path):
    paths = RunPaths(tmp_path, "reduced")
    paths.outputs("b1").mkdir(parents=True)
    pd.DataFrame({"pair": [0, 1], "seconds": [1.0, 3.0], "audio_seconds": [2.0, 6.0]}).to_csv(
        paths.outputs("b1") / "timing.csv", index=False
    )
    timing = tables.timing_table(runner.read_timings(paths))
    assert timing.loc["B1", "rtf"] == pytest.approx(0.5)
    assert timing.loc["B1", "projected hours (100 files)"] == pytest.approx(0.5 * 657 / 3600)
    assert timing.loc["B1", "paper hours"] == 0.5


def test_rows_beyond_the_paper_are_the_parallel_vocoders_outputs():
    assert set(tables.BEYOND_PAPER_ROWS.values()) == set(PARALLEL_METHODS)


def test_table_one_ends_with_the_rows_beyond_the_paper_not_run_until_they_are(tmp_path):
    scores = pd.DataFrame(
        {"method": ["input", "proposed-parallel-ft"], "pair": [0, 0], "stoi": [0.5, 0.8]}
    )
    table = tables.table_one(scores)
    beyond = list(tables.BEYOND_PAPER_ROWS)
    assert list(table.index) == list(tables.ALL_ROWS)
    assert list(table.index[-len(beyond) :]) == beyond
    assert table.loc["Proposed-parallel-ft", "status"] == "computed"
    assert table.loc["Proposed-parallel-ft", "STOI"] == 0.8
    assert (
        table.loc[["Proposed-parallel", "Parallel vocoder on the true mel (oracle)"], "status"]
        == "not run"
    ).all()
    assert np.isnan(table.loc["Proposed-parallel-ft", "paper PESQ"])  # not in the paper

    paths = RunPaths(tmp_path, "reduced")
    for method, seconds in (("b1", 1.0), ("parallel-gt-mel", 0.2)):
        paths.outputs(method).mkdir(parents=True)
        pd.DataFrame({"pair": [0], "seconds": [seconds], "audio_seconds": [2.0]}).to_csv(
            paths.outputs(method) / "timing.csv", index=False
        )
    timing = tables.timing_table(runner.read_timings(paths))
    assert list(timing.index) == ["B1", "Parallel vocoder on the true mel (oracle)"]
    assert timing.loc["Parallel vocoder on the true mel (oracle)", "rtf"] == pytest.approx(0.1)
    assert np.isnan(timing.loc["Parallel vocoder on the true mel (oracle)", "paper hours"])


def test_table_one_counts_undefined_values_instead_of_faking_them():
    scores = pd.DataFrame(
        {
            "method": ["input", "input"],
            "pair": [0, 1],
            "pesq_paper": [1.5, np.nan],
            "stoi": [0.5, 0.7],
            "sdr_paper": [1.0, 3.0],
        }
    )
    table = tables.table_one(scores)
    assert table.loc["Input", "undefined"] == 1
    assert table.loc["Input", "PESQ"] == 1.5 and table.loc["Input", "STOI"] == pytest.approx(0.6)


def test_a_silent_output_is_scored_as_undefined_not_fatal(run):
    audio.save_wav(run.output_wav("input", 3), np.zeros(SR, np.float32), SR, subtype="FLOAT")
    with pytest.warns(metrics_module.MetricWarning, match="003.wav"):
        table = runner.evaluate_outputs(
            run,
            load_profile("reduced"),
            methods=["input"],
            metrics=["stoi"],
            n_jobs=1,
            progress=False,
        )
    assert len(table) == PAIRS
    assert np.isnan(table.set_index("pair").loc[3, "stoi"])
    assert table.set_index("pair").drop(index=3)["stoi"].notna().all()


def test_the_cache_forgets_scores_of_rewritten_outputs(run, counted):
    cfg = load_profile("reduced")
    runner.evaluate_outputs(run, cfg, n_jobs=1, progress=False)
    out = run.output_wav("input", 1)
    audio.save_wav(out, 0.5 * audio.load_wav(out, SR), SR, subtype="FLOAT")
    runner.evaluate_outputs(run, cfg, n_jobs=1, progress=False)
    cache = pd.read_csv(run.eval / "metrics.csv")
    assert len(cache) == 2 * PAIRS
