"""What the parallel vocoder learns from: spectral losses, and discriminators that judge.

Spectral losses compare the generated and the true waveform through their spectra:

- :func:`multi_resolution_stft_loss`: spectral convergence and log-magnitude L1 at three
  STFT resolutions (Parallel WaveGAN, Yamamoto et al., 2020): no single
  window size can be fooled by an artefact the others see;
- :func:`mel_l1_loss`: L1 between log-mel spectrograms (HiFi-GAN, Kong et al., 2020),
  weighting errors as hearing does.

They pin down magnitudes but say little about phase, which is why a vocoder trained on
them alone sounds slightly buzzy. Discriminators add what they miss: networks trained to
tell true from generated waveforms, whose judgement the generator learns to pass —

- :class:`MultiPeriodDiscriminator` (HiFi-GAN): the waveform folded into rows of
  ``p`` samples for p = 2, 3, 5, 7, 11, so each sub-network sees one periodic structure;
- :class:`MultiResolutionDiscriminator` (UnivNet, Jang et al., 2021, used by Vocos):
  magnitude spectrograms at three resolutions;

with least-squares GAN losses (:func:`discriminator_loss`, :func:`generator_loss`) and
feature matching (:func:`feature_matching_loss`): the generated waveform's intermediate
activations in each discriminator should match the true waveform's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = [
    "STFT_RESOLUTIONS",
    "MAGNITUDE_FLOOR",
    "magnitude",
    "multi_resolution_stft_loss",
    "MelScale",
    "mel_l1_loss",
    "MultiPeriodDiscriminator",
    "MultiResolutionDiscriminator",
    "discriminator_loss",
    "generator_loss",
    "feature_matching_loss",
    "training_step",
]

#: (fft size, hop, window) of the spectral losses and the resolution discriminator.
STFT_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))

#: Magnitudes are floored here before a log: −100 dB, the mel features' floor. The
#: mini corpus' eSpeak speech has digitally silent pauses, whose log-magnitude would
#: otherwise be −∞-like and dominate the L1 losses.
MAGNITUDE_FLOOR = 1e-5


def magnitude(wave: torch.Tensor, fft_size: int, hop: int, window: int) -> torch.Tensor:
    """|STFT| of (B, L) waveforms with a Hann window: (B, fft_size/2 + 1, frames)."""
    hann = torch.hann_window(window, device=wave.device, dtype=wave.dtype)
    spec = torch.stft(wave, fft_size, hop, window, hann, center=True, return_complex=True)
    return spec.abs().clamp(min=MAGNITUDE_FLOOR)


def multi_resolution_stft_loss(
    generated: torch.Tensor,
    target: torch.Tensor,
    resolutions: Sequence[tuple[int, int, int]] = STFT_RESOLUTIONS,
) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + log-magnitude L1.

    Parameters
    ----------
    generated, target : torch.Tensor, shape (B, L)

    Returns
    -------
    torch.Tensor, scalar
        ``‖|Y| − |Ŷ|‖_F / ‖|Y|‖_F + mean |log |Y| − log |Ŷ||``, averaged over the
        resolutions; the convergence is taken per waveform and averaged over the batch,
        so that the loss of a batch is the mean of the losses of its parts (a batch split
        across processes gives the same gradient).
    """
    total = generated.new_zeros(())
    for fft_size, hop, window in resolutions:
        g = magnitude(generated, fft_size, hop, window)
        t = magnitude(target, fft_size, hop, window)
        convergence = torch.linalg.norm(t - g, dim=(1, 2)) / torch.linalg.norm(t, dim=(1, 2))
        total = total + convergence.mean() + F.l1_loss(g.log(), t.log())
    return total / len(resolutions)


class MelScale(nn.Module):
    """Log-mel spectrogram of waveforms, for the mel loss: (B, L) → (B, bands, frames).

    Parameters
    ----------
    basis : array_like, shape (bands, fft_size/2 + 1)
        Mel filterbank (e.g. :func:`synthsep_lib.audio.mel_basis` of the features).
    fft_size, hop : int
    """

    def __init__(self, basis, fft_size: int, hop: int):
        super().__init__()
        self.fft_size, self.hop = int(fft_size), int(hop)
        self.register_buffer("basis", torch.tensor(np.array(basis), dtype=torch.float32))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = magnitude(wave, self.fft_size, self.hop, self.fft_size)
        return torch.log(torch.matmul(self.basis, spec).clamp(min=MAGNITUDE_FLOOR))


def mel_l1_loss(mel: MelScale, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the log-mel spectrograms of (B, L) waveforms."""
    return F.l1_loss(mel(generated), mel(target))


def _conv2d(cin, cout, kernel, stride=(1, 1), padding=(0, 0)):
    return weight_norm(nn.Conv2d(cin, cout, kernel, stride, padding))


class _PeriodDiscriminator(nn.Module):
    """Judges a waveform folded into rows of ``period`` samples: (B, L) → scores, features."""

    def __init__(self, period: int, channels: Sequence[int]):
        super().__init__()
        self.period = int(period)
        widths = [1, *channels]
        self.convs = nn.ModuleList(
            _conv2d(widths[i], widths[i + 1], (5, 1), (3, 1), (2, 0)) for i in range(len(channels))
        )
        self.convs.append(_conv2d(widths[-1], widths[-1], (5, 1), padding=(2, 0)))
        self.post = _conv2d(widths[-1], 1, (3, 1), padding=(1, 0))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, length = wave.shape
        pad = -length % self.period
        x = F.pad(wave, (0, pad), mode="reflect" if pad < length else "constant")
        x = x.view(b, 1, -1, self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


class _ResolutionDiscriminator(nn.Module):
    """Judges one magnitude spectrogram of the waveform: (B, L) → scores, features."""

    def __init__(self, resolution: tuple[int, int, int], channels: int):
        super().__init__()
        self.resolution = tuple(resolution)
        self.convs = nn.ModuleList(
            [
                _conv2d(1, channels, (3, 9), padding=(1, 4)),
                _conv2d(channels, channels, (3, 9), (1, 2), (1, 4)),
                _conv2d(channels, channels, (3, 9), (1, 2), (1, 4)),
                _conv2d(channels, channels, (3, 9), (1, 2), (1, 4)),
                _conv2d(channels, channels, (3, 3), padding=(1, 1)),
            ]
        )
        self.post = _conv2d(channels, 1, (3, 3), padding=(1, 1))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = magnitude(wave, *self.resolution).transpose(1, 2).unsqueeze(1)  # (B, 1, T, F)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


class _Ensemble(nn.Module):
    """Several discriminators applied to the same waveforms."""

    members: nn.ModuleList

    def forward(self, wave: torch.Tensor):
        """(B, L) → list of (scores (B, n), features [tensors]) per member."""
        return [member(wave) for member in self.members]


class MultiPeriodDiscriminator(_Ensemble):
    """HiFi-GAN's multi-period discriminator (periods 2, 3, 5, 7, 11).

    Parameters
    ----------
    channels : sequence of int
        Widths of the strided convolutions (HiFi-GAN: 32, 128, 512, 1024).
    periods : sequence of int
    """

    def __init__(self, channels: Sequence[int], periods: Sequence[int] = (2, 3, 5, 7, 11)):
        super().__init__()
        self.members = nn.ModuleList(_PeriodDiscriminator(p, channels) for p in periods)


class MultiResolutionDiscriminator(_Ensemble):
    """UnivNet's multi-resolution discriminator over :data:`STFT_RESOLUTIONS`.

    Parameters
    ----------
    channels : int
        Width of every convolution (UnivNet: 32).
    """

    def __init__(self, channels: int, resolutions=STFT_RESOLUTIONS):
        super().__init__()
        self.members = nn.ModuleList(_ResolutionDiscriminator(r, channels) for r in resolutions)


def discriminator_loss(real_scores, fake_scores) -> torch.Tensor:
    """Least-squares GAN: ``Σ mean((1 − D(y))²) + mean(D(ŷ)²)`` over the sub-networks."""
    return sum(
        torch.mean((1 - r) ** 2) + torch.mean(f**2)
        for r, f in zip(real_scores, fake_scores, strict=True)
    )


def generator_loss(fake_scores) -> torch.Tensor:
    """Least-squares GAN: ``Σ mean((1 − D(ŷ))²)`` over the sub-networks."""
    return sum(torch.mean((1 - f) ** 2) for f in fake_scores)


def feature_matching_loss(real_features, fake_features) -> torch.Tensor:
    """``Σ mean |D_l(y) − D_l(ŷ)|`` over sub-networks and layers (true side detached)."""
    return sum(
        F.l1_loss(f, r.detach())
        for real, fake in zip(real_features, fake_features, strict=True)
        for r, f in zip(real, fake, strict=True)
    )


def training_step(
    generator: nn.Module,
    discriminators: Sequence[nn.Module],
    mel_scale: MelScale,
    mel: torch.Tensor,
    audio: torch.Tensor,
    weights: dict[str, float],
    adversarial: bool,
    valid_from: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
    """The losses of one training step of a GAN vocoder (HiFi-GAN's recipe).

    The generator turns ``mel`` into a waveform. With ``adversarial``, the
    discriminators first score the true and the (detached) generated waveforms — their
    loss — and then the generated one again, for the generator's GAN and
    feature-matching losses. Both judge with the discriminators' weights before this
    step's update. The caller backpropagates the generator's total first, then clears
    the discriminators' gradients (the generator's loss reached them too) and
    backpropagates theirs, and then steps both optimisers.

    Parameters
    ----------
    generator : nn.Module
        (B, 80, T) mel → (B, 256 · T) waveform.
    discriminators : sequence of nn.Module
        E.g. a :class:`MultiPeriodDiscriminator` and a :class:`MultiResolutionDiscriminator`.
    mel_scale : MelScale
    mel : torch.Tensor, shape (B, 80, T)
    audio : torch.Tensor, shape (B, 256 · T)
        The true waveforms.
    weights : dict
        ``mel``, ``stft``, ``adversarial``, ``feature_matching``.
    adversarial : bool
        False during the warm-up: spectral losses only.
    valid_from : int
        Samples before this one are left out of every loss: a window cut from the middle
        of an utterance lacks the frames before it, which also shape its first samples
        (``fft_size − hop_size`` of them).

    Returns
    -------
    generator_total : torch.Tensor
        Weighted sum of the generator's losses.
    discriminator_total : torch.Tensor or None
        The discriminators' loss (None without ``adversarial``).
    parts : dict
        Unweighted ``mel``, ``stft`` and, with ``adversarial``, ``adversarial``,
        ``feature_matching``, ``discriminator`` (detached).
    """
    generated = generator(mel)[:, valid_from:]
    audio = audio[:, valid_from:]
    parts = {
        "mel": mel_l1_loss(mel_scale, generated, audio),
        "stft": multi_resolution_stft_loss(generated, audio),
    }
    total = weights["mel"] * parts["mel"] + weights["stft"] * parts["stft"]
    if not adversarial:
        return total, None, {k: v.detach() for k, v in parts.items()}
    judged_real = [out for d in discriminators for out in d(audio)]
    judged_fake = [out for d in discriminators for out in d(generated.detach())]
    d_total = discriminator_loss([s for s, _ in judged_real], [s for s, _ in judged_fake])
    judged = [out for d in discriminators for out in d(generated)]
    parts["adversarial"] = generator_loss([s for s, _ in judged])
    parts["feature_matching"] = feature_matching_loss(
        [f for _, f in judged_real], [f for _, f in judged]
    )
    parts["discriminator"] = d_total
    total = (
        total
        + weights["adversarial"] * parts["adversarial"]
        + weights["feature_matching"] * parts["feature_matching"]
    )
    return total, d_total, {k: v.detach() for k, v in parts.items()}
