"""Parallel vocoder speed on a CPU, beside the WaveNet's batched cached generation.

Both vocoders have random weights: trained weights run at the same speed. The
architectures are the profiles' (``paper`` and ``reduced``):
:func:`~synthsep_lib.pipeline.parallel_vocoder_training.parallel_vocoder_config` for the
parallel vocoder (Vocos' size unless ``parallel.model`` overrides it) and
:func:`~synthsep_lib.pipeline.vocoder_training.wavenet_config` for the WaveNet. Each row
runs in a fresh process with its own number of torch threads, so its peak memory is its
own:

* **parallel** — :class:`~synthsep_lib.vocoder.parallel.ParallelVocoder` on a random
  normalised mel of ``--seconds`` seconds, one utterance and a batch of ``--batch``
  utterances, under ``torch.inference_mode``: one warm-up pass, then the median of
  ``--repeats`` timed passes;
* **wavenet** — :func:`~synthsep_lib.vocoder.generation.measure_generation_speed`
  (cached generation after a one-frame warm-up, one timed run) of ``--wavenet-steps``
  samples per row, batch 1 and ``--batch``; slow on a CPU, hence few samples and only
  ``--wavenet-threads``.

Columns: samples/s (all utterances of the batch together, from the median time),
real-time factor (seconds of compute per second of audio made, = 22 050 / samples/s:
below 1 is faster than real time), that of the best repeat (the least disturbed by other
load), median seconds per call, peak resident memory of the process (torch, the model
and the run) and its growth over the process's memory once the model and its input exist.

Targets, for the paper-size parallel vocoder on 2 threads (one utterance and the
batch): real-time factor ≤ 0.01, and at least 10 000 × the paper WaveNet's batch-1
samples/s on 2 threads. On a machine shared with other work the times are noisy (two
threads on two busy cores can be much slower than one: every operation waits for the
slower thread, and the WaveNet runs thousands of small ones per second of audio); the
load average before and after is printed and stored.

Run: ``python benchmarks/parallel_vocoder.py [--quick] [--out PATH]``; writes every number
to ``benchmarks/results/parallel_vocoder.json`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "parallel_vocoder.json"
PROFILES = ("paper", "reduced")
TARGET_RTF = 0.01
TARGET_RATIO = 10_000


def _rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_parallel(profile_name: str, threads: int, batch: int, seconds: float, repeats: int):
    """One parallel-vocoder row: median seconds per pass of ``batch`` utterances."""
    import torch

    from synthsep_lib.config import load_profile
    from synthsep_lib.pipeline.parallel_vocoder_training import parallel_vocoder_config
    from synthsep_lib.vocoder.parallel import ParallelVocoder

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    profile = load_profile(profile_name)
    config = parallel_vocoder_config(profile)
    model = ParallelVocoder(config, profile.features).eval()
    frames = round(seconds * profile.features.sample_rate / config.hop_size)
    mel = torch.rand(batch, config.num_mels, frames)  # normalised mel lies in [0, 1]
    built = _rss_mib()
    times = []
    with torch.inference_mode():
        model(mel)  # warm-up: first-call allocations and kernel choices
        for _ in range(repeats):
            start = time.perf_counter()
            model(mel)
            times.append(time.perf_counter() - start)
    return {
        "config": config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "samples": batch * frames * config.hop_size,
        "seconds_per_call": statistics.median(times),
        "seconds_all": times,
        "peak_mib": _rss_mib(),
        "growth_mib": _rss_mib() - built,
    }


def run_wavenet(profile_name: str, threads: int, batch: int, steps: int):
    """One WaveNet row: one timed cached generation of ``steps`` samples per utterance."""
    import torch

    from synthsep_lib.config import load_profile
    from synthsep_lib.pipeline.vocoder_training import wavenet_config
    from synthsep_lib.vocoder.generation import measure_generation_speed
    from synthsep_lib.vocoder.wavenet import WaveNet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = WaveNet(wavenet_config(load_profile(profile_name))).eval()
    built = _rss_mib()
    result = measure_generation_speed(model, batch, steps)
    return {
        "config": model.config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "samples": batch * result["steps"],
        "seconds_per_call": result["seconds"],
        "seconds_all": [result["seconds"]],
        "peak_mib": _rss_mib(),
        "growth_mib": _rss_mib() - built,
    }


def _child(spec: str, args: argparse.Namespace) -> dict:
    """Run one row given as ``kind:profile:threads:batch`` in this process."""
    kind, profile_name, threads, batch = spec.split(":")
    if kind == "parallel":
        return run_parallel(profile_name, int(threads), int(batch), args.seconds, args.repeats)
    return run_wavenet(profile_name, int(threads), int(batch), args.wavenet_steps)


def _target_checks(rows: list[dict]) -> list[dict]:
    """The targets against the paper-size rows on 2 threads (missing rows: no check)."""

    def find(kind, batch):
        return next(
            (
                r
                for r in rows
                if (r["vocoder"], r["profile"], r["threads"], r["batch"])
                == (kind, "paper", 2, batch)
            ),
            None,
        )

    wavenet = find("wavenet", 1)
    checks = []
    for batch in sorted({r["batch"] for r in rows if r["vocoder"] == "parallel"}):
        parallel = find("parallel", batch)
        if parallel is None:
            continue
        checks.append(
            {
                "check": f"paper parallel RTF, batch {batch}, 2 threads",
                "value": parallel["rtf"],
                "target": f"<= {TARGET_RTF}",
                "passed": parallel["rtf"] <= TARGET_RTF,
            }
        )
        if wavenet is not None:
            ratio = parallel["samples_per_second"] / wavenet["samples_per_second"]
            checks.append(
                {
                    "check": f"paper parallel batch {batch} ÷ WaveNet batch 1 samples/s, 2 threads",
                    "value": ratio,
                    "target": f">= {TARGET_RATIO}",
                    "passed": ratio >= TARGET_RATIO,
                }
            )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s, 2 repeats, 256 steps")
    parser.add_argument("--seconds", type=float, help="audio per utterance (5; quick 1)")
    parser.add_argument("--batch", type=int, default=8, help="utterances of the batched rows")
    parser.add_argument("--repeats", type=int, help="timed parallel passes, median (5; quick 2)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--wavenet-steps", type=int, help="samples per utterance (1024; quick 256)")
    parser.add_argument("--wavenet-threads", type=int, nargs="+", default=[2])
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON of every number")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: one row as JSON
    args = parser.parse_args()
    # --quick changes only the defaults: explicit values still win
    for name, full, quick in (
        ("seconds", 5.0, 1.0),
        ("repeats", 5, 2),
        ("wavenet_steps", 1024, 256),
    ):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.one:
        print(json.dumps(_child(args.one, args)))
        return

    import torch

    from synthsep_lib.config import load_profile

    sample_rate = load_profile("paper").features.sample_rate
    specs = [
        ("parallel", name, threads, batch)
        for name in PROFILES
        for threads in args.threads
        for batch in (1, args.batch)
    ]
    specs += [
        ("wavenet", name, threads, batch)
        for name in PROFILES
        for threads in args.wavenet_threads
        for batch in (1, args.batch)
    ]
    load_before = _load_average()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}; load average {load_before}"
    )
    print(
        f"# parallel: {args.seconds:g} s per utterance, median of {args.repeats}; "
        f"WaveNet: {args.wavenet_steps} samples per utterance, one run"
    )
    rows = []
    for kind, name, threads, batch in specs:
        cmd = [sys.executable, __file__, "--one", f"{kind}:{name}:{threads}:{batch}"]
        cmd += ["--seconds", str(args.seconds), "--repeats", str(args.repeats)]
        cmd += ["--wavenet-steps", str(args.wavenet_steps)]
        started = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        wall = time.perf_counter() - started
        result = json.loads(out.strip().splitlines()[-1])
        samples_per_second = result["samples"] / result["seconds_per_call"]
        row = {"vocoder": kind, "profile": name, "threads": threads, "batch": batch, **result}
        row["samples_per_second"] = samples_per_second
        row["rtf"] = sample_rate / samples_per_second
        row["best_rtf"] = sample_rate * min(result["seconds_all"]) / result["samples"]
        rows.append(row)
        print(
            f"  {kind} {name}, threads {threads}, batch {batch}: "
            f"{samples_per_second:,.0f} samples/s ({wall:.0f} s with start-up)",
            flush=True,
        )
    load_after = _load_average()

    print()
    print(
        "| vocoder | profile | parameters | threads | batch | samples/s | RTF | best RTF | "
        "s per call | peak memory (MiB) | growth (MiB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['vocoder']} | {r['profile']} | {r['parameters'] / 1e6:.1f} M | "
            f"{r['threads']} | {r['batch']} | {r['samples_per_second']:,.0f} | "
            f"{r['rtf']:.3g} | {r['best_rtf']:.3g} | {r['seconds_per_call']:.3g} | {r['peak_mib']:.0f} | "
            f"{r['growth_mib']:.0f} |"
        )
    checks = _target_checks(rows)
    print()
    for c in checks:
        verdict = "PASS" if c["passed"] else "FAIL"
        value = f"{c['value']:.4f}" if c["value"] < 1 else f"{c['value']:,.0f}"
        print(f"{c['check']}: {value} (target {c['target']}): {verdict}")
    print(f"# load average after: {load_after}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch": str(torch.__version__),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "settings": {
            "quick": args.quick,
            "seconds": args.seconds,
            "batch": args.batch,
            "repeats": args.repeats,
            "threads": args.threads,
            "wavenet_steps": args.wavenet_steps,
            "wavenet_threads": args.wavenet_threads,
            "sample_rate": sample_rate,
        },
        "rows": rows,
        "targets": checks,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"# wrote {args.out}")


if __name__ == "__main__":
    main()
