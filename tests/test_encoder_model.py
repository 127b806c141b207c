"""Encoder networks, perceptual loss and errors of synthsep_lib.encoder.

See original_code.md#oc-encoder, original_code.md#oc-loss and original_code.md#oc-errors.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from synthsep_lib.config import load_profile
from synthsep_lib.encoder.loss import encoder_errors, perceptual_weights

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from synthsep_lib.encoder.loss import perceptual_loss  # noqa: E402
from synthsep_lib.encoder.model import (  # noqa: E402
    build_encoder,
    count_parameters,
    describe_encoder,
)

PAPER = load_profile("paper").encoder
REDUCED = load_profile("reduced").encoder


@pytest.fixture(scope="module")
def paper_models():
    keras.utils.set_random_seed(0)
    return {variant: build_encoder(variant, PAPER) for variant in ("proposed", "b1")}


@pytest.fixture(scope="module")
def reduced_models():
    keras.utils.set_random_seed(0)
    return {variant: build_encoder(variant, REDUCED) for variant in ("proposed", "b1")}


def _blocks(batch, out_bins, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.random((batch, 64, 512), dtype=np.float32)
    x2 = rng.random((batch, 64, 80), dtype=np.float32)
    y = rng.random((batch, 64, out_bins, 1), dtype=np.float32)
    return [x1, x2], y


# --- architecture -----------------------------------------------------------------


@pytest.mark.parametrize(
    "variant, total, non_trainable, out_bins",
    [("proposed", 4_033_453, 2_342, 80), ("b1", 4_670_789, 2_322, 512)],
)
def test_paper_parameter_counts_and_shapes(paper_models, variant, total, non_trainable, out_bins):
    model = paper_models[variant]
    counts = count_parameters(model)
    assert counts == {
        "total": total,
        "trainable": total - non_trainable,
        "non_trainable": non_trainable,
    }
    assert model.count_params() == total
    assert [tuple(t.shape) for t in model.inputs] == [(None, 64, 512), (None, 64, 80)]
    assert [t.name for t in model.inputs] == ["input1", "input2"]
    assert tuple(model.output.shape) == (None, 64, out_bins, 1)
    # 9 residual units in the hourglass + 1 in the head; projections: 2 (9→64 or 4→64) + head.
    adds = [layer.name for layer in model.layers if layer.name.endswith("_add")]
    units = [name for name in adds if not name.startswith("hg") or name.count("_") == 2]
    assert len(units) == 10
    skips = [layer.name for layer in model.layers if layer.name.endswith("_skip")]
    assert sorted(skips) == ["head_res_skip", "hg1_low1_skip", "hg1_up1_skip"]
    assert model.get_layer("linear_rnn").forward_layer.recurrent_activation.__name__ == "sigmoid"


def test_paper_layer_sizes(paper_models):
    proposed, b1 = paper_models["proposed"], paper_models["b1"]
    assert proposed.get_layer("linear_td").layer.units == 320
    assert proposed.get_layer("mel_td").layer.units == 320
    assert b1.get_layer("linear_td").layer.units == 1024
    assert b1.get_layer("mel_td").layer.units == 512
    assert tuple(proposed.get_layer("stack").output.shape) == (None, 64, 80, 9)
    assert tuple(b1.get_layer("stack").output.shape) == (None, 64, 512, 4)
    assert tuple(proposed.get_layer("hg3_low1_add").output.shape) == (None, 8, 10, 64)
    assert tuple(b1.get_layer("hg3_low1_add").output.shape) == (None, 8, 64, 64)
    lstm = proposed.get_layer("mel_rnn").forward_layer
    assert (lstm.units, lstm.dropout, lstm.recurrent_dropout) == (200, 0.25, 0.25)


def test_reduced_models_are_small(reduced_models):
    counts = {variant: count_parameters(m) for variant, m in reduced_models.items()}
    print("reduced encoder parameters:", counts)
    assert counts["proposed"]["total"] <= 500_000
    assert counts["b1"]["total"] <= 600_000
    assert tuple(reduced_models["proposed"].output.shape) == (None, 64, 80, 1)
    assert tuple(reduced_models["b1"].output.shape) == (None, 64, 512, 1)


@pytest.mark.parametrize("variant", ["proposed", "b1"])
def test_stack_order_and_reshape(reduced_models, variant):
    """H = [linear stream, mel stream, third input]; Dense unit j → bin j//c, channel j%c."""
    model = reduced_models[variant]
    probe = keras.Model(
        model.inputs,
        [model.get_layer(name).output for name in ("linear_td", "linear_reshape", "stack")],
    )
    out_bins = 80 if variant == "proposed" else 512
    inputs, _ = _blocks(2, out_bins)
    td, reshaped, stack = (np.asarray(a) for a in probe(inputs, training=False))
    channels = reshaped.shape[-1]
    for j in (0, 1, channels + 1, td.shape[-1] - 1):
        np.testing.assert_array_equal(reshaped[:, :, j // channels, j % channels], td[:, :, j])
    np.testing.assert_array_equal(stack[..., :channels], reshaped)
    third = inputs[1] if variant == "proposed" else inputs[0]
    np.testing.assert_array_equal(stack[..., -1], third)


def test_prediction_is_in_unit_interval(reduced_models):
    inputs, _ = _blocks(2, 80)
    out = np.asarray(reduced_models["proposed"](inputs, training=False))
    assert out.shape == (2, 64, 80, 1)
    assert np.all((out > 0) & (out < 1))


# Keras 3.15 converts TF variables with np.array(x) when saving (a numpy 2 deprecation).
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_save_and_load_round_trip(reduced_models, tmp_path):
    model = reduced_models["b1"]
    path = tmp_path / "b1.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    inputs, _ = _blocks(1, 512)
    np.testing.assert_allclose(
        np.asarray(loaded(inputs, training=False)), np.asarray(model(inputs, training=False))
    )
    assert count_parameters(loaded) == count_parameters(model)
    assert list(describe_encoder(loaded)["block"]) == list(describe_encoder(model)["block"])


def test_describe_encoder(paper_models):
    model = paper_models["proposed"]
    table = describe_encoder(model)
    assert table["parameters"].sum() == count_parameters(model)["total"]
    rows = table.set_index("block")
    assert rows.loc["linear_rnn", "parameters"] == 2 * 4 * (400 * (512 + 400) + 400)
    assert rows.loc["hg3_low1", "output shape"] == (8, 10, 64)
    assert rows.loc["hg1_low3", "output shape"] == (64, 80, 64)
    assert rows.loc["head_res", "layers"] == "residual 65→64 (1×1 projection skip)"
    assert list(table["block"][:5]) == [
        "input1",
        "input2",
        "linear_rnn",
        "linear_td",
        "linear_reshape",
    ]
    hourglass = [b for b in table["block"] if b.startswith("hg")]
    assert hourglass == [
        "hg1_up1", "hg1_low1", "hg2_up1", "hg2_low1", "hg3_up1", "hg3_low1",
        "hg3_low3", "hg2_low3", "hg1_low3",
    ]  # fmt: skip


def test_bad_configurations():
    with pytest.raises(ValueError, match="unknown encoder variant"):
        build_encoder("mel", REDUCED)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*3 = 8"):
        build_encoder("proposed", REDUCED, block_frames=60)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*5"):
        build_encoder("proposed", dataclasses.replace(REDUCED, hourglass_depth=5))
    with pytest.raises(ValueError, match="must be even"):
        build_encoder("b1", dataclasses.replace(REDUCED, hourglass_filters=15))
    with pytest.raises(ValueError, match="mel_lstm_units must be a positive integer"):
        build_encoder("b1", dataclasses.replace(REDUCED, mel_lstm_units=0))


# --- loss -------------------------------------------------------------------------

# Two blocks of 1 frame × 2 bins, by hand:
# block 0: X = [0.5, 0], X̂ = [0.25, 0.5]; f(X) = [0.25, 0], f(X̂) = [0.0625, 0.25]
#   w = [0.25 + 0.75·0.0625, 0 + 1·0.25] = [0.296875, 0.25]; (X̂ − X)² = [0.0625, 0.25]
#   Σ w(X̂ − X)² = 0.0185546875 + 0.0625 = 0.0810546875; Σ w = 0.546875
# block 1: X = [1, 0], X̂ = [0, 0]; w = [1, 0]; Σ w(X̂ − X)² = 1; Σ w = 1
TARGET = np.array([[[[0.5], [0.0]]], [[[1.0], [0.0]]]], dtype=np.float32)
ESTIMATE = np.array([[[[0.25], [0.5]]], [[[0.0], [0.0]]]], dtype=np.float32)
HAND_LOSS = np.array([0.0810546875 / (0.546875 + 1e-7), 1.0 / (1.0 + 1e-7)])


def test_perceptual_weights_by_hand():
    w = perceptual_weights(TARGET[0, 0, :, 0], ESTIMATE[0, 0, :, 0])
    np.testing.assert_allclose(w, [0.296875, 0.25], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        perceptual_weights(np.zeros(3), np.zeros(4))


def test_perceptual_loss_by_hand():
    per_block = np.asarray(perceptual_loss(TARGET, ESTIMATE))
    np.testing.assert_allclose(per_block, HAND_LOSS, rtol=0, atol=1e-6)
    # compile() averages the per-block values over the batch.
    inputs = keras.Input(shape=ESTIMATE.shape[1:])
    identity = keras.Model(inputs, keras.layers.Identity()(inputs))
    identity.compile(loss=perceptual_loss)
    mean = identity.evaluate(ESTIMATE, TARGET, batch_size=2, verbose=0)
    assert abs(float(mean) - HAND_LOSS.mean()) < 1e-6
    # A 3-channel y_true (the original's layout) uses channel 0 only.
    wide = np.concatenate([TARGET, np.ones_like(TARGET), np.ones_like(TARGET)], axis=-1)
    np.testing.assert_allclose(np.asarray(perceptual_loss(wide, ESTIMATE)), per_block)


def test_perceptual_loss_gradient_flows_through_the_weights():
    from keras import ops

    def stopped(y_true, y_pred):
        x = y_true[..., :1]
        w = x * x + (1 - x * x) * ops.square(ops.stop_gradient(y_pred))
        return ops.sum(w * ops.square(y_pred - x), axis=(1, 2, 3)) / (
            ops.sum(w, axis=(1, 2, 3)) + 1e-7
        )

    rng = np.random.default_rng(1)
    y_true = rng.random((2, 4, 3, 1))
    y_pred = tf.Variable(rng.random((2, 4, 3, 1)))
    grads = []
    for fn in (perceptual_loss, stopped):
        with tf.GradientTape() as tape:
            loss = ops.sum(fn(y_true, y_pred))
        grads.append(tape.gradient(loss, y_pred).numpy())
    assert np.max(np.abs(grads[0] - grads[1])) > 1e-3

    # The full gradient matches central differences of the numpy formula.
    def numpy_loss(pred):
        w = perceptual_weights(y_true, pred)
        return np.sum(np.sum(w * (pred - y_true) ** 2, axis=(1, 2, 3)) / (w.sum((1, 2, 3)) + 1e-7))

    base, h = y_pred.numpy(), 1e-6
    for index in [(0, 0, 0, 0), (1, 3, 2, 0), (0, 2, 1, 0)]:
        up, down = base.copy(), base.copy()
        up[index] += h
        down[index] -= h
        numeric = (numpy_loss(up) - numpy_loss(down)) / (2 * h)
        assert abs(grads[0][index] - numeric) < 1e-6


# --- e1, e2 -----------------------------------------------------------------------


def test_encoder_errors_by_hand():
    # Y = [[0.5, 0]], Ŷ = [[0.25, 0.5]]: ‖Y − Ŷ‖² = 0.3125, ‖Y‖² = 0.25 → e1 = 1.25;
    # e2 = 0.0810546875 / 0.546875 (code); paper Eq. 2: / Σ w Y² = 0.296875 · 0.25.
    y, y_hat = np.array([[0.5, 0.0]]), np.array([[0.25, 0.5]])
    e1, e2 = encoder_errors(y, y_hat)
    assert e1 == pytest.approx(1.25, abs=1e-12)
    assert e2 == pytest.approx(0.0810546875 / 0.546875, abs=1e-12)
    _, e2_paper = encoder_errors(y, y_hat, e2_definition="paper")
    assert e2_paper == pytest.approx(0.0810546875 / 0.07421875, abs=1e-12)
    assert encoder_errors(y, y) == (0.0, 0.0)
    with pytest.raises(ValueError, match="all zeros"):
        encoder_errors(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        encoder_errors(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="e2_definition"):
        encoder_errors(y, y_hat, e2_definition="eq2")


# --- training ---------------------------------------------------------------------


def test_paper_proposed_train_step(paper_models):
    model = paper_models["proposed"]
    model.compile(keras.optimizers.Adam(1e-3), perceptual_loss)
    inputs, y = _blocks(2, 80, seed=3)
    loss = model.train_on_batch(inputs, y)
    loss = float(np.ravel(loss)[0])
    assert np.isfinite(loss) and 0 < loss < 1


# --- import hygiene ---------------------------------------------------------------


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, synthsep_lib, synthsep_lib.encoder\n"
        "from synthsep_lib.encoder import encoder_errors\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
