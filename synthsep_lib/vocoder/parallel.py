"""A parallel vocoder: every sample of an utterance at once, from the same 80-band mel.

The WaveNet generates one sample after another (22 050 network evaluations per second of
speech). This generator works at the frame rate instead, in the style of Vocos
(Siuzdak, 2024): a stack of ConvNeXt blocks (Liu et al., 2022) turns each
mel frame into the magnitude and the phase of one STFT frame, and an inverse STFT lays
the frames out as a waveform. All frames go through the network together, so an
utterance costs one pass of a small convolutional network.

One addition to Vocos, after FreeV (Lv et al., 2024): the mel already says roughly
what the magnitude is. :class:`MagnitudePrior` undoes the mel filter bank with its
pseudo-inverse, and the network predicts only a correction to that log-magnitude (and
the phase), so it starts from a sensible spectrum instead of learning it from nothing.

The framing is the book's: frame m of the input mel (made by
:func:`synthsep_lib.audio.target_mel`) analyses samples ``[256 m, 256 m + 1024)`` of the
signal, and the inverse STFT puts its synthesis window on the same samples, so the
output has ``256 · frames`` samples laid out exactly like the source (no shift, unlike
the WaveNet's one-sample lag).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthsep_lib import audio
from synthsep_lib.config import FeatureConfig

__all__ = [
    "ParallelVocoderConfig",
    "ConvNeXtBlock",
    "MagnitudePrior",
    "ENVELOPE_FLOOR",
    "overlap_add_istft",
    "ISTFTHead",
    "ParallelVocoder",
    "UpsamplingGenerator",
    "measure_synthesis_speed",
]


@dataclass(frozen=True)
class ParallelVocoderConfig:
    """The generator's architecture.

    Attributes
    ----------
    num_mels : int
        Mel bands of the input (80, the book's features).
    dim : int
        Channels of the ConvNeXt stack.
    intermediate_dim : int
        Channels inside each block's pointwise layers (3 × ``dim`` in Vocos).
    num_blocks : int
        ConvNeXt blocks.
    kernel_size : int
        Width in frames of each block's depthwise convolution.
    fft_size, hop_size : int
        STFT of the output: 1024 and 256, the features' (so frames line up).
    magnitude_prior : bool
        Predict the log-magnitude as a correction of :class:`MagnitudePrior`'s.
    """

    num_mels: int = 80
    dim: int = 512
    intermediate_dim: int = 1536
    num_blocks: int = 8
    kernel_size: int = 7
    fft_size: int = 1024
    hop_size: int = 256
    magnitude_prior: bool = True

    def __post_init__(self):
        for name in ("num_mels", "dim", "intermediate_dim", "num_blocks", "fft_size", "hop_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"parallel vocoder {name} must be >= 1; got {getattr(self, name)}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1; got {self.kernel_size}")
        if self.fft_size % self.hop_size:
            raise ValueError(
                f"fft_size {self.fft_size} must be a multiple of hop_size {self.hop_size}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ParallelVocoderConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown parallel vocoder setting(s) {unknown}; expected {sorted(known)}"
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConvNeXtBlock(nn.Module):
    """One ConvNeXt block over frames: (B, dim, T) → (B, dim, T).

    A depthwise convolution mixes neighbouring frames of each channel, then two
    pointwise layers (dim → intermediate → dim, GELU) mix channels within a frame; the
    result, scaled by a learnt per-channel factor that starts small, is added to the input.
    """

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.expand = nn.Linear(dim, intermediate_dim)
        self.contract = nn.Linear(intermediate_dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(x).transpose(1, 2)  # (B, T, dim): the norm and linears act per frame
        y = self.contract(F.gelu(self.expand(self.norm(y))))
        return x + (self.scale * y).transpose(1, 2)


#: Floor of the summed squared windows in :func:`overlap_add_istft` (1.5 where all four
#: overlapping Hann windows meet): exact reconstruction from sample 195 on (of 1024/256).
ENVELOPE_FLOOR = 0.1


def overlap_add_istft(spectrum: torch.Tensor, fft_size: int, hop_size: int) -> torch.Tensor:
    """Inverse STFT whose frame m covers samples ``[hop · m, hop · m + fft_size)``.

    Each frame is inverse-FFT'd, windowed with a periodic Hann window and added at its
    place; the sum is divided by the summed squared windows, so that the STFT of a
    signal made with the same window and framing comes back exactly. The first
    ``fft_size − hop_size`` samples are covered by fewer frames (sample 0 by frame 0's
    zero only): there the divisor is floored at :data:`ENVELOPE_FLOOR`, so a spectrum
    that is not an exact STFT cannot blow up into a click. The result is cut to
    ``hop · T`` samples: the part of the last frames that reaches beyond them belongs to
    no frame of the input.

    Parameters
    ----------
    spectrum : torch.Tensor, complex, shape (B, fft_size // 2 + 1, T)
    fft_size, hop_size : int

    Returns
    -------
    torch.Tensor, float, shape (B, hop_size · T)
    """
    frames = spectrum.shape[-1]
    window = torch.hann_window(fft_size, device=spectrum.device, dtype=spectrum.real.dtype)
    pieces = torch.fft.irfft(spectrum, n=fft_size, dim=1) * window[None, :, None]
    length = (frames - 1) * hop_size + fft_size
    fold = dict(output_size=(1, length), kernel_size=(1, fft_size), stride=(1, hop_size))
    signal = F.fold(pieces, **fold)[:, 0, 0]
    envelope = F.fold(window.square()[None, :, None].expand(1, -1, frames), **fold)[0, 0, 0]
    signal = signal / envelope.clamp(min=ENVELOPE_FLOOR)
    return signal[:, : frames * hop_size]


class MagnitudePrior(nn.Module):
    """Normalised mel → a first guess of the log linear magnitude: (B, 80, T) → (B, F, T).

    The mel is denormalised to amplitudes (:func:`synthsep_lib.audio.denormalise_mel`'s
    formula) and multiplied by the pseudo-inverse of the mel filter bank, F =
    ``fft_size/2 + 1`` bins; the log is floored at 1e-5.
    """

    def __init__(self, features: FeatureConfig):
        super().__init__()
        basis = torch.tensor(np.array(audio.mel_basis(features)), dtype=torch.float64)
        self.register_buffer("inverse_basis", torch.linalg.pinv(basis).float())
        self.min_level_db = float(features.min_level_db)
        self.ref_level_db = float(features.ref_level_db)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        db = mel.clamp(0, 1) * -self.min_level_db + self.min_level_db + self.ref_level_db
        linear = torch.matmul(self.inverse_basis, torch.pow(10.0, db / 20))
        return torch.log(linear.clamp(min=1e-5))


class ISTFTHead(nn.Module):
    """Frame features → STFT magnitude and phase → waveform: (B, dim, T) → (B, 256 · T).

    A linear layer gives, per frame, ``fft_size/2 + 1`` log-magnitudes (added to a
    prior's, if given) and as many phases. The magnitude is ``exp`` of the first (capped
    at 100, so an early step cannot overflow), the phase is used as an angle, and
    :func:`overlap_add_istft` makes the waveform.
    """

    def __init__(self, dim: int, fft_size: int, hop_size: int):
        super().__init__()
        self.fft_size, self.hop_size = int(fft_size), int(hop_size)
        self.out = nn.Linear(dim, fft_size + 2)

    def spectrum(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted complex STFT, (B, fft_size/2 + 1, T)."""
        log_magnitude, phase = self.out(x.transpose(1, 2)).transpose(1, 2).chunk(2, dim=1)
        if prior is not None:
            log_magnitude = log_magnitude + prior
        magnitude = torch.exp(log_magnitude).clamp(max=1e2)
        return torch.polar(magnitude, phase)

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        return overlap_add_istft(self.spectrum(x, prior), self.fft_size, self.hop_size)


class ParallelVocoder(nn.Module):
    """Mel → waveform in one pass: (B, num_mels, T) normalised mel → (B, hop · T) samples.

    ``embed`` (a width-7 convolution) lifts the 80 bands to ``dim`` channels, the
    ConvNeXt blocks give each frame a view of its neighbours (receptive field
    ``1 + (kernel − 1) · (blocks + 1)`` frames), and :class:`ISTFTHead` makes the
    samples, starting from :class:`MagnitudePrior`'s magnitude if the config asks.
    Output sample t lines up with sample t of the signal whose mel came in.

    Parameters
    ----------
    config : ParallelVocoderConfig
    features : FeatureConfig
        The features of the mel it is fed (the prior needs their filter bank and levels).
    """

    def __init__(self, config: ParallelVocoderConfig, features: FeatureConfig):
        super().__init__()
        if (features.num_mels, features.fft_size) != (config.num_mels, config.fft_size):
            raise ValueError(
                f"the parallel vocoder has {config.num_mels} mel bands and FFT size "
                f"{config.fft_size}, its features {features.num_mels} and {features.fft_size}"
            )
        self.config = config
        dim = config.dim
        self.embed = nn.Conv1d(config.num_mels, dim, 7, padding=3)
        self.embed_norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(dim, config.intermediate_dim, config.kernel_size, 1.0 / config.num_blocks)
            for _ in range(config.num_blocks)
        )
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = ISTFTHead(dim, config.fft_size, config.hop_size)
        self.prior = MagnitudePrior(features) if config.magnitude_prior else None
        self.apply(_init_weights)

    @property
    def hop_size(self) -> int:
        return self.config.hop_size

    @property
    def num_mels(self) -> int:
        return self.config.num_mels

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """The ConvNeXt stack's output, (B, dim, T)."""
        x = self.embed_norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x.transpose(1, 2)).transpose(1, 2)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        prior = self.prior(mel) if self.prior is not None else None
        return self.head(self.features(mel), prior)

    def synthesize(self, mel: np.ndarray, length: int) -> np.ndarray:
        """One utterance: a (T, num_mels) normalised mel → ``length`` samples, float32.

        One pass in inference mode on the model's device; the waveform is cut, or
        zero-padded where the frames end early, to ``length`` (e.g. the source's).
        """
        device = next(self.parameters()).device
        with torch.inference_mode():
            wave = self(torch.from_numpy(np.ascontiguousarray(mel.T[None])).to(device))
        wave = wave[0].cpu().numpy()
        out = np.zeros(int(length), np.float32)
        n = min(int(length), wave.shape[0])
        out[:n] = wave[:n]
        return out


class UpsamplingGenerator(nn.Module):
    """The other family, for comparison: a HiFi-GAN-style upsampler (Kong et al., 2020).

    Mel (B, num_mels, T) → waveform (B, hop · T) by transposed convolutions that
    stretch the frames to the sample rate step by step (× 8, 8, 2, 2 = 256), each
    followed by a residual block of dilated convolutions (dilations 1, 3, 5) at the new
    rate. HiFi-GAN V2's sizes (128 channels at the frame rate, halved at every step),
    simplified to one residual block per step. Every layer after the last stretch runs
    22 050 times per second of audio — what makes this family slow on a CPU; the book
    uses it only to measure that (Chapter 7).
    """

    def __init__(self, num_mels: int = 80, channels: int = 128, rates=(8, 8, 2, 2)):
        super().__init__()
        self.hop_size, self.num_mels = int(np.prod(rates)), int(num_mels)
        self.pre = nn.Conv1d(num_mels, channels, 7, padding=3)
        self.stretch = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for r in rates:
            self.stretch.append(
                nn.ConvTranspose1d(channels, channels // 2, 2 * r, stride=r, padding=r // 2)
            )
            channels //= 2
            self.blocks.append(
                nn.ModuleList(
                    nn.Conv1d(channels, channels, 3, dilation=d, padding=d) for d in (1, 3, 5)
                )
            )
        self.post = nn.Conv1d(channels, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.pre(mel)
        for stretch, block in zip(self.stretch, self.blocks, strict=True):
            x = stretch(F.leaky_relu(x, 0.1))
            for conv in block:
                x = x + conv(F.leaky_relu(x, 0.1))
        return torch.tanh(self.post(F.leaky_relu(x, 0.1)))[:, 0]


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


def measure_synthesis_speed(
    model: nn.Module,
    seconds: float,
    sample_rate: int,
    batch_size: int = 1,
    repeats: int = 3,
) -> dict[str, float]:
    """Samples per second of one pass over ``batch_size`` random mels of ``seconds`` each
    (at ``sample_rate`` Hz).

    Random input runs exactly as fast as a real mel. One warm-up pass, then the median
    of ``repeats`` timed passes (``torch.inference_mode``, synchronised on a GPU).

    Returns
    -------
    dict
        ``batch_size``, ``audio_seconds`` (per row), ``seconds`` (median pass),
        ``samples_per_second`` (all rows), ``real_time_factor`` (compute seconds per
        second of audio, all rows).
    """
    device = next(model.parameters()).device
    frames = max(1, round(seconds * sample_rate / model.hop_size))
    gen = torch.Generator(device="cpu").manual_seed(0)
    mel = torch.rand(batch_size, model.num_mels, frames, generator=gen).to(device)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(mel)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first pass warms up
                times.append(time.perf_counter() - start)
    elapsed = float(np.median(times))
    samples = batch_size * frames * model.hop_size
    return {
        "batch_size": batch_size,
        "audio_seconds": frames * model.hop_size / sample_rate,
        "seconds": elapsed,
        "samples_per_second": samples / elapsed,
        "real_time_factor": elapsed / (samples / sample_rate),
    }
