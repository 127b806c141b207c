"""A prepared GPU check: the numbers a short session on a GPU should bring back.

One command, about 8 minutes on one GPU, random weights unless a run folder is given
(trained weights run at the same speed). Parts, each in its own ``try`` so one failure
does not stop the others:

* **encoder_step** — seconds per training step of the paper-size Proposed and B1
  encoders (:func:`~synthsep_lib.encoder.model.build_encoder`, ``load_profile("paper")``,
  random blocks of the paper's batch size, :func:`~synthsep_lib.encoder.loss.perceptual_loss`):
  one warm-up ``train_on_batch``, then the mean of the timed steps, projected onto the
  paper's epochs × steps per epoch. TensorFlow's GPU when it sees one, else the CPU with
  one timed step;
* **wavenet_plain** / **wavenet_cuda_graph** — the paper WaveNet's cached generation
  (:meth:`~synthsep_lib.vocoder.wavenet.WaveNet.generate`) without and with the CUDA
  graph, batches of 1, 8 and 32 utterances (CPU: a few hundred samples at batch 1 and 8,
  no graph). Each row: a one-frame warm-up, then one timed call (the graph's capture is
  part of the call, as in real use); samples/s of all rows and the hours projected for the
  paper's 100 test files (:data:`~synthsep_lib.evaluation.paper_numbers.TEST_FILES` of
  :data:`~synthsep_lib.evaluation.paper_numbers.LJ_MEAN_SECONDS` each);
* **cuda_graph_equality** — the graphed and the plain path from the same seed and the
  same conditioning: bit-equal, or the largest absolute difference (passes at ≤ 1e-5);
* **parallel_vocoder** — :func:`~synthsep_lib.vocoder.parallel.measure_synthesis_speed`
  of the paper-size :class:`~synthsep_lib.vocoder.parallel.ParallelVocoder`;
* **separation_proposed** / **separation_parallel_ft** — ``proposed`` (encoder →
  WaveNet; GPU only, hours of CPU per mixture) and ``proposed-parallel-ft`` loaded by
  :func:`~synthsep_lib.pipeline.separators.load_separator` from ``<run-root>/<profile>``,
  timed on the first test mixtures ``data/test/NNN_mixture.wav``; skipped when the run
  folder or its models are missing.

Each part's status in the JSON is ``ok``, ``skipped: <reason>`` (``skipped: needs a GPU``
for the GPU-only parts on a CPU) or ``failed: <message>``. ``--quick`` shrinks every part
to seconds (the reduced profile's encoder and parallel vocoder, the small WaveNet) to
exercise the script.

Run: ``python benchmarks/gpu_check.py [--quick] [--run-root runs] [--profile reduced]
[--out PATH]``; writes every number to ``benchmarks/results/gpu_check.json`` unless
``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from pathlib import Path

# Before TensorFlow is imported: share the GPU with torch instead of taking all its memory.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gpu_check.json"
PARTS = (
    "encoder_step",
    "wavenet_plain",
    "wavenet_cuda_graph",
    "cuda_graph_equality",
    "parallel_vocoder",
    "separation_proposed",
    "separation_parallel_ft",
)
NEEDS_GPU = "needs a GPU"
EQUALITY_TOLERANCE = 1e-5


class Skip(Exception):
    """A part that cannot run here; the message is the reason."""


def _projected_hours(samples_per_second: float, sample_rate: int) -> float:
    """Hours for the paper's 100 test files of LJSpeech's mean length at this speed."""
    from synthsep_lib.evaluation import paper_numbers

    samples = paper_numbers.TEST_FILES * paper_numbers.LJ_MEAN_SECONDS * sample_rate
    return samples / samples_per_second / 3600


# --- the parts -------------------------------------------------------------------------


def encoder_step(settings: dict) -> dict:
    """Seconds per ``train_on_batch`` of the Proposed and B1 encoders on random blocks."""
    import numpy as np
    import tensorflow as tf

    from synthsep_lib.config import load_profile
    from synthsep_lib.encoder.loss import perceptual_loss
    from synthsep_lib.encoder.model import build_encoder

    gpu = bool(tf.config.list_physical_devices("GPU"))
    steps = settings["encoder_steps"] if gpu else 1
    profile = load_profile(settings["encoder_profile"])
    cfg, feat = profile.encoder, profile.features
    batch, frames = cfg.batch_size, cfg.block_frames
    rng = np.random.default_rng(0)
    blocks = {
        "input1": rng.random((batch, frames, feat.linear_bins), dtype=np.float32),
        "input2": rng.random((batch, frames, feat.num_mels), dtype=np.float32),
    }
    rows = []
    for variant, bins in (("proposed", feat.num_mels), ("b1", feat.linear_bins)):
        target = rng.random((batch, frames, bins, 1), dtype=np.float32)
        started = time.perf_counter()
        model = build_encoder(variant, cfg)
        # --quick: eager steps, no graph tracing (which costs far more than a tiny step)
        model.compile(optimizer="adam", loss=perceptual_loss, run_eagerly=settings["quick"])
        model.train_on_batch(blocks, target)  # the first step builds the graph
        warm_up = time.perf_counter() - started
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(blocks, target)
        step = (time.perf_counter() - start) / steps
        total = cfg.epochs * cfg.steps_per_epoch
        rows.append(
            {
                "variant": variant,
                "parameters": int(model.count_params()),
                "batch": batch,
                "block_frames": frames,
                "timed_steps": steps,
                "build_and_warm_up_seconds": warm_up,
                "seconds_per_step": step,
                "schedule_steps": total,
                "projected_training_hours": step * total / 3600,
            }
        )
        del model
        tf.keras.backend.clear_session()
    return {"device": "GPU" if gpu else "CPU", "profile": settings["encoder_profile"], "rows": rows}


def _wavenet(settings: dict, device: str):
    import torch

    from synthsep_lib.vocoder.wavenet import WaveNet, WaveNetConfig

    torch.manual_seed(0)
    config = WaveNetConfig.small() if settings["quick"] else WaveNetConfig.paper()
    return WaveNet(config).to(device).eval()


def wavenet_generation(settings: dict, cuda_graph: bool) -> dict:
    """Samples/s of the WaveNet's cached generation per batch size."""
    import torch

    if cuda_graph and not torch.cuda.is_available():
        raise Skip(NEEDS_GPU)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    from synthsep_lib.config import load_profile
    from synthsep_lib.vocoder.generation import measure_generation_speed

    model = _wavenet(settings, device)
    sample_rate = load_profile("paper").features.sample_rate
    rows = []
    for batch in settings["wavenet_batches"]:
        speed = measure_generation_speed(
            model, batch, settings["wavenet_steps"], cuda_graph=cuda_graph, warmup_steps=1
        )
        row = {"batch": speed.pop("batch_size"), **speed}
        row["projected_hours_100_files"] = _projected_hours(row["samples_per_second"], sample_rate)
        rows.append(row)
    return {"device": device, "parameters": model.num_parameters(), "rows": rows}


def check_cuda_graph_equality(
    config=None, *, batch: int = 2, steps: int = 512, seed: int = 0, device: str = "cuda"
) -> dict:
    """Generate with and without the CUDA graph from the same seed and conditioning.

    Parameters
    ----------
    config : WaveNetConfig, optional
        Default: the paper's.
    batch, steps : int
        Rows and samples per row (rounded up to whole frames).
    seed : int
        Seed of the weights, the conditioning and both sampling generators.
    device : str
        A CUDA device.

    Returns
    -------
    dict
        ``bit_equal``, ``max_abs_diff``, ``tolerance`` and ``passed`` (bit-equal or
        ``max_abs_diff`` ≤ tolerance), ``batch``, ``steps``.
    """
    import torch

    from synthsep_lib.vocoder.wavenet import WaveNet, WaveNetConfig

    if torch.device(device).type != "cuda" or not torch.cuda.is_available():
        raise Skip(NEEDS_GPU)
    torch.manual_seed(seed)
    model = WaveNet(config or WaveNetConfig.paper()).to(device).eval()
    frames = -(-steps // model.hop_size)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    c = torch.rand(batch, model.config.cin_channels, frames, generator=gen).to(device)
    outs = []
    for cuda_graph in (False, True):
        sampler = torch.Generator(device=device).manual_seed(seed)
        outs.append(model.generate(c, generator=sampler, cuda_graph=cuda_graph).cpu())
    plain, graphed = outs
    diff = float((plain - graphed).abs().max())
    bit_equal = bool(torch.equal(plain, graphed))
    return {
        "batch": batch,
        "steps": frames * model.hop_size,
        "bit_equal": bit_equal,
        "max_abs_diff": diff,
        "tolerance": EQUALITY_TOLERANCE,
        "passed": bit_equal or diff <= EQUALITY_TOLERANCE,
    }


def cuda_graph_equality(settings: dict) -> dict:
    from synthsep_lib.vocoder.wavenet import WaveNetConfig

    config = WaveNetConfig.small() if settings["quick"] else WaveNetConfig.paper()
    result = check_cuda_graph_equality(config, steps=settings["equality_steps"])
    if not result["passed"]:
        raise AssertionError(
            f"CUDA graph output differs from the plain path: max |diff| "
            f"{result['max_abs_diff']:.3g} > {EQUALITY_TOLERANCE}"
        )
    return {"rows": [result]}


def parallel_vocoder(settings: dict) -> dict:
    """:func:`measure_synthesis_speed` of the parallel vocoder per batch size."""
    import torch

    from synthsep_lib.config import load_profile
    from synthsep_lib.pipeline.parallel_vocoder_training import parallel_vocoder_config
    from synthsep_lib.vocoder.parallel import ParallelVocoder, measure_synthesis_speed

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    profile = load_profile(settings["parallel_profile"])
    model = ParallelVocoder(parallel_vocoder_config(profile), profile.features).to(device).eval()
    sample_rate = profile.features.sample_rate
    rows = []
    for batch in settings["parallel_batches"]:
        row = {"batch": batch}
        row |= measure_synthesis_speed(
            model, settings["parallel_seconds"], sample_rate, batch, settings["parallel_repeats"]
        )
        row["projected_hours_100_files"] = _projected_hours(row["samples_per_second"], sample_rate)
        rows.append(row)
    parameters = sum(p.numel() for p in model.parameters())
    return {
        "device": device,
        "profile": settings["parallel_profile"],
        "parameters": parameters,
        "rows": rows,
    }


def separation(settings: dict, method: str) -> dict:
    """Seconds per test mixture of one trained separator from the run folder."""
    import torch

    from synthsep_lib import audio
    from synthsep_lib.pipeline.runs import RunPaths
    from synthsep_lib.pipeline.separators import ModelsMissingError, load_separator

    if method == "proposed" and not torch.cuda.is_available():
        raise Skip(f"{NEEDS_GPU} (the WaveNet takes hours per mixture on a CPU)")
    paths = RunPaths(settings["run_root"], settings["profile"])
    if not paths.root.is_dir():
        raise Skip(f"no run folder {paths.root}")
    mixtures = sorted(paths.test_audio.glob("*_mixture.wav"))[: settings["mixtures"]]
    if not mixtures:
        raise Skip(f"no test mixtures in {paths.test_audio} (run Chapter 1)")
    started = time.perf_counter()
    try:
        separator = load_separator(method, paths)
    except ModelsMissingError as error:
        raise Skip(f"models missing: {error}") from None
    load_seconds = time.perf_counter() - started
    rows = []
    for path in mixtures:
        wave = audio.load_wav(path, separator.sample_rate)
        start = time.perf_counter()
        separator(wave)
        seconds = time.perf_counter() - start
        audio_seconds = len(wave) / separator.sample_rate
        rows.append(
            {
                "mixture": path.name,
                "audio_seconds": audio_seconds,
                "seconds": seconds,
                "real_time_factor": seconds / audio_seconds,
            }
        )
        if time.perf_counter() - started > settings["separation_budget"]:
            break  # enough for a rate; keep the whole check within its minutes
    from synthsep_lib.evaluation import paper_numbers

    rtf = sum(r["seconds"] for r in rows) / sum(r["audio_seconds"] for r in rows)
    hours = rtf * paper_numbers.TEST_FILES * paper_numbers.LJ_MEAN_SECONDS / 3600
    return {
        "method": method,
        "run": str(paths.root),
        "load_seconds": load_seconds,
        "rows": rows,
        "real_time_factor": rtf,
        "projected_hours_100_files": hours,
    }


# --- running and reporting -------------------------------------------------------------


def _settings(args: argparse.Namespace, gpu: bool) -> dict:
    """Sizes of every part: full on a GPU, reduced on a CPU, seconds with ``--quick``."""
    if args.quick:
        sizes = {
            "encoder_profile": "reduced",
            "encoder_steps": 1,
            "wavenet_batches": [1, 8],
            "wavenet_steps": 256,
            "equality_steps": 256,
            "parallel_profile": "reduced",
            "parallel_seconds": 0.25,
            "parallel_batches": [1, 8],
            "parallel_repeats": 1,
            "mixtures": 1,
        }
    elif gpu:
        sizes = {
            "encoder_profile": "paper",
            "encoder_steps": 5,
            "wavenet_batches": [1, 8, 32],
            "wavenet_steps": 4096,
            "equality_steps": 1024,
            "parallel_profile": "paper",
            "parallel_seconds": 10.0,
            "parallel_batches": [1, 8, 32],
            "parallel_repeats": 5,
            "mixtures": 3,
        }
    else:
        sizes = {
            "encoder_profile": "paper",
            "encoder_steps": 1,
            "wavenet_batches": [1, 8],
            "wavenet_steps": 256,
            "equality_steps": 512,
            "parallel_profile": "paper",
            "parallel_seconds": 1.0,
            "parallel_batches": [1, 8],
            "parallel_repeats": 3,
            "mixtures": 3,
        }
    return {
        **sizes,
        "quick": args.quick,
        "run_root": str(Path(args.run_root).resolve()),
        "profile": args.profile,
        "separation_budget": args.separation_budget,
    }


def _run_part(name: str, fn, settings: dict) -> dict:
    """Run one part; its status is ok, skipped: reason or failed: message."""
    print(f"# {name} ...", flush=True)
    started = time.perf_counter()
    try:
        result = {"status": "ok", **fn(settings)}
    except Skip as reason:
        result = {"status": f"skipped: {reason}"}
    except Exception as error:  # noqa: BLE001 - one part's failure must not stop the rest
        traceback.print_exc()
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        result = {"status": f"failed: {type(error).__name__}: {message}"}
    result["wall_seconds"] = time.perf_counter() - started
    print(f"  {name}: {result['status']} ({result['wall_seconds']:.1f} s)", flush=True)
    return result


def _table(parts: dict) -> list[str]:
    """Markdown table: one line per measured row, one per part that did not run."""
    lines = [
        "| part | run | seconds | samples/s | RTF | projected h (100 files) |",
        "|---|---|---|---|---|---|",
    ]

    def num(x, fmt):
        return format(x, fmt) if x is not None else ""

    for name, part in parts.items():
        if part["status"] != "ok":
            lines.append(f"| {name} | {part['status']} | | | | |")
            continue
        for r in part["rows"]:
            if name == "encoder_step":
                run = f"{r['variant']}, batch {r['batch']}, {part['device']}"
                cells = (r["seconds_per_step"], None, None, r["projected_training_hours"])
                run += " (s per step; h: its training schedule)"
            elif name == "cuda_graph_equality":
                verdict = "bit-equal" if r["bit_equal"] else f"max |diff| {r['max_abs_diff']:.3g}"
                lines.append(
                    f"| {name} | batch {r['batch']}, {r['steps']} samples: {verdict} | | | | |"
                )
                continue
            elif name.startswith("separation"):
                run = f"{part['method']}, {r['mixture']} ({r['audio_seconds']:.1f} s)"
                cells = (r["seconds"], None, r["real_time_factor"], None)
            else:
                sps = r["samples_per_second"]
                run = f"batch {r['batch']}, {part['device']}"
                cells = (r["seconds"], sps, 22_050 / sps, r["projected_hours_100_files"])
            seconds, sps, rtf, hours = cells
            lines.append(
                f"| {name} | {run} | {num(seconds, '.3g')} | {num(sps, ',.0f')} | "
                f"{num(rtf, '.3g')} | {num(hours, '.3g')} |"
            )
        if name.startswith("separation"):
            lines.append(
                f"| {name} | all mixtures | | | {part['real_time_factor']:.3g} | "
                f"{part['projected_hours_100_files']:.3g} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every part in seconds (the test)")
    parser.add_argument("--run-root", default=str(ROOT / "runs"), help="folder of run folders")
    parser.add_argument("--profile", default="reduced", help="run folder <run-root>/<profile>")
    parser.add_argument(
        "--separation-budget",
        type=float,
        default=150.0,
        help="seconds per separation part after which no further mixture is started",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON of every number")
    args = parser.parse_args(argv)

    import torch

    sys.path.insert(0, str(ROOT))  # the library, when run from a checkout without install
    from synthsep_lib.files import write_json_atomic

    gpu = torch.cuda.is_available()
    settings = _settings(args, gpu)
    device_name = torch.cuda.get_device_name(0) if gpu else "none"
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), GPU: {device_name}"
    )
    started = time.perf_counter()
    functions = {
        "encoder_step": encoder_step,
        "wavenet_plain": lambda s: wavenet_generation(s, cuda_graph=False),
        "wavenet_cuda_graph": lambda s: wavenet_generation(s, cuda_graph=True),
        "cuda_graph_equality": cuda_graph_equality,
        "parallel_vocoder": parallel_vocoder,
        "separation_proposed": lambda s: separation(s, "proposed"),
        "separation_parallel_ft": lambda s: separation(s, "proposed-parallel-ft"),
    }
    parts = {name: _run_part(name, functions[name], settings) for name in PARTS}
    total = time.perf_counter() - started

    print()
    print("\n".join(_table(parts)))
    print(f"# total {total:.0f} s")
    report = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch": str(torch.__version__),
            "torch_threads": torch.get_num_threads(),
            "cuda": gpu,
            "gpu": device_name,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": settings,
        "parts": parts,
        "total_seconds": total,
    }
    write_json_atomic(args.out, report)
    print(f"# wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
