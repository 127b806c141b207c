"""WaveNet vocoder with r9y9's layout: forward, cached generation, checkpoint import.

Re-implements r9y9 ``wavenet_vocoder`` (commit 2092a64 = PyPI 0.1.1 with
``legacy=True``) for ``input_type="raw"`` with a mixture-of-logistics output and local
(mel) conditioning (original_code.md#oc-wavenet-modules). Module tree and parameter
names are those of the reference, so the published LJSpeech checkpoint loads
unchanged:

``first_conv``, ``conv_layers.{i}.{conv, conv1x1c, conv1x1_out, conv1x1_skip}``,
``last_conv_layers.{1,3}``, ``upsample_conv.{0,2,4,6}``.

Weight normalisation uses ``torch.nn.utils.parametrizations.weight_norm`` (keys
``<module>.parametrizations.weight.original0`` = g, ``...original1`` = v);
:func:`load_r9y9_state_dict` and :func:`to_r9y9_state_dict` translate from/to the
published ``weight_g`` / ``weight_v`` names.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from synthsep_lib.vocoder.logistic_mixture import (
    LOG_SCALE_MIN,
    UNIFORM_RANGE,
    discretized_mix_logistic_loss,
    mixture_pdf,
    sample_from_discretized_mix_logistic,
)
from synthsep_lib.vocoder.mulaw import (
    inv_mulaw_quantize,
    mulaw_cross_entropy,
    mulaw_quantize,
    sample_from_softmax,
)

__all__ = [
    "WaveNetConfig",
    "WaveNet",
    "ResidualLayer",
    "upsample_layers",
    "load_r9y9_state_dict",
    "to_r9y9_state_dict",
    "load_r9y9_checkpoint",
]

_SQRT_HALF = math.sqrt(0.5)


@dataclass
class WaveNetConfig:
    """Hyper-parameters of the WaveNet vocoder (r9y9 names; original_code.md#oc-wavenet-hparams).

    Attributes
    ----------
    out_channels : int
        Output channels: 3 x number of logistic components (30 = 10 components) for
        ``input_type="raw"``; ``quantize_channels`` for ``"mulaw-quantize"``.
    input_type : {"raw", "mulaw-quantize"}
        ``"raw"``: scalar input in [-1, 1] and a mixture-of-logistics output (the
        paper's). ``"mulaw-quantize"``: one-hot mu-law input and a softmax over
        ``quantize_channels`` classes (r9y9's other option; learns faster).
    quantize_channels : int
        Discretisation levels: 65536 bins of the mixture, or the mu-law classes (256).
    layers, stacks : int
        Residual layers in total and number of dilation cycles; layer i has dilation
        ``2 ** (i % (layers // stacks))``.
    residual_channels, gate_channels, skip_out_channels : int
        Widths of the residual path, the gated convolution (split in two halves) and
        the skip path.
    kernel_size : int
        Taps of the dilated causal convolutions.
    dropout : float
        Dropout probability on each residual layer's input (training only).
    cin_channels : int
        Mel bands of the local conditioning.
    upsample_scales : list of int
        Time strides of the ConvTranspose2d upsampling; their product is the hop (256).
    freq_axis_kernel_size : int
        Frequency-axis kernel of the upsampling convolutions.
    weight_normalization : bool
        Weight-normalise every convolution.
    legacy : bool
        r9y9's legacy skip rule ``S_k = (S_{k-1} + s_k) * sqrt(0.5)``; False: plain sum.
    log_scale_min : float
        Lower clamp of the mixture log-scales (ln 1e-14).
    """

    out_channels: int = 30
    input_type: str = "raw"
    quantize_channels: int = 65536
    layers: int = 24
    stacks: int = 4
    residual_channels: int = 512
    gate_channels: int = 512
    skip_out_channels: int = 256
    kernel_size: int = 3
    dropout: float = 1 - 0.95
    cin_channels: int = 80
    upsample_scales: list[int] = field(default_factory=lambda: [4, 4, 4, 4])
    freq_axis_kernel_size: int = 3
    weight_normalization: bool = True
    legacy: bool = True
    log_scale_min: float = LOG_SCALE_MIN

    def __post_init__(self):
        if self.layers % self.stacks:
            raise ValueError(f"layers ({self.layers}) must be a multiple of stacks ({self.stacks})")
        if self.gate_channels % 2:
            raise ValueError(f"gate_channels must be even; got {self.gate_channels}")
        if self.input_type == "raw" and self.out_channels % 3:
            raise ValueError(
                f"a mixture output needs out_channels = 3 x components; got {self.out_channels}"
            )
        if self.input_type == "mulaw-quantize" and self.out_channels != self.quantize_channels:
            raise ValueError(
                f"a mu-law output needs out_channels = quantize_channels; got "
                f"{self.out_channels} and {self.quantize_channels}"
            )
        if self.input_type not in ("raw", "mulaw-quantize"):
            raise ValueError(
                f"input_type must be 'raw' or 'mulaw-quantize'; got {self.input_type!r}"
            )
        self.upsample_scales = [int(s) for s in self.upsample_scales]

    @classmethod
    def paper(cls) -> WaveNetConfig:
        """The LJSpeech mixture model of the paper (24 737 396 parameters)."""
        return cls()

    @classmethod
    def small(cls) -> WaveNetConfig:
        """A tiny model for tests and the reduced book (same structure, few channels)."""
        return cls(layers=4, stacks=2, residual_channels=16, gate_channels=16, skip_out_channels=8)

    @property
    def mulaw(self) -> bool:
        """True for the one-hot mu-law input and softmax output."""
        return self.input_type == "mulaw-quantize"

    @property
    def in_channels(self) -> int:
        """Input channels of ``first_conv``: 1 (raw) or ``quantize_channels`` (one-hot)."""
        return self.quantize_channels if self.mulaw else 1

    @property
    def hop_size(self) -> int:
        """Audio samples per conditioning frame (product of ``upsample_scales``)."""
        return math.prod(self.upsample_scales)

    @property
    def dilations(self) -> list[int]:
        """Dilation of each residual layer."""
        per_stack = self.layers // self.stacks
        return [2 ** (i % per_stack) for i in range(self.layers)]

    @property
    def receptive_field(self) -> int:
        """Receptive field in samples: (kernel - 1) * sum(dilations) + 1 (505 for paper)."""
        return (self.kernel_size - 1) * sum(self.dilations) + 1

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WaveNetConfig:
        """Build from a dict; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown WaveNetConfig keys {unknown}; expected some of {names}")
        return cls(**dict(d))


def _wn(module: nn.Module, enabled: bool) -> nn.Module:
    return weight_norm(module, dim=0) if enabled else module


def _conv1d(c_in, c_out, kernel_size, dilation, wn):
    """Conv1d initialised like r9y9 (N(0, sqrt(1/(k C_in))), bias 0), then weight norm."""
    m = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation)
    nn.init.normal_(m.weight, 0.0, math.sqrt(1.0 / (kernel_size * c_in)))
    nn.init.zeros_(m.bias)
    return _wn(m, wn)


def upsample_layers(cfg: WaveNetConfig) -> nn.ModuleList:
    """The conditioning upsampler: a transposed convolution and a ReLU per scale.

    Each transposed convolution has one input and one output channel and a kernel of
    ``freq_axis_kernel_size`` mel bins × ``scale`` frames, stride ``scale`` along time:
    every frame becomes ``scale`` samples, smoothed across neighbouring mel bins. The
    weights start at ``1 / freq_axis_kernel_size`` (an average of the bins, repeated in
    time), as in r9y9's code; the scales multiply to the hop size (4·4·4·4 = 256).

    Parameters
    ----------
    cfg : WaveNetConfig
        Uses ``upsample_scales``, ``freq_axis_kernel_size`` and ``weight_normalization``.

    Returns
    -------
    torch.nn.ModuleList
        ``[conv, ReLU, conv, ReLU, ...]``: r9y9's ``upsample_conv.{0,2,4,6}``.
    """
    layers = []
    k_f = cfg.freq_axis_kernel_size
    for s in cfg.upsample_scales:
        m = nn.ConvTranspose2d(
            1, 1, (k_f, s), stride=(1, s), padding=((k_f - 1) // 2, 0), dilation=1
        )
        nn.init.constant_(m.weight, 1.0 / k_f)
        nn.init.zeros_(m.bias)
        layers += [_wn(m, cfg.weight_normalization), nn.ReLU()]
    return nn.ModuleList(layers)


def _check_conditioning(c: torch.Tensor, cin_channels: int) -> None:
    if c.dim() != 3 or c.size(1) != cin_channels:
        raise ValueError(f"c must have shape (B, {cin_channels}, Tc); got {tuple(c.shape)}")


class ResidualLayer(nn.Module):
    """One gated residual layer (r9y9 ``ResidualConv1dGLU``, local conditioning only).

    Parameters
    ----------
    residual_channels, gate_channels, skip_out_channels, cin_channels : int
        Channel widths.
    kernel_size, dilation : int
        Dilated causal convolution.
    dropout : float
        Dropout probability on the input (training only).
    weight_normalization : bool
        Weight-normalise the four convolutions.
    """

    def __init__(
        self,
        residual_channels,
        gate_channels,
        skip_out_channels,
        cin_channels,
        kernel_size,
        dilation,
        dropout,
        weight_normalization=True,
    ):
        super().__init__()
        self.dilation = dilation
        self.kernel_size = kernel_size
        self.dropout = dropout
        wn = weight_normalization
        self.conv = _conv1d(residual_channels, gate_channels, kernel_size, dilation, wn)
        self.conv1x1c = _conv1d(cin_channels, gate_channels, 1, 1, wn)
        half = gate_channels // 2
        self.conv1x1_out = _conv1d(half, residual_channels, 1, 1, wn)
        self.conv1x1_skip = _conv1d(half, skip_out_channels, 1, 1, wn)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, R, T), upsampled conditioning c (B, cin, T) -> (residual out, skip)."""
        residual = x
        x = F.dropout(x, p=self.dropout, training=self.training)
        # causal: (k - 1)·d zeros on the left only, so output t sees inputs t, t - d, …
        x = self.conv(F.pad(x, ((self.kernel_size - 1) * self.dilation, 0)))
        a, b = x.chunk(2, dim=1)
        ca, cb = self.conv1x1c(c).chunk(2, dim=1)
        z = torch.tanh(a + ca) * torch.sigmoid(b + cb)  # the gate, conditioned on the mel
        s = self.conv1x1_skip(z)
        x = (self.conv1x1_out(z) + residual) * _SQRT_HALF  # r9y9's legacy scaling
        return x, s


class WaveNet(nn.Module):
    """Mel-conditioned WaveNet with a mixture-of-logistics output (r9y9 layout).

    Parameters
    ----------
    config : WaveNetConfig, optional
        Hyper-parameters (default: the paper's, ``WaveNetConfig.paper()``).
    """

    def __init__(self, config: WaveNetConfig | None = None):
        super().__init__()
        cfg = config if config is not None else WaveNetConfig.paper()
        self.config = cfg
        wn = cfg.weight_normalization
        self.first_conv = _conv1d(cfg.in_channels, cfg.residual_channels, 1, 1, wn)
        self.conv_layers = nn.ModuleList(
            ResidualLayer(
                cfg.residual_channels,
                cfg.gate_channels,
                cfg.skip_out_channels,
                cfg.cin_channels,
                cfg.kernel_size,
                d,
                cfg.dropout,
                wn,
            )
            for d in cfg.dilations
        )
        self.last_conv_layers = nn.ModuleList(
            [
                nn.ReLU(),
                _conv1d(cfg.skip_out_channels, cfg.skip_out_channels, 1, 1, wn),
                nn.ReLU(),
                _conv1d(cfg.skip_out_channels, cfg.out_channels, 1, 1, wn),
            ]
        )
        self.upsample_conv = upsample_layers(cfg)

    # ------------------------------------------------------------------ properties
    @property
    def receptive_field(self) -> int:
        """Receptive field in samples (505 for the paper's model)."""
        return self.config.receptive_field

    @property
    def hop_size(self) -> int:
        """Audio samples per mel frame (256)."""
        return self.config.hop_size

    def num_parameters(self) -> int:
        """Number of trainable scalars (24 737 396 for the paper's model)."""
        return sum(p.numel() for p in self.parameters())

    # --------------------------------------------------------------------- forward
    def upsample(self, c: torch.Tensor) -> torch.Tensor:
        """Upsample mel frames to audio rate.

        Parameters
        ----------
        c : torch.Tensor, shape (B, cin, Tc)
            Normalised mel spectrogram (values in [0, 1]), one column per hop.

        Returns
        -------
        torch.Tensor, shape (B, cin, hop * Tc)
        """
        _check_conditioning(c, self.config.cin_channels)
        c = c.unsqueeze(1)  # (B, 1, cin, Tc): the mel as a one-channel image
        for f in self.upsample_conv:  # stretch time by each scale (in all: the hop), ReLU
            c = f(c)
        return c.squeeze(1)

    def _skip_sum(self, skips, s):
        if skips is None:
            return s
        return (skips + s) * _SQRT_HALF if self.config.legacy else skips + s

    def forward_upsampled(self, x: torch.Tensor, c_up: torch.Tensor) -> torch.Tensor:
        """Teacher-forced forward with conditioning already at audio rate.

        x (B, in_channels, T), c_up (B, cin, T) -> outputs (B, out_channels, T).
        """
        h = self.first_conv(x)
        skips = None
        for layer in self.conv_layers:
            h, s = layer(h, c_up)
            skips = self._skip_sum(skips, s)
        out = skips
        for f in self.last_conv_layers:
            out = f(out)
        return out

    def forward(self, x: torch.Tensor, c: torch.Tensor, softmax: bool = False) -> torch.Tensor:
        """Teacher-forced forward pass (training, evaluation of the likelihood).

        Parameters
        ----------
        x : torch.Tensor, shape (B, in_channels, T)
            Input audio in [-1, 1] (raw) or its one-hot mu-law classes (see
            :meth:`model_input`); output step t predicts the sample after x[t].
        c : torch.Tensor, shape (B, cin, Tc)
            Mel conditioning with ``T = hop * Tc``.
        softmax : bool
            Apply a softmax over the channel axis (r9y9 compatibility; not meaningful
            for mixture outputs).

        Returns
        -------
        torch.Tensor, shape (B, out_channels, T)
            Mixture logits, means and log-scales per time step, or class logits.
        """
        n_in = self.config.in_channels
        if x.dim() != 3 or x.size(1) != n_in:
            raise ValueError(f"x must have shape (B, {n_in}, T); got {tuple(x.shape)}")
        c_up = self.upsample(c)
        if c_up.size(-1) != x.size(-1):
            raise ValueError(
                f"audio length {x.size(-1)} must equal hop ({self.hop_size}) x mel frames "
                f"({c.size(-1)}) = {c_up.size(-1)}"
            )
        out = self.forward_upsampled(x, c_up)
        return F.softmax(out, dim=1) if softmax else out

    def model_input(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio (B, T) in [-1, 1] -> network input (B, in_channels, T).

        The samples themselves for ``input_type="raw"``, their one-hot mu-law classes
        for ``"mulaw-quantize"``.
        """
        if not self.config.mulaw:
            return audio.unsqueeze(1)
        q = mulaw_quantize(audio, self.config.quantize_channels)
        return F.one_hot(q, self.config.quantize_channels).transpose(1, 2).to(audio.dtype)

    def loss(
        self, y_hat: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean negative log-likelihood (nats) of ``target`` over its valid steps.

        Parameters
        ----------
        y_hat : torch.Tensor, shape (B, out_channels, T)
            Predictions for ``target`` (for training: the forward output without its
            last step, against the audio without its first sample).
        target : torch.Tensor, shape (B, T)
            Amplitudes in [-1, 1].
        mask : torch.Tensor, shape (B, T), optional
            1 (True) on valid steps, 0 on padding (r9y9's masked losses).

        Returns
        -------
        torch.Tensor, scalar
        """
        cfg = self.config
        if cfg.mulaw:
            nll = mulaw_cross_entropy(y_hat, target)
        else:
            nll = discretized_mix_logistic_loss(
                y_hat, target, cfg.quantize_channels, cfg.log_scale_min, reduce=False
            )[..., 0]
        if mask is None:
            return nll.mean()
        mask = mask.to(nll.dtype)
        return (nll * mask).sum() / mask.sum().clamp_min(1.0)

    @torch.no_grad()
    def predicted_density(
        self, audio: torch.Tensor, c: torch.Tensor, steps, grid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced next-sample densities of one utterance at a few steps.

        Parameters
        ----------
        audio : torch.Tensor, shape (T,)
            The utterance in [-1, 1], ``T = hop * Tc``.
        c : torch.Tensor, shape (cin, Tc)
            Its mel conditioning.
        steps : sequence of int
            Time steps t; the density is the prediction of ``audio[t + 1]``.
        grid : torch.Tensor, shape (G,), optional
            Amplitudes (default 2001 points from -1 to 1).

        Returns
        -------
        grid : torch.Tensor, shape (G,)
        density : torch.Tensor, shape (len(steps), G)
            Probability per unit amplitude: the mixture's bin mass over the bin width, or
            the mu-law class probability over the width of the class's amplitude range.
        """
        cfg = self.config
        grid = torch.linspace(-1.0, 1.0, 2001) if grid is None else torch.as_tensor(grid)
        was_training = self.training
        self.eval()
        try:
            y_hat = self(self.model_input(audio[None]), c[None])[0, :, list(steps)].t()
        finally:
            self.train(was_training)
        if not cfg.mulaw:
            return mixture_pdf(y_hat, grid, cfg.quantize_channels, cfg.log_scale_min, True)
        q = mulaw_quantize(grid, cfg.quantize_channels).clamp(max=cfg.quantize_channels - 2)
        width = inv_mulaw_quantize(q + 1, cfg.quantize_channels) - inv_mulaw_quantize(
            q, cfg.quantize_channels
        )
        return grid, torch.softmax(y_hat, dim=-1)[:, q] / width

    # ------------------------------------------------------------------ generation
    def _initial(self, initial_input, b, device, dtype):
        if initial_input is None:
            return torch.zeros(b, device=device, dtype=dtype)
        x0 = torch.as_tensor(initial_input, device=device, dtype=dtype).reshape(-1)
        if x0.numel() == 1:
            x0 = x0.expand(b)
        if x0.numel() != b:
            raise ValueError(f"initial_input must hold 1 or B={b} values; got {x0.numel()}")
        return x0.clone()

    @staticmethod
    def _progress(iterable, progress):
        if not progress:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, desc="WaveNet generation", unit="sample", mininterval=1.0)

    @torch.no_grad()
    def folded_weights(self) -> dict[str, torch.Tensor]:
        """Effective (weight-norm folded) weights and biases as plain tensors.

        Returns a dict ``{"<module>.weight": W, "<module>.bias": b}`` for every
        convolution, with ``W = g v / ||v||`` when weight normalisation is on.
        """
        out = {}
        for name, m in self.named_modules():
            if isinstance(m, (nn.Conv1d, nn.ConvTranspose2d)):
                out[f"{name}.weight"] = m.weight.detach().clone()
                out[f"{name}.bias"] = m.bias.detach().clone()
        return out

    @torch.no_grad()
    def generate(
        self,
        c: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        initial_input: torch.Tensor | float | None = None,
        progress: bool = False,
        chunk_size: int | None = None,
        cuda_graph: bool | None = None,
    ) -> torch.Tensor:
        """Autoregressive sampling with cached convolution queues (r9y9 ``wavegen``).

        Weight normalisation is folded into plain weights once; each dilated convolution
        keeps a ring buffer of its last ``(k-1) d + 1`` inputs, so one step costs one
        matrix product per convolution. The conditioning terms of all layers are
        computed ``chunk_size`` steps at a time. Works for any batch size B.

        Parameters
        ----------
        c : torch.Tensor, shape (B, cin, Tc)
            Mel conditioning; ``hop * Tc`` samples are generated.
        generator : torch.Generator, optional
            Source of the sampling uniforms (default: the global generator). Draws per
            step, in order: (B, K) Gumbel uniforms, then (B,) logistic uniforms.
        initial_input : float or torch.Tensor of 1 or B values, optional
            Input of the first step (default 0.0, as r9y9).
        progress : bool
            Show a tqdm progress bar.
        chunk_size : int, optional
            Steps whose conditioning terms are precomputed at once. Default: as many as
            fit in about 64 MB (``layers x B x chunk x gate_channels`` floats).
        cuda_graph : bool, optional
            Capture one step as a CUDA graph and replay it (GPU only: a step is dozens of
            tiny kernels, whose launch cost dominates). Default: on for a CUDA device;
            if the capture fails, a warning is given and the plain path is used. The
            captured step uses shifted windows instead of ring buffers, with the same
            results.

        Returns
        -------
        torch.Tensor, shape (B, hop * Tc)
            Waveform in [-1, 1] at the audio rate (22 050 Hz for the paper's model).
        """
        was_training = self.training
        self.eval()
        try:
            return self._generate_cached(
                c, generator, initial_input, progress, chunk_size, cuda_graph
            )
        finally:
            self.train(was_training)

    def _generate_cached(self, c, generator, initial_input, progress, chunk_size, cuda_graph):
        c_up = self.upsample(c)  # (B, cin, T)
        b, _, t_total = c_up.shape
        if chunk_size is None:
            chunk_size = max(16, (16 << 20) // (self.config.layers * b * self.config.gate_channels))
        if cuda_graph is None:
            cuda_graph = c_up.device.type == "cuda"
        if cuda_graph and c_up.device.type != "cuda":
            raise ValueError(f"cuda_graph=True needs a CUDA device; the model is on {c_up.device}")
        stepper = _Stepper(self, b, c_up.device, c_up.dtype, fixed_addresses=cuda_graph)
        state = stepper.initial_state(self._initial(initial_input, b, c_up.device, c_up.dtype))
        out = torch.empty(b, t_total, device=c_up.device, dtype=c_up.dtype)
        step = stepper.eager_step
        if cuda_graph:
            try:
                step = stepper.graphed_step(state)
            except RuntimeError as error:  # e.g. an old driver: the plain path still works
                import warnings

                warnings.warn(
                    f"CUDA graph capture failed ({error}); generating without it", stacklevel=3
                )
                stepper = _Stepper(self, b, c_up.device, c_up.dtype, fixed_addresses=False)
                step = stepper.eager_step
        cond = None
        for t in self._progress(range(t_total), progress):
            j = t % chunk_size
            if j == 0:
                cond = stepper.conditioning(c_up[:, :, t : t + chunk_size].transpose(1, 2))
            state, out[:, t] = step(t, state, cond[:, :, j], generator)
        return out

    @torch.no_grad()
    def generate_naive(
        self,
        c: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        initial_input: torch.Tensor | float | None = None,
        length: int | None = None,
    ) -> torch.Tensor:
        """Reference sampler that reruns the full forward pass at every step (testing only).

        Each step runs :meth:`forward_upsampled` on the last ``receptive_field`` inputs,
        so it costs O(T x receptive field); use short lengths. Same random draws, in
        the same order, as :meth:`generate`.

        Parameters
        ----------
        c : torch.Tensor, shape (B, cin, Tc)
        generator, initial_input
            As in :meth:`generate`.
        length : int, optional
            Stop after this many samples (default ``hop * Tc``).

        Returns
        -------
        torch.Tensor, shape (B, length)
        """
        was_training = self.training
        self.eval()
        try:
            c_up = self.upsample(c)
            b, _, t_total = c_up.shape
            if length is not None:
                t_total = min(t_total, int(length))
            cfg, rf = self.config, self.receptive_field
            x0 = self._initial(initial_input, b, c_up.device, c_up.dtype)
            x = self.model_input(torch.zeros(b, t_total, device=c_up.device, dtype=c_up.dtype))
            x[:, :, :1] = self.model_input(x0[:, None])
            out = torch.empty(b, t_total, device=c_up.device, dtype=c_up.dtype)
            for t in range(t_total):
                lo = max(0, t + 1 - rf)
                y = self.forward_upsampled(x[:, :, lo : t + 1], c_up[:, :, lo : t + 1])
                if cfg.mulaw:
                    q = sample_from_softmax(y[:, :, -1], generator=generator)
                    out[:, t] = inv_mulaw_quantize(q, cfg.quantize_channels)
                    nxt = F.one_hot(q, cfg.quantize_channels).to(x.dtype)
                else:
                    out[:, t] = sample_from_discretized_mix_logistic(
                        y[:, :, -1], cfg.log_scale_min, generator=generator
                    )
                    nxt = out[:, t, None]
                if t + 1 < t_total:
                    x[:, :, t + 1] = nxt
            return out
        finally:
            self.train(was_training)


class _Stepper:
    """One network evaluation per generation step for B rows, with cached inputs.

    Weight normalisation, the biases of the conditioning and dilated convolutions, the
    legacy skip scaling (``S_k = (S_{k-1} + s_k) sqrt(0.5)``, i.e. ``S = sum coef_k s_k``)
    are folded into the weights once; all layers' skip products become one matrix
    product over the stacked gate outputs; the last layer's unused residual is skipped.

    Each dilated convolution keeps its last ``(k - 1) d + 1`` inputs, either in a **ring
    buffer** written at ``t mod size`` (cheapest; the indices change every step) or, with
    ``fixed_addresses``, in a window shifted by one each step, so that every step runs
    the same kernels on the same memory and can be captured as a CUDA graph.
    """

    def __init__(self, model: WaveNet, b: int, device, dtype, fixed_addresses: bool):
        cfg = model.config
        w = model.folded_weights()
        k, r = cfg.kernel_size, cfg.residual_channels

        def lin(name):  # 1x1 conv -> (W^T (C_in, C_out), bias)
            return w[f"{name}.weight"][:, :, 0].t().contiguous(), w[f"{name}.bias"]

        self.cfg, self.b, self.k, self.r = cfg, b, k, r
        self.fixed = fixed_addresses
        # raw: h = x * w + b with w (R,); mu-law: a one-hot input selects a row of (Q, R)
        first_w = w["first_conv.weight"][:, :, 0].t().contiguous()
        self.first_w = first_w if cfg.mulaw else first_w[0]
        self.first_b = w["first_conv.bias"]
        coefs = [1.0]
        for _ in cfg.dilations[1:]:
            coefs = [c * _SQRT_HALF for c in coefs] + [_SQRT_HALF] if cfg.legacy else coefs + [1.0]
        self.layers, skip_w, self.skip_b = [], [], 0.0
        for i, d in enumerate(cfg.dilations):
            pre = f"conv_layers.{i}"
            wc = w[f"{pre}.conv.weight"]  # (G, R, k); taps ordered oldest first
            w_skip, b_skip = lin(f"{pre}.conv1x1_skip")
            skip_w.append(w_skip * coefs[i])
            self.skip_b = self.skip_b + b_skip * coefs[i]
            size = (k - 1) * d + 1
            self.layers.append(
                dict(
                    d=d,
                    size=size,
                    w_dil=wc.permute(2, 1, 0).reshape(k * r, -1).contiguous(),  # (k R, G)
                    w_c=w[f"{pre}.conv1x1c.weight"][:, :, 0].t().contiguous(),  # (cin, G)
                    b=w[f"{pre}.conv1x1c.bias"] + w[f"{pre}.conv.bias"],
                    out=lin(f"{pre}.conv1x1_out"),
                    buf=torch.zeros(b, size, r, device=device, dtype=dtype),
                )
            )
        self.skip_w = torch.cat(skip_w).contiguous()  # (L G/2, S)
        self.gates = torch.empty(
            b, len(self.layers), cfg.gate_channels // 2, device=device, dtype=dtype
        )
        self.head1 = lin("last_conv_layers.1")
        self.head2 = lin("last_conv_layers.3")

    def initial_state(self, x0: torch.Tensor) -> torch.Tensor:
        """The first input: amplitudes (raw) or their mu-law classes."""
        return mulaw_quantize(x0, self.cfg.quantize_channels) if self.cfg.mulaw else x0

    def conditioning(self, c_chunk: torch.Tensor) -> torch.Tensor:
        """(B, T', cin) upsampled mel -> every layer's conditioning + biases, (L, B, T', G)."""
        flat = c_chunk.reshape(-1, c_chunk.size(-1))
        return torch.stack(
            [
                torch.addmm(ly["b"], flat, ly["w_c"]).view(self.b, c_chunk.size(1), -1)
                for ly in self.layers
            ]
        )

    def network(self, state: torch.Tensor, cond_t: torch.Tensor, t: int | None) -> torch.Tensor:
        """Outputs (B, out_channels) for inputs ``state`` (B,) and conditioning (L, B, G)."""
        b, k, r = self.b, self.k, self.r
        # first_conv of this step's input sample (or the embedding of its mu-law class)
        h = (
            self.first_w[state] if self.cfg.mulaw else state[:, None] * self.first_w
        ) + self.first_b
        last = len(self.layers) - 1
        for li, ly in enumerate(self.layers):
            taps = self._push(ly, h, t)  # the layer's inputs at t - (k-1)d, ..., t - d, t
            # the dilated convolution at one step: one product over the k cached taps,
            # added to the layer's mel term (biases folded in), precomputed for this step
            g = torch.addmm(cond_t[li], taps.reshape(b, k * r), ly["w_dil"])  # tap-major
            a, bb = g.chunk(2, dim=1)
            z = torch.mul(torch.tanh(a), torch.sigmoid(bb), out=self.gates[:, li])
            if li < last:  # the residual (h + out(z)) · sqrt(1/2); the last one is unused
                w_out, b_out = ly["out"]
                h = torch.addmm(h + b_out, z, w_out, beta=_SQRT_HALF, alpha=_SQRT_HALF)
        # every layer's skip in one product (the legacy sqrt(1/2) factors are in skip_w)
        skips = torch.addmm(self.skip_b, self.gates.view(b, -1), self.skip_w)
        y = torch.addmm(self.head1[1], torch.relu(skips), self.head1[0])
        return torch.addmm(self.head2[1], torch.relu(y), self.head2[0])

    def _push(self, ly: dict, h: torch.Tensor, t: int | None) -> torch.Tensor:
        """Store a layer's input ``h`` (B, R) of step t; return its k taps, (B, k, R)."""
        buf, size, d = ly["buf"], ly["size"], ly["d"]
        if self.fixed:  # shift the window: taps at 0, d, ..., size - 1
            buf[:, :-1] = buf[:, 1:].clone()
            buf[:, -1] = h
            return buf[:, ::d]
        buf[:, t % size] = h
        return buf[:, [(t - (self.k - 1 - m) * d) % size for m in range(self.k)]]

    def draw(self, y: torch.Tensor, uniforms) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample the next state and its amplitude from outputs y (B, out)."""
        cfg = self.cfg
        if cfg.mulaw:
            q = sample_from_softmax(y, uniforms=uniforms[0])
            return q, inv_mulaw_quantize(q, cfg.quantize_channels).to(y.dtype)
        x = sample_from_discretized_mix_logistic(y, cfg.log_scale_min, uniforms=uniforms)
        return x, x

    def uniforms(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Empty tensors for one step's draws, in r9y9's order: (B, K) then (B,)."""
        n = self.cfg.quantize_channels if self.cfg.mulaw else self.cfg.out_channels // 3
        return like.new_empty(self.b, n), like.new_empty(self.b)

    def eager_step(self, t, state, cond_t, generator):
        """One step: outputs, uniform draws from ``generator`` in r9y9's order, sample."""
        y = self.network(state, cond_t, t)
        u = self.uniforms(y)
        for part in u[:1] if self.cfg.mulaw else u:
            part.uniform_(*UNIFORM_RANGE, generator=generator)
        return self.draw(y, u)

    def graphed_step(self, state: torch.Tensor):
        """A step function that replays one captured CUDA graph (fixed addresses only)."""
        st_state = state.clone()
        st_cond = torch.zeros(
            len(self.layers),
            self.b,
            self.cfg.gate_channels,
            device=state.device,
            dtype=self.skip_w.dtype,
        )
        st_u = self.uniforms(st_cond)
        st_out = st_cond.new_zeros(self.b)

        def body():
            new_state, amplitude = self.draw(self.network(st_state, st_cond, None), st_u)
            st_state.copy_(new_state)
            st_out.copy_(amplitude)

        bufs = [ly["buf"] for ly in self.layers]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up (library handles) off the capture
            for u in st_u:
                u.fill_(0.5)
            body()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            body()
        for buf in bufs:  # the warm-up ran the network once: start from silence again
            buf.zero_()
        st_state.copy_(state)

        def step(t, _state, cond_t, generator):
            st_cond.copy_(cond_t)
            for part in st_u[:1] if self.cfg.mulaw else st_u:
                part.uniform_(*UNIFORM_RANGE, generator=generator)
            graph.replay()
            return st_state, st_out

        return step


# ---------------------------------------------------------------- state-dict import
_WN_G = "parametrizations.weight.original0"
_WN_V = "parametrizations.weight.original1"


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.size(0), -1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


def _conv_modules(model: nn.Module):
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose2d)):
            yield name, m


def load_r9y9_state_dict(model: WaveNet, state_dict: Mapping[str, torch.Tensor]) -> WaveNet:
    """Load r9y9 parameters into ``model`` (in place), whatever their naming.

    Accepts for every convolution either the published names ``weight_g`` /
    ``weight_v`` (old ``torch.nn.utils.weight_norm``), the new parametrisation names
    ``parametrizations.weight.original0/1``, or a plain ``weight``; plus ``bias``.
    A ``module.`` prefix (DataParallel) is stripped. Converts between forms as needed
    (g = ||w|| for a plain weight; W = g v / ||v|| for a model without weight norm).

    Parameters
    ----------
    model : WaveNet
        Target model; its config must match the checkpoint's shapes.
    state_dict : mapping of str to torch.Tensor
        E.g. ``checkpoint["state_dict"]`` of the published LJSpeech model (309 tensors).

    Returns
    -------
    WaveNet
        ``model``, for chaining.

    Raises
    ------
    KeyError
        Missing or unexpected keys (all of them named).
    ValueError
        A tensor's shape differs from the model's.
    """
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in state_dict.items()}
    used: set[str] = set()
    missing: list[str] = []

    def take(key):
        if key in sd:
            used.add(key)
            return sd[key]
        return None

    new: dict[str, torch.Tensor] = {}
    for name, m in _conv_modules(model):
        bias = take(f"{name}.bias")
        if bias is None:
            missing.append(f"{name}.bias")
        else:
            new[f"{name}.bias"] = bias
        g = take(f"{name}.weight_g")
        v = take(f"{name}.weight_v")
        if g is None and v is None:
            g, v = take(f"{name}.{_WN_G}"), take(f"{name}.{_WN_V}")
        if g is None and v is None:
            wt = take(f"{name}.weight")
            if wt is None:
                missing.append(f"{name}.weight_g / weight_v")
                continue
            g, v = _norm_except_dim0(wt), wt
        elif g is None or v is None:
            missing.append(f"{name}.weight_g / weight_v (only one of the pair found)")
            continue
        if parametrize.is_parametrized(m, "weight"):
            new[f"{name}.{_WN_G}"], new[f"{name}.{_WN_V}"] = g, v
        else:
            new[f"{name}.weight"] = g * v / _norm_except_dim0(v)
    unexpected = sorted(set(sd) - used)
    if missing or unexpected:

        def brief(keys):
            return f"{keys[:8]}{f' and {len(keys) - 8} more' if len(keys) > 8 else ''}"

        raise KeyError(
            f"state_dict does not match the WaveNet layout (is the WaveNetConfig right?): "
            f"missing {brief(missing)}, unexpected {brief(unexpected)}"
        )
    own = model.state_dict()
    for k, v in new.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise ValueError(
                f"shape of {k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}; "
                f"is the WaveNetConfig right?"
            )
    model.load_state_dict(new, strict=True)
    return model


@torch.no_grad()
def to_r9y9_state_dict(model: WaveNet) -> OrderedDict[str, torch.Tensor]:
    """Export parameters with the published r9y9 names and order.

    Every convolution gives ``bias``, ``weight_g``, ``weight_v`` (in that order), the
    form the published checkpoint and ``wavenet_vocoder==0.1.1`` use (309 tensors for
    the paper's model). A model without weight norm is exported with g = ||W||, v = W.

    Parameters
    ----------
    model : WaveNet

    Returns
    -------
    collections.OrderedDict of str to torch.Tensor (detached clones)
    """
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, m in _conv_modules(model):
        out[f"{name}.bias"] = m.bias.detach().clone()
        if parametrize.is_parametrized(m, "weight"):
            p = m.parametrizations.weight
            out[f"{name}.weight_g"] = p.original0.detach().clone()
            out[f"{name}.weight_v"] = p.original1.detach().clone()
        else:
            wt = m.weight.detach().clone()
            out[f"{name}.weight_g"] = _norm_except_dim0(wt)
            out[f"{name}.weight_v"] = wt
    return out


def load_r9y9_checkpoint(
    path_or_dict: str | Path | Mapping[str, Any],
    config: WaveNetConfig | None = None,
    *,
    map_location: str | torch.device = "cpu",
    allow_pickle: bool = False,
) -> tuple[WaveNet, dict[str, Any]]:
    """Build a :class:`WaveNet` from an r9y9 checkpoint (see original_code.md#oc-checkpoint).

    The checkpoint is a dict with ``state_dict`` (model or EMA weights), ``optimizer``
    (Adam state or None), ``global_step``, ``global_epoch``, ``global_test_step``; only
    ``state_dict`` is used for the model. A bare state dict is accepted too.

    Files are read with ``torch.load(weights_only=True)``, which handles the published
    files (tensors, numbers, dicts, lists only). If a file pickles other objects that
    raises ``pickle.UnpicklingError``; pass ``allow_pickle=True`` to fall back to full
    unpickling — only for files from a trusted source, since unpickling can run code.

    Parameters
    ----------
    path_or_dict : str, Path or mapping
        Checkpoint file, or the already loaded dict.
    config : WaveNetConfig, optional
        Model hyper-parameters (default: the paper's).
    map_location : str or torch.device
        Where tensors are loaded.
    allow_pickle : bool
        Allow the unsafe fallback described above.

    Returns
    -------
    model : WaveNet
        In eval mode.
    info : dict
        ``global_step``, ``global_epoch``, ``global_test_step`` (None when absent) and
        ``has_optimizer``.
    """
    if isinstance(path_or_dict, Mapping):
        ckpt = path_or_dict
    else:
        path = Path(path_or_dict)
        if not path.is_file():
            raise FileNotFoundError(f"WaveNet checkpoint not found: {path}")
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            if not allow_pickle:
                raise pickle.UnpicklingError(
                    f"{path} holds objects that torch.load(weights_only=True) refuses; if "
                    f"the file is trusted, pass allow_pickle=True ({e})"
                ) from e
            ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if "state_dict" in ckpt:
        sd = ckpt["state_dict"]
    elif any(k.endswith(".bias") for k in ckpt):
        sd = ckpt
    else:
        raise KeyError(f"checkpoint has no 'state_dict'; keys: {sorted(ckpt)[:10]}")
    model = WaveNet(config)
    load_r9y9_state_dict(model, sd)
    model.eval()
    info = {k: ckpt.get(k) for k in ("global_step", "global_epoch", "global_test_step")}
    info["has_optimizer"] = ckpt.get("optimizer") is not None
    return model, info
