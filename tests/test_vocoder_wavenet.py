"""WaveNet vocoder: layout, numbers, and equality with r9y9's wavenet_vocoder 0.1.1.

The reference is installed with
``python -m pip install --no-deps wavenet_vocoder==0.1.1``; tests needing it are skipped
when it is missing.
"""

from __future__ import annotations

import math
import pickle
import warnings

import pytest

torch = pytest.importorskip("torch")

from synthsep_lib.vocoder.logistic_mixture import (  # noqa: E402
    LOG_SCALE_MIN,
    discretized_mix_logistic_loss,
    mixture_pdf,
    sample_from_discretized_mix_logistic,
)
from synthsep_lib.vocoder.wavenet import (  # noqa: E402
    WaveNet,
    WaveNetConfig,
    load_r9y9_checkpoint,
    load_r9y9_state_dict,
    to_r9y9_state_dict,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ref():
    """The reference package, with its deprecation warnings silenced."""
    wv = pytest.importorskip("wavenet_vocoder")
    if getattr(wv, "__version__", None) != "0.1.1":
        pytest.skip(f"need wavenet_vocoder 0.1.1, found {getattr(wv, '__version__', None)}")
    from wavenet_vocoder import mixture as ref_mixture

    return wv, ref_mixture


def build_reference(wv, cfg: WaveNetConfig, seed: int = 0):
    """r9y9 WaveNet with ``cfg`` and random (non-default) weights, in eval mode."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = wv.WaveNet(
            out_channels=cfg.out_channels,
            layers=cfg.layers,
            stacks=cfg.stacks,
            residual_channels=cfg.residual_channels,
            gate_channels=cfg.gate_channels,
            skip_out_channels=cfg.skip_out_channels,
            kernel_size=cfg.kernel_size,
            dropout=cfg.dropout,
            cin_channels=cfg.cin_channels,
            weight_normalization=cfg.weight_normalization,
            upsample_conditional_features=True,
            upsample_scales=cfg.upsample_scales,
            freq_axis_kernel_size=cfg.freq_axis_kernel_size,
            scalar_input=not cfg.mulaw,
            legacy=cfg.legacy,
        )
    with torch.no_grad():
        for p in m.parameters():  # move away from the deterministic init (1/3, zero bias)
            p.add_(0.05 * torch.randn_like(p))
    return m.eval()


def ours_from(ref_model, cfg):
    model = WaveNet(cfg)
    load_r9y9_state_dict(model, ref_model.state_dict())
    return model.eval()


def inputs(cfg, b, n_frames, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 1, n_frames * cfg.hop_size, generator=g) * 1.6 - 0.8
    c = torch.rand(b, cfg.cin_channels, n_frames, generator=g)
    return x, c


# ----------------------------------------------------------------- numbers and layout
def test_paper_config_numbers():
    cfg = WaveNetConfig.paper()
    assert cfg.receptive_field == 505
    assert cfg.hop_size == 256
    assert cfg.log_scale_min == pytest.approx(-32.23619130191664, abs=1e-12)
    model = WaveNet(cfg)
    assert model.num_parameters() == 24_737_396
    assert model.receptive_field == 505
    sd = to_r9y9_state_dict(model)
    assert len(sd) == 309
    assert tuple(sd["conv_layers.0.conv.weight_v"].shape) == (512, 512, 3)
    assert tuple(sd["conv_layers.23.conv1x1c.weight_v"].shape) == (512, 80, 1)
    assert tuple(sd["conv_layers.5.conv1x1_skip.weight_g"].shape) == (256, 1, 1)
    assert tuple(sd["last_conv_layers.3.weight_v"].shape) == (30, 256, 1)
    assert tuple(sd["upsample_conv.6.weight_v"].shape) == (1, 1, 3, 4)
    assert list(sd)[:3] == ["first_conv.bias", "first_conv.weight_g", "first_conv.weight_v"]
    assert [layer.dilation for layer in model.conv_layers[:7]] == [1, 2, 4, 8, 16, 32, 1]


def test_config_roundtrip_and_bad_values():
    cfg = WaveNetConfig.small()
    assert WaveNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="multiple of stacks"):
        WaveNetConfig(layers=5, stacks=2)
    with pytest.raises(ValueError, match="unknown WaveNetConfig keys"):
        WaveNetConfig.from_dict({"layer": 3})


def test_forward_shape_errors():
    cfg = WaveNetConfig.small()
    model = WaveNet(cfg).eval()
    x, c = inputs(cfg, 2, 2)
    assert model(x, c).shape == (2, 30, 512)
    with pytest.raises(ValueError, match="hop"):
        model(x[:, :, :-1], c)
    with pytest.raises(ValueError, match="c must have shape"):
        model(x, c[:, :40])


def test_causality():
    cfg = WaveNetConfig.small()
    model = WaveNet(cfg).eval()
    x, c = inputs(cfg, 1, 2)
    y1 = model(x, c)
    x2 = x.clone()
    x2[:, :, 300:] = 0.0
    y2 = model(x2, c)
    torch.testing.assert_close(y1[:, :, :300], y2[:, :, :300])
    assert not torch.allclose(y1[:, :, 300:], y2[:, :, 300:])


# ------------------------------------------------------------ equality with reference
@pytest.mark.parametrize("which", ["small", "paper"])
def test_forward_matches_reference(ref, which):
    wv, _ = ref
    cfg = getattr(WaveNetConfig, which)()
    ref_model = build_reference(wv, cfg)
    model = ours_from(ref_model, cfg)
    x, c = inputs(cfg, 2 if which == "small" else 1, 2)
    with torch.no_grad():
        expected = ref_model(x, c)
        got = model(x, c)
    assert got.shape == (x.size(0), 30, x.size(-1))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_published_naming_roundtrip(ref):
    wv, _ = ref
    cfg = WaveNetConfig.small()
    ref_model = build_reference(wv, cfg, seed=3)
    ref_sd = ref_model.state_dict()
    assert any(k.endswith("weight_g") for k in ref_sd)
    model = ours_from(ref_model, cfg)
    exported = to_r9y9_state_dict(model)
    assert list(exported) == list(ref_sd)
    for k in ref_sd:
        torch.testing.assert_close(exported[k], ref_sd[k], atol=0, rtol=0)
    # our weights -> reference
    mine = WaveNet(cfg).eval()
    with torch.no_grad():
        for p in mine.parameters():
            p.add_(0.05 * torch.randn_like(p))
    other = build_reference(wv, cfg, seed=4)
    other.load_state_dict(to_r9y9_state_dict(mine), strict=True)
    x, c = inputs(cfg, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(mine(x, c), other(x, c), atol=1e-5, rtol=1e-5)


def test_load_variants_and_errors(tmp_path):
    cfg = WaveNetConfig.small()
    src = WaveNet(cfg).eval()
    x, c = inputs(cfg, 1, 1)
    with torch.no_grad():
        y = src(x, c)
    # new-style names (our own state_dict) and a DataParallel prefix
    a = load_r9y9_state_dict(WaveNet(cfg), {f"module.{k}": v for k, v in src.state_dict().items()})
    # a model without weight norm takes the folded weights
    plain_cfg = WaveNetConfig.from_dict({**cfg.to_dict(), "weight_normalization": False})
    b = load_r9y9_state_dict(WaveNet(plain_cfg), to_r9y9_state_dict(src))
    # and plain weights load back into a weight-normed model
    d = load_r9y9_state_dict(WaveNet(cfg), b.state_dict())
    with torch.no_grad():
        for m in (a, b, d):
            torch.testing.assert_close(m.eval()(x, c), y, atol=1e-5, rtol=1e-5)
    sd = to_r9y9_state_dict(src)
    sd.pop("first_conv.bias")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(KeyError, match="first_conv.bias.*extra.weight"):
        load_r9y9_state_dict(WaveNet(cfg), sd)
    with pytest.raises(ValueError, match="shape of"):
        load_r9y9_state_dict(
            WaveNet(WaveNetConfig.from_dict({**cfg.to_dict(), "residual_channels": 32})),
            to_r9y9_state_dict(src),
        )
    with pytest.raises(KeyError, match="and .* more"):
        load_r9y9_state_dict(WaveNet(WaveNetConfig()), to_r9y9_state_dict(src))
    # checkpoint file in the published format
    path = tmp_path / "checkpoint_step000000010_ema.pth"
    opt = torch.optim.Adam(src.parameters())
    torch.save(
        {
            "state_dict": to_r9y9_state_dict(src),
            "optimizer": opt.state_dict(),
            "global_step": 10,
            "global_epoch": 1,
            "global_test_step": 0,
        },
        path,
    )
    model, info = load_r9y9_checkpoint(path, cfg)
    assert info == {
        "global_step": 10,
        "global_epoch": 1,
        "global_test_step": 0,
        "has_optimizer": True,
    }
    assert not model.training
    with torch.no_grad():
        torch.testing.assert_close(model(x, c), y, atol=1e-6, rtol=1e-6)
    with pytest.raises(FileNotFoundError):
        load_r9y9_checkpoint(tmp_path / "missing.pth", cfg)
    # a file with arbitrary pickled objects needs allow_pickle
    odd = tmp_path / "odd.pth"
    torch.save({"state_dict": to_r9y9_state_dict(src), "hparams": WaveNetConfig()}, odd)
    with pytest.raises(pickle.UnpicklingError, match="allow_pickle"):
        load_r9y9_checkpoint(odd, cfg)
    model, _ = load_r9y9_checkpoint(odd, cfg, allow_pickle=True)


# ------------------------------------------------------------------------- mixture
def random_mixture(b, t, k=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    y_hat = torch.randn(b, 3 * k, t, generator=g)
    y_hat[:, k : 2 * k] *= 0.5  # means
    y_hat[:, 2 * k :] = y_hat[:, 2 * k :] * 3 - 5  # log-scales, some below -7
    y = torch.rand(b, t, 1, generator=g) * 2 - 1
    y[0, :3, 0] = torch.tensor([-1.0, 1.0, 0.9995])  # edge bins
    return y_hat, y


def test_mixture_loss_matches_reference(ref):
    _, ref_mixture = ref
    y_hat, y = random_mixture(3, 200)
    for n_cls, lsm in [(65536, LOG_SCALE_MIN), (256, -7.0)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp_none = ref_mixture.discretized_mix_logistic_loss(y_hat, y, n_cls, lsm, False)
            exp_sum = ref_mixture.discretized_mix_logistic_loss(y_hat, y, n_cls, lsm, True)
        got_none = discretized_mix_logistic_loss(y_hat, y, n_cls, lsm, reduce=False)
        got_sum = discretized_mix_logistic_loss(y_hat, y[..., 0], n_cls, lsm)
        assert got_none.shape == (3, 200, 1)
        torch.testing.assert_close(got_none, exp_none, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got_sum, exp_sum, atol=1e-3, rtol=1e-5)
    with pytest.raises(ValueError, match="y must have shape"):
        discretized_mix_logistic_loss(y_hat, y[:, :10])
    with pytest.raises(ValueError, match="3K"):
        discretized_mix_logistic_loss(y_hat[:, :29], y)


def test_mixture_sampling_matches_reference(ref):
    _, ref_mixture = ref
    y_hat, _ = random_mixture(2, 50, seed=5)
    torch.manual_seed(42)
    expected = ref_mixture.sample_from_discretized_mix_logistic(y_hat, LOG_SCALE_MIN)
    got = sample_from_discretized_mix_logistic(
        y_hat, LOG_SCALE_MIN, generator=torch.Generator().manual_seed(42)
    )
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    # explicit uniforms reproduce the generator's draws
    gen = torch.Generator().manual_seed(42)
    u_mix = torch.empty(2, 50, 10).uniform_(1e-5, 1 - 1e-5, generator=gen)
    u_log = torch.empty(2, 50).uniform_(1e-5, 1 - 1e-5, generator=gen)
    got_u = sample_from_discretized_mix_logistic(y_hat, LOG_SCALE_MIN, uniforms=(u_mix, u_log))
    torch.testing.assert_close(got_u, got, atol=0, rtol=0)
    assert got.abs().max() <= 1.0
    one = sample_from_discretized_mix_logistic(y_hat[:, :, 0], generator=gen)
    assert one.shape == (2,)


def test_mixture_pdf_sums_to_one():
    k = 10
    y = torch.zeros(3 * k)
    y[:k] = torch.linspace(-1, 1, k)
    y[k : 2 * k] = torch.linspace(-0.5, 0.5, k)
    y[2 * k :] = -4.0
    n_cls = 256
    grid = torch.linspace(-1, 1, n_cls)  # one point per bin centre
    g, p = mixture_pdf(y, grid, num_classes=n_cls)
    assert g.shape == p.shape == (n_cls,)
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-4)
    _, pd = mixture_pdf(torch.stack([y, y]), grid, num_classes=n_cls, density=True)
    assert pd.shape == (2, n_cls)
    torch.testing.assert_close(pd[1] * 2 / (n_cls - 1), p)


# ---------------------------------------------------------------------- generation
def deep_config():
    """Small channels but 12 layers in 2 stacks: dilations up to 32, as in the paper."""
    return WaveNetConfig.from_dict({**WaveNetConfig.small().to_dict(), "layers": 12})


@pytest.mark.parametrize("which", ["small", "deep"])
def test_generation_matches_reference(ref, which):
    wv, _ = ref
    cfg = WaveNetConfig.small() if which == "small" else deep_config()
    ref_model = build_reference(wv, cfg, seed=7)
    model = ours_from(ref_model, cfg)
    n_frames = 2 if which == "small" else 1
    _, c = inputs(cfg, 1, n_frames, seed=8)
    n = 256 * n_frames
    torch.manual_seed(1234)
    with torch.no_grad():
        expected = ref_model.incremental_forward(
            c=c, T=n, softmax=False, quantize=False, log_scale_min=LOG_SCALE_MIN
        )
    got = model.generate(c, generator=torch.Generator().manual_seed(1234), chunk_size=100)
    assert got.shape == (1, n)
    assert got.std() > 0.01  # a real signal, not a constant
    torch.testing.assert_close(got, expected.view(1, -1), atol=1e-5, rtol=0)


def test_cached_generation_equals_naive_deep():
    cfg = deep_config()
    assert cfg.receptive_field == 2 * 2 * 63 + 1
    torch.manual_seed(13)
    model = WaveNet(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    _, c = inputs(cfg, 3, 1, seed=14)
    cached = model.generate(c, generator=torch.Generator().manual_seed(6))
    naive = model.generate_naive(c, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(cached, naive, atol=1e-5, rtol=0)


def test_import_without_torch():
    import subprocess
    import sys

    code = "import sys, synthsep_lib, synthsep_lib.vocoder; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cached_generation_equals_naive():
    cfg = WaveNetConfig.small()
    torch.manual_seed(11)
    model = WaveNet(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    _, c = inputs(cfg, 2, 1, seed=12)
    model.train()  # generation must switch to eval itself and restore the mode
    cached = model.generate(c, generator=torch.Generator().manual_seed(5), chunk_size=100)
    assert model.training
    naive = model.generate_naive(c, generator=torch.Generator().manual_seed(5))
    assert cached.shape == naive.shape == (2, 256)
    torch.testing.assert_close(cached, naive, atol=1e-5, rtol=0)
    # a different first input changes the result; the same seed reproduces it
    other = model.generate(c, generator=torch.Generator().manual_seed(5), initial_input=0.5)
    again = model.generate(c, generator=torch.Generator().manual_seed(5), initial_input=0.5)
    torch.testing.assert_close(other, again, atol=0, rtol=0)
    assert not torch.allclose(other, cached)
    with pytest.raises(ValueError, match="initial_input"):
        model.generate(c, initial_input=torch.zeros(3))


def test_legacy_flag_changes_skip_rule():
    cfg = WaveNetConfig.small()
    torch.manual_seed(0)
    m_legacy = WaveNet(cfg).eval()
    m_sum = WaveNet(WaveNetConfig.from_dict({**cfg.to_dict(), "legacy": False})).eval()
    m_sum.load_state_dict(m_legacy.state_dict())
    x, c = inputs(cfg, 1, 1)
    with torch.no_grad():
        assert not torch.allclose(m_legacy(x, c), m_sum(x, c))
    assert math.isclose(cfg.log_scale_min, math.log(1e-14))


# --------------------------------------------------------------------- mu-law output
def mulaw_config():
    small = WaveNetConfig.small().to_dict()
    return WaveNetConfig.from_dict(
        {**small, "input_type": "mulaw-quantize", "quantize_channels": 256, "out_channels": 256}
    )


def test_mulaw_quantize_matches_r9y9_formulas():
    from synthsep_lib.vocoder.mulaw import inv_mulaw_quantize, mulaw_quantize

    x = torch.linspace(-1, 1, 10001)
    q = mulaw_quantize(x)
    assert q.min() == 0 and q.max() == 255
    assert int(mulaw_quantize(torch.tensor(0.0))) == 127  # r9y9's initial input
    # r9y9 (nnmnkwii): y = sign(x) log1p(mu|x|)/log1p(mu); q = int((y + 1)/2 mu)
    mu = 255
    y = torch.sign(x.double()) * torch.log1p(mu * x.double().abs()) / math.log1p(mu)
    assert torch.equal(q, ((y + 1) / 2 * mu).long())
    # r9y9 truncates, so an expanded class sits on a bin edge: re-quantising it may land
    # one class lower (why generation keeps class indices, never re-quantised audio)
    classes = torch.arange(256)
    assert (mulaw_quantize(inv_mulaw_quantize(classes)) - classes).abs().max() <= 1
    assert float((inv_mulaw_quantize(q) - x).abs().max()) < 0.05


def test_mulaw_config_errors():
    with pytest.raises(ValueError, match="out_channels = quantize_channels"):
        WaveNetConfig(input_type="mulaw-quantize", quantize_channels=256, out_channels=30)
    with pytest.raises(ValueError, match="input_type"):
        WaveNetConfig(input_type="mulaw")


def test_mulaw_forward_matches_reference(ref):
    wv, _ = ref
    cfg = mulaw_config()
    ref_model = build_reference(wv, cfg)
    model = ours_from(ref_model, cfg)
    audio, c = inputs(cfg, 2, 2)
    x = model.model_input(audio[:, 0])
    assert x.shape == (2, 256, 512) and torch.equal(x.sum(1), torch.ones(2, 512))
    with torch.no_grad():
        torch.testing.assert_close(model(x, c), ref_model(x, c), atol=1e-5, rtol=1e-5)


def test_mulaw_loss_is_cross_entropy_of_the_classes():
    from synthsep_lib.vocoder.mulaw import mulaw_quantize

    cfg = mulaw_config()
    model = WaveNet(cfg)
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 256, 50, generator=g)
    target = torch.rand(2, 50, generator=g) * 2 - 1
    mask = torch.ones(2, 50)
    mask[1, 30:] = 0
    expected = torch.nn.functional.cross_entropy(
        logits[0].t(), mulaw_quantize(target[0]), reduction="sum"
    ) + torch.nn.functional.cross_entropy(
        logits[1, :, :30].t(), mulaw_quantize(target[1, :30]), reduction="sum"
    )
    torch.testing.assert_close(model.loss(logits, target, mask), expected / 80)


def test_mulaw_cached_generation_equals_naive():
    cfg = WaveNetConfig.from_dict({**mulaw_config().to_dict(), "layers": 8})
    torch.manual_seed(21)
    model = WaveNet(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    _, c = inputs(cfg, 2, 1, seed=22)
    cached = model.generate(c, generator=torch.Generator().manual_seed(4), chunk_size=100)
    naive = model.generate_naive(c, generator=torch.Generator().manual_seed(4))
    assert cached.shape == (2, 256) and cached.std() > 0.01
    torch.testing.assert_close(cached, naive, atol=0, rtol=0)


@pytest.mark.parametrize("which", ["raw", "mulaw"])
def test_predicted_density_integrates_to_one(which):
    cfg = WaveNetConfig.small() if which == "raw" else mulaw_config()
    torch.manual_seed(5)
    model = WaveNet(cfg)
    audio, c = inputs(cfg, 1, 2, seed=6)
    grid = torch.linspace(-1, 1, 20001)
    grid_out, density = model.predicted_density(audio[0, 0], c[0], [10, 300], grid)
    assert density.shape == (2, 20001) and (density >= 0).all()
    inner = grid_out.abs() <= 0.999  # r9y9's edge bins (|y| > 0.999) hold the tails
    mass = torch.trapezoid(density[:, inner], grid_out[inner], dim=-1)
    if which == "raw":  # add the tails' mass (density x bin width)
        mass = mass + (density[:, 0] + density[:, -1]) * 2 / 65535
    torch.testing.assert_close(mass, torch.ones(2), atol=0.01, rtol=0)
    # the density at step t is the model's prediction for sample t + 1 (teacher forced)
    y_hat = model.eval()(model.model_input(audio[:, 0]), c)
    if which == "mulaw":
        from synthsep_lib.vocoder.mulaw import mulaw_quantize

        q = mulaw_quantize(torch.tensor(0.3))
        p = torch.softmax(y_hat[0, :, 300], 0)[q]
        lo, hi = grid_out[mulaw_quantize(grid_out) == q][[0, -1]]
        torch.testing.assert_close(
            torch.trapezoid(
                density[1][(grid_out >= lo) & (grid_out <= hi)],
                grid_out[(grid_out >= lo) & (grid_out <= hi)],
            ),
            p,
            atol=0.02,
            rtol=0.05,
        )


@pytest.mark.parametrize("which", ["raw", "mulaw"])
def test_fixed_address_steps_equal_ring_buffer_generation(which):
    """The shifted windows a CUDA graph replays give what the ring buffers give."""
    from synthsep_lib.vocoder.wavenet import _Stepper

    base = deep_config() if which == "raw" else mulaw_config()
    cfg = WaveNetConfig.from_dict({**base.to_dict(), "layers": 8})
    torch.manual_seed(31)
    model = WaveNet(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    _, c = inputs(cfg, 2, 1, seed=32)
    expected = model.generate(c, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        stepper = _Stepper(model, 2, c.device, c.dtype, fixed_addresses=True)
        c_up = model.upsample(c).transpose(1, 2)
        cond = stepper.conditioning(c_up)
        state = stepper.initial_state(torch.zeros(2))
        gen = torch.Generator().manual_seed(9)
        got = torch.empty_like(expected)
        for t in range(c_up.size(1)):
            state, got[:, t] = stepper.eager_step(t, state, cond[:, :, t], gen)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        model.generate(c, cuda_graph=True)
