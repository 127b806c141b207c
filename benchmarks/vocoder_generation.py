"""WaveNet generation speed at the paper's configuration, beside r9y9's reference.

The paper's model (24 layers in 4 stacks, 512/512/256 channels, 30 mixture outputs,
24.7 M parameters) with random weights — trained weights run at the same speed. Each
row runs in a fresh process (so its peak memory is its own), with the same number of
torch threads:

* **reference, batch 1** — ``wavenet_vocoder==0.1.1``'s ``incremental_forward`` after
  ``make_generation_fast_()``, as r9y9's ``wavegen`` (it supports only one utterance);
* **ours, batch B** — :meth:`WaveNet.generate` for B utterances at once;
* **ours, folded** — one utterance of ``--fold-seconds`` cut into segments of
  ``--segment-frames`` (+ ``--overlap-frames``) generated side by side
  (:func:`~synthsep_lib.pipeline.vocoding.generate_utterances`); its samples/s count
  the utterance's samples only, so the overlap's extra work is charged.

Columns: samples/s (all rows), speed-up over the reference, peak resident memory of
the process (torch, the model and the run), and its growth over the process's memory
once the model is built.

Run: ``python benchmarks/vocoder_generation.py [--threads 2] [--steps 512]``.
Needs ``pip install --no-deps wavenet_vocoder==0.1.1`` (``make test`` installs it).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
import warnings

import numpy as np


def _rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(kind: str, batch: int, steps: int, threads: int, fold: dict) -> dict:
    import torch

    from synthsep_lib.pipeline.vocoding import generate_utterances, measure_generation_speed
    from synthsep_lib.vocoder.wavenet import WaveNet, WaveNetConfig, to_r9y9_state_dict

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig.paper()).eval()
    built = _rss_mib()
    if kind == "reference":
        import wavenet_vocoder as wv

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = model.config
            ref = wv.WaveNet(
                out_channels=cfg.out_channels,
                layers=cfg.layers,
                stacks=cfg.stacks,
                residual_channels=cfg.residual_channels,
                gate_channels=cfg.gate_channels,
                skip_out_channels=cfg.skip_out_channels,
                cin_channels=cfg.cin_channels,
                upsample_conditional_features=True,
                upsample_scales=cfg.upsample_scales,
                freq_axis_kernel_size=cfg.freq_axis_kernel_size,
                scalar_input=True,
                legacy=True,
            )
            ref.load_state_dict(to_r9y9_state_dict(model))
            ref.eval()
            ref.make_generation_fast_()
            del model
            frames = -(-steps // 256)
            c = torch.rand(1, cfg.cin_channels, frames)
            with torch.no_grad():  # warm-up, then the timed run
                ref.incremental_forward(c=c[:, :, :1], T=256, softmax=False, quantize=False)
                start = time.perf_counter()
                ref.incremental_forward(c=c, T=frames * 256, softmax=False, quantize=False)
                seconds = time.perf_counter() - start
        samples = frames * 256
    elif kind == "folded":
        rng = np.random.default_rng(0)
        frames = round(fold["seconds"] * 22050 / 256)
        mel = rng.random((frames, model.config.cin_channels), dtype=np.float32)
        generate_utterances(model, [mel[:2]], batch_size=1, progress=False)  # warm-up
        start = time.perf_counter()
        generate_utterances(
            model,
            [mel],
            batch_size=batch,
            fold_segment_frames=fold["segment_frames"],
            fold_overlap_frames=fold["overlap_frames"],
            progress=False,
        )
        seconds = time.perf_counter() - start
        samples = frames * 256
    else:
        result = measure_generation_speed(model, batch, steps)
        seconds, samples = result["seconds"], batch * result["steps"]
    return {
        "samples_per_second": samples / seconds,
        "seconds": seconds,
        "peak_mib": _rss_mib(),
        "growth_mib": _rss_mib() - built,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=512, help="generated steps per row")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--fold-seconds", type=float, default=2.0)
    parser.add_argument("--segment-frames", type=int, default=8)
    parser.add_argument("--overlap-frames", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: one row as JSON
    args = parser.parse_args()
    fold = {
        "seconds": args.fold_seconds,
        "segment_frames": args.segment_frames,
        "overlap_frames": args.overlap_frames,
    }
    if args.one:
        kind, batch = args.one.split(":")
        print(json.dumps(run_one(kind, int(batch), args.steps, args.threads, fold)))
        return

    from synthsep_lib.pipeline.vocoding import fold_segments

    n_frames = round(args.fold_seconds * 22050 / 256)
    n_segments = len(fold_segments(n_frames, args.segment_frames, args.overlap_frames))
    rows = [("reference", 1, "wavenet_vocoder 0.1.1, batch 1")]
    rows += [("ours", b, f"ours, batch {b}") for b in args.batches]
    rows += [
        (
            "folded",
            n_segments,
            f"ours, folded: 1 utterance of {args.fold_seconds:g} s in {n_segments} segments "
            f"of {args.segment_frames}+{args.overlap_frames} frames",
        )
    ]
    print(f"# {platform.processor() or platform.machine()}, torch threads = {args.threads}")
    results = []
    for kind, batch, label in rows:
        cmd = [sys.executable, __file__, "--one", f"{kind}:{batch}", "--steps", str(args.steps)]
        cmd += ["--threads", str(args.threads), "--fold-seconds", str(args.fold_seconds)]
        cmd += ["--segment-frames", str(args.segment_frames)]
        cmd += ["--overlap-frames", str(args.overlap_frames)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        results.append((label, r))
        print(f"  {label}: {r['samples_per_second']:.0f} samples/s", flush=True)
    ref = results[0][1]["samples_per_second"]
    print()
    print("| run | samples/s | × reference | peak memory (MiB) | growth (MiB) |")
    print("|---|---|---|---|---|")
    for label, r in results:
        print(
            f"| {label} | {r['samples_per_second']:.0f} | "
            f"{r['samples_per_second'] / ref:.1f} | {r['peak_mib']:.0f} | "
            f"{r['growth_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()
