"""benchmarks/gpu_check.py: every part reports a status, CPU parts measure, GPU parts skip."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_reports_every_part(tmp_path):
    out = tmp_path / "r.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # an empty run root: the separation parts must skip, not fail
    cmd = [sys.executable, str(SCRIPT), "--quick", "--out", str(out)]
    cmd += ["--run-root", str(tmp_path / "no-runs")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    parts = report["parts"]
    assert set(parts) == set(_load_script().PARTS)
    assert "| part | run |" in done.stdout

    gpu_only = ("wavenet_cuda_graph", "cuda_graph_equality", "separation_proposed")
    if not torch.cuda.is_available():
        for name in gpu_only:
            assert parts[name]["status"].startswith("skipped: needs a GPU"), parts[name]
    assert parts["separation_parallel_ft"]["status"].startswith("skipped: no run folder")

    for name in ("encoder_step", "wavenet_plain", "parallel_vocoder"):
        assert parts[name]["status"] == "ok", parts[name]
        assert parts[name]["rows"], name
    for row in parts["encoder_step"]["rows"]:
        assert row["seconds_per_step"] > 0 and row["projected_training_hours"] > 0
    assert [r["variant"] for r in parts["encoder_step"]["rows"]] == ["proposed", "b1"]
    for name in ("wavenet_plain", "parallel_vocoder"):
        assert [r["batch"] for r in parts[name]["rows"]] == [1, 8]
        for row in parts[name]["rows"]:
            assert row["seconds"] > 0 and row["samples_per_second"] > 0
            assert row["projected_hours_100_files"] > 0


def test_equality_check_skips_without_cuda():
    module = _load_script()
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the check runs instead (next test)")
    with pytest.raises(module.Skip, match="needs a GPU"):
        module.check_cuda_graph_equality(device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_matches_plain_path():
    from synthsep_lib.vocoder.wavenet import WaveNetConfig

    result = _load_script().check_cuda_graph_equality(WaveNetConfig.small(), batch=2, steps=512)
    assert result["steps"] == 512
    assert result["passed"], result
    assert result["bit_equal"] or result["max_abs_diff"] <= 1e-5
