"""The shared figures draw what they are given (axes, lines, images)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from synthsep_lib import plots  # noqa: E402

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_signal_grid_has_three_rows_per_signal():
    names = ["target", "noise", "mixture"]
    signals = {n: RNG.standard_normal(2560) for n in names}
    fig = plots.plot_signal_grid(
        signals,
        {n: RNG.random((10, 512)) for n in names},
        {n: RNG.random((10, 80)) for n in names},
        22050,
        256,
    )
    assert len(fig.axes) == 9 + 1  # 3 × 3 panels and the colour bar
    assert [fig.axes[i].get_title() for i in range(3)] == names


def test_histograms_mark_each_mean():
    fig = plots.plot_histograms({"a": [1.0, 2.0, 3.0], "b": [5.0, 6.0]}, "SNR (dB)")
    ax = fig.axes[0]
    assert sorted(round(line.get_xdata()[0], 6) for line in ax.lines) == [2.0, 5.5]


def test_block_layout_draws_one_bar_per_block():
    fig = plots.plot_block_layout(90, [3, 20], [0, 26])
    assert len(fig.axes[0].patches) == 4


def test_delay_sensitivity_panels():
    table = pd.DataFrame(
        {"stoi": [1.0, 0.5], "stoi aligned": [1.0, 1.0], "lag found": [0, 64]},
        index=pd.Index([0, 64]),
    )
    fig = plots.plot_delay_sensitivity(table, ["stoi"], search_samples=1102)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 3


def test_grouped_bars_and_spectrograms_and_curves_and_weights():
    frame = pd.DataFrame(
        {"input": [0.8, 0.9], "ibm-gt": [0.95, 0.97]}, index=pd.Index(["rain", "wind"], name="x")
    )
    assert len(plots.plot_grouped_bars(frame, "STOI").axes[0].patches) == 4
    fig = plots.plot_spectrograms(
        {"a": RNG.random((20, 80)), "b": RNG.random((20, 80))}, 22050, 256
    )
    assert len(fig.axes) == 3
    history = pd.DataFrame({"epoch": [0, 1], "loss": [0.1, 0.05], "val_loss": [0.12, 0.07]})
    assert len(plots.plot_training_curves({"proposed": history}).axes[0].lines) == 2
    grid = np.linspace(0, 1, 11)
    assert len(plots.plot_weight_map(np.outer(grid, grid), grid).axes) == 2


def test_listening_distribution_stacks_categories_and_labels_simulated_answers():
    scale = ["Worse", "Slightly worse", "Not sure", "Slightly better", "Better"]
    index = pd.MultiIndex.from_tuples(
        [("Proposed vs B1", "naturalness"), ("Proposed vs B1", "preference")],
        names=["comparison", "attribute"],
    )
    distribution = pd.DataFrame(
        [[0, 5, 7, 41, 47], [10, 10, 20, 30, 30]], index=index, columns=scale
    ).assign(n=[320, 320], simulated=[False, False])
    means = pd.DataFrame(
        {"mean": [4.29, 3.6], "ci_low": [4.2, 3.4], "ci_high": [4.4, 3.8]}, index=index
    )
    fig = plots.plot_listening_distribution(distribution, means, title="Fig. 3")
    ax = fig.axes[0]
    assert len(ax.patches) == 10  # 5 categories x 2 bars
    widths = [p.get_width() for p in ax.patches]
    assert widths[-2:] == [47, 30]  # the "Better" segments, drawn last
    texts = [t.get_text() for t in ax.texts]
    assert "mean 4.29 [4.20, 4.40]" in texts and "41" in texts and "0" not in texts
    assert ax.get_title() == "Fig. 3"
    simulated = plots.plot_listening_distribution(distribution.assign(simulated=[True, False]))
    assert "SIMULATED" in simulated.axes[0].get_title()


def test_training_curves_by_step():
    history = pd.DataFrame({"step": np.arange(100), "loss": np.linspace(5, 3, 100)})
    fig = plots.plot_training_curves({"wavenet": history}, ["loss"], x="step", log_y=False)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "step" and ax.get_yscale() == "linear"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(1, 101))


def test_receptive_field_reaches_back_by_the_sum_of_dilations():
    fig = plots.plot_receptive_field([1, 2, 4], kernel_size=2)
    ax = fig.axes[0]
    # the highlighted inputs (last scatter) are the 8 newest samples
    inputs = ax.collections[-1].get_offsets()
    assert len(inputs) == 8 and inputs[:, 0].max() - inputs[:, 0].min() == 7
    assert "last 8 inputs" in ax.get_xlabel()
    assert len(ax.lines) == 2 + 4 + 8  # taps feeding the output, top layer first


def test_predicted_distributions_one_panel_per_step():
    grid = np.linspace(-1, 1, 50)
    densities = np.stack([np.exp(-((grid - m) ** 2) * 30) for m in (-0.5, 0.0, 0.5)])
    fig = plots.plot_predicted_distributions(grid, densities, [-0.4, 0.1, 0.6], ["a", "b", "c"])
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    assert fig.axes[2].lines[-1].get_xdata()[0] == pytest.approx(0.6)
