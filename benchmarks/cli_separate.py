"""Speed and memory of ``synthsep separate``, the whole command in a fresh process.

Inputs, built from a run folder's test mixtures (``<run-root>/<profile>/data/test/
*_mixture.wav``, 22 050 Hz): their concatenation cut to ``--seconds`` (30 s), and that
repeated to ``--long-seconds`` (10 min), written block by block as float WAVs.

* **speed**: each method whose models the run folder holds separates the short input
  (``python -m synthsep_lib separate IN --out DIR --method M``). Columns: the separation's
  seconds and real-time factor as the command reports them (decoding, resampling, the
  models, writing; seconds of compute per second of audio: below 1 is faster than real
  time), the wall-clock time of the whole command (Python and TensorFlow start-up and
  model loading included) and its peak resident memory.
* **memory**: the default method on the short and the long input: peak resident memory
  of the command, which streams the file in chunks and so should not grow with it.

Peak memory is ``/usr/bin/time -v``'s maximum resident set size of the command; without
``/usr/bin/time``, the command runs as ``cli.main`` in a child process that reports its
own VmHWM (Linux). Everything runs on the CPU threads TensorFlow and PyTorch choose; on a
shared machine the times are noisy, so the load average before and after is printed.

Run: ``python benchmarks/cli_separate.py [--run-root runs] [--profile reduced]
[--methods M ...] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
TIME = shutil.which("time") if Path("/usr/bin/time").exists() else None
SUMMARY = re.compile(r"in ([\d.]+) s, real-time factor ([\d.]+)\)")

# Fallback without /usr/bin/time: the command in-process, reporting its own peak memory.
CHILD = """
import sys
from synthsep_lib.cli import main
status = main(sys.argv[1:])
with open("/proc/self/status") as f:
    kib = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
print(f"VmHWM {kib}", file=sys.stderr)
sys.exit(status)
"""


def build_inputs(run_root: Path, profile: str, folder: Path, seconds: float, long: float):
    """The short input (test mixtures concatenated, cut) and the long one (it repeated)."""
    mixtures = sorted((run_root / profile / "data" / "test").glob("*_mixture.wav"))
    if not mixtures:
        sys.exit(f"no test mixtures in {run_root / profile / 'data' / 'test'}: run Chapter 1")
    waves, rates = zip(*(sf.read(p, dtype="float32") for p in mixtures), strict=True)
    rate = rates[0]
    joined = np.concatenate(waves)
    n = round(seconds * rate)
    joined = np.tile(joined, -(-n // joined.shape[0]))[:n]
    short, longer = folder / f"mixtures_{seconds:g}s.wav", folder / f"mixtures_{long:g}s.wav"
    sf.write(short, joined, rate, subtype="FLOAT")
    with sf.SoundFile(longer, "w", rate, 1, subtype="FLOAT") as handle:
        for _ in range(round(long / seconds)):
            handle.write(joined)
    return short, longer


def run_cli(args: list[str]) -> dict:
    """Run ``synthsep ARGS``; its wall time, peak memory and the separation it reports."""
    if TIME:
        command = [TIME, "-v", sys.executable, "-m", "synthsep_lib", *args]
    else:
        command = [sys.executable, "-c", CHILD, *args]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"synthsep {' '.join(args)} failed:\n{done.stderr}")
    if TIME:
        kib = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)
    else:
        kib = re.search(r"VmHWM (\d+)", done.stderr).group(1)
    seconds, rtf = SUMMARY.search(done.stderr).groups()
    method = re.search(r"synthsep: method (\S+):", done.stderr).group(1)
    return {
        "method": method,
        "separation_s": float(seconds),
        "real_time_factor": float(rtf),
        "wall_s": wall,
        "peak_rss_mib": int(kib) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-root", default=str(ROOT / "runs"))
    parser.add_argument("--profile", default="reduced")
    parser.add_argument("--methods", nargs="+", help="default: all those available")
    parser.add_argument("--seconds", type=float, default=30.0, help="short input (s)")
    parser.add_argument("--long-seconds", type=float, default=600.0, help="long input (s)")
    parser.add_argument("--out", help="also write the numbers to this JSON file")
    args = parser.parse_args()

    from synthsep_lib.pipeline.runs import RunPaths
    from synthsep_lib.pipeline.separators import available_methods

    run_root = Path(args.run_root).resolve()
    methods = args.methods or available_methods(RunPaths(run_root, args.profile))
    load_before = os.getloadavg()
    speed, memory = [], []
    with tempfile.TemporaryDirectory(prefix="cli_separate_") as tmp:
        folder = Path(tmp)
        short, longer = build_inputs(
            run_root, args.profile, folder, args.seconds, args.long_seconds
        )
        common = ["--out", str(folder / "out"), "--run-root", str(run_root)]
        common += ["--profile", args.profile]
        for method in methods:
            row = run_cli(["separate", str(short), *common, "--method", method])
            speed.append(row)
            print(f"  {method}: {row}", file=sys.stderr, flush=True)
        for path, seconds in ((short, args.seconds), (longer, args.long_seconds)):
            row = run_cli(["separate", str(path), *common])
            memory.append({"input_s": seconds, **row})
            print(f"  default, {seconds:g} s: {row}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    print(f"\nsynthsep separate, profile {args.profile}, {platform.processor() or 'cpu'}, ", end="")
    print(f"{os.cpu_count()} cores; load average {load_before[0]:.2f} before, ", end="")
    print(f"{load_after[0]:.2f} after; memory by {'/usr/bin/time -v' if TIME else 'VmHWM'}\n")
    print(f"speed on a {args.seconds:g}-s input:\n")
    print("| method | separation (s) | real-time factor | whole command (s) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for row in speed:
        print(
            f"| {row['method']} | {row['separation_s']:.1f} | {row['real_time_factor']:.3f} "
            f"| {row['wall_s']:.1f} | {row['peak_rss_mib']:.0f} |"
        )
    print("\nmemory with the default method:\n")
    print("| input | method | separation (s) | real-time factor | peak RSS (MiB) |")
    print("|---|---|---:|---:|---:|")
    for row in memory:
        print(
            f"| {row['input_s']:g} s | {row['method']} | {row['separation_s']:.1f} "
            f"| {row['real_time_factor']:.3f} | {row['peak_rss_mib']:.0f} |"
        )
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {"speed": speed, "memory": memory, "load": [load_before, load_after]}, indent=2
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
