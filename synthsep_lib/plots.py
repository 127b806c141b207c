"""Figures used by several chapters. Functions take numpy arrays and return the figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "plot_signal_grid",
    "plot_listening_distribution",
    "plot_histograms",
    "plot_block_layout",
    "plot_delay_sensitivity",
    "plot_grouped_bars",
    "plot_metric_curves",
    "plot_spectrograms",
    "plot_training_curves",
    "plot_receptive_field",
    "plot_predicted_distributions",
    "plot_weight_map",
]


def plot_signal_grid(
    signals: Mapping[str, np.ndarray],
    linear: Mapping[str, np.ndarray],
    mel: Mapping[str, np.ndarray],
    sample_rate: int,
    hop_size: int,
    title: str | None = None,
):
    """Waveform, linear spectrum and mel spectrum of several signals, one column each.

    Parameters
    ----------
    signals : mapping name -> (n,) float
        Waveforms at ``sample_rate`` Hz, all of the same length.
    linear, mel : mapping name -> (T, F) float in [0, 1]
        Normalised linear (F = 512) and mel (F = 80) spectra, same keys as ``signals``.
    sample_rate : int
        Hz.
    hop_size : int
        Samples per frame, for the time axis of the spectra.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(signals)
    fig, axes = plt.subplots(
        3, len(names), figsize=(4.2 * len(names), 7.5), squeeze=False, sharex="col"
    )
    peak = max(float(np.max(np.abs(signals[n]))) for n in names) or 1.0
    for col, name in enumerate(names):
        wav = signals[name]
        t = np.arange(len(wav)) / sample_rate
        axes[0, col].plot(t, wav, lw=0.5, color="C0")
        axes[0, col].set_ylim(-1.05 * peak, 1.05 * peak)
        axes[0, col].set_title(name)
        for row, (spec, label) in enumerate(
            ((linear[name], "linear bin"), (mel[name], "mel bin")), start=1
        ):
            extent = (0, spec.shape[0] * hop_size / sample_rate, 0, spec.shape[1])
            image = axes[row, col].imshow(
                spec.T, origin="lower", aspect="auto", extent=extent, vmin=0, vmax=1, cmap="magma"
            )
            axes[row, col].set_ylabel(label if col == 0 else "")
        axes[2, col].set_xlabel("time (s)")
    axes[0, 0].set_ylabel("amplitude")
    fig.colorbar(image, ax=axes[1:, :].ravel().tolist(), shrink=0.8, label="normalised level")
    if title:
        fig.suptitle(title)
    return fig


def plot_histograms(
    values: Mapping[str, Sequence[float]],
    xlabel: str,
    bins: int | Sequence[float] = 30,
    title: str | None = None,
):
    """Overlaid histograms of several sets of values (e.g. mixture SNRs per protocol).

    Parameters
    ----------
    values : mapping label -> sequence of float
        One histogram per entry; its mean is marked with a dashed line.
    xlabel : str
        Axis label with unit, e.g. ``"SNR (dB)"``.
    bins : int or sequence
        Passed to ``matplotlib.axes.Axes.hist`` (shared by all sets).
    """
    fig, ax = plt.subplots(figsize=(7, 3.5))
    all_values = np.concatenate([np.asarray(v, dtype=float) for v in values.values()])
    edges = np.histogram_bin_edges(all_values, bins=bins)
    for i, (label, vals) in enumerate(values.items()):
        vals = np.asarray(vals, dtype=float)
        ax.hist(
            vals, bins=edges, alpha=0.55, color=f"C{i}", label=f"{label} (mean {vals.mean():.1f})"
        )
        ax.axvline(vals.mean(), color=f"C{i}", ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_block_layout(
    num_frames: int,
    training_starts: Sequence[int],
    test_starts: Sequence[int],
    block_frames: int = 64,
):
    """Where the 64-frame blocks of one utterance lie, for training and at test time.

    Parameters
    ----------
    num_frames : int
        Frames T of the utterance.
    training_starts, test_starts : sequence of int
        First frame of each block (random for training; fixed layout at test time).
    block_frames : int
        Block length in frames.
    """
    rows = [("training (random)", training_starts), ("test (fixed layout)", test_starts)]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.5 * (len(training_starts) + len(test_starts))))
    y = 0
    for color, (label, starts) in enumerate(rows):
        for k, start in enumerate(starts):
            ax.barh(
                y,
                block_frames,
                left=start,
                height=0.7,
                color=f"C{color}",
                alpha=0.8,
                label=label if k == 0 else None,
            )
            ax.text(
                start + block_frames / 2,
                y,
                f"{start}–{start + block_frames - 1}",
                ha="center",
                va="center",
                fontsize=8,
                color="white",
            )
            y += 1
    ax.axvline(0, color="k", lw=0.8)
    ax.axvline(num_frames, color="k", lw=0.8)
    ax.set_xlim(-2, num_frames + 2)
    ax.set_yticks([])
    ax.invert_yaxis()  # first block on top
    ax.set_xlabel(f"frame (utterance has T = {num_frames} frames)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_delay_sensitivity(table, metrics: Sequence[str], search_samples: int | None = None):
    """Each metric against the imposed delay, unaligned and aligned.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`synthsep_lib.evaluation.metrics.delay_sensitivity` (index: delay in
        samples; columns ``m`` and ``m aligned`` per metric).
    metrics : sequence of str
        Metric columns to plot, one panel each.
    search_samples : int, optional
        Alignment search range in samples, drawn as a vertical line.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, name in zip(axes[0], metrics, strict=True):
        ax.plot(table.index, table[name], "o-", label="unaligned")
        ax.plot(table.index, table[f"{name} aligned"], "s--", label="aligned")
        if search_samples:
            ax.axvline(search_samples, color="0.6", lw=0.8, label="search range")
        ax.set_xscale("symlog", linthresh=16)
        ax.set_xlabel("imposed delay (samples)")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_grouped_bars(frame, ylabel: str, title: str | None = None):
    """Bars of ``frame`` (rows: groups on the x axis; columns: one bar colour each).

    Parameters
    ----------
    frame : pandas.DataFrame
        E.g. mean STOI with one row per noise category and one column per method.
    ylabel : str
        Axis label with unit.
    """
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(frame)), 3.8))
    frame.plot.bar(ax=ax, rot=0)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(frame.index.name or "")
    ax.legend(
        fontsize=8,
        ncol=len(frame.columns),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.15),
        frameon=False,
    )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_metric_curves(
    means: Mapping[str, object],
    xlabel: str,
    title: str | None = None,
    *,
    reference_x: float | None = None,
):
    """One panel per metric: each method's mean against a condition's level.

    Parameters
    ----------
    means : mapping metric label -> pandas.DataFrame
        Rows: levels of the condition (numbers, the x axis), columns: methods; e.g.
        ``{"STOI": frame, "raw PESQ": frame}``.
    xlabel : str
        The condition's axis with unit, e.g. ``"SNR (dB)"``.
    reference_x : float, optional
        Level of the reference condition, marked by a dotted line.
    """
    n = len(means)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    for ax, (label, frame) in zip(axes[0], means.items(), strict=True):
        for i, method in enumerate(frame.columns):
            ax.plot(frame.index, frame[method], marker="o", ms=3, color=f"C{i}", label=method)
        if reference_x is not None:
            ax.axvline(reference_x, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel(xlabel)
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8, frameon=False
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1 + 0.04 * (len(labels) > 5), 1, 1))
    return fig


def plot_spectrograms(
    spectra: Mapping[str, np.ndarray],
    sample_rate: int,
    hop_size: int,
    ylabel: str = "mel bin",
    title: str | None = None,
):
    """Normalised spectra stacked in one column, on a shared time axis.

    Parameters
    ----------
    spectra : mapping name -> (T, F) float in [0, 1]
        E.g. the mixture's, the target's and the predicted mel of one utterance.
    sample_rate : int
        Hz.
    hop_size : int
        Samples per frame.
    ylabel : str
        Label of the frequency axis.
    """
    fig, axes = plt.subplots(
        len(spectra), 1, figsize=(9, 1.9 * len(spectra) + 0.6), sharex=True, squeeze=False
    )
    for ax, (name, spec) in zip(axes[:, 0], spectra.items(), strict=True):
        extent = (0, spec.shape[0] * hop_size / sample_rate, 0, spec.shape[1])
        image = ax.imshow(
            spec.T, origin="lower", aspect="auto", extent=extent, vmin=0, vmax=1, cmap="magma"
        )
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.8, label="normalised level")
    if title:
        fig.suptitle(title)
    return fig


def plot_training_curves(
    histories: Mapping[str, object],
    columns: Sequence[str] = ("loss", "val_loss"),
    x: str = "epoch",
    ylabel: str = "perceptually weighted loss",
    log_y: bool = True,
):
    """Loss per epoch (or step) of one or more training runs.

    Parameters
    ----------
    histories : mapping name -> pandas.DataFrame
        Each with an ``x`` column (0-based) and the ``columns`` to plot.
    columns : sequence of str
        Logged quantities, one line style each (e.g. training and validation loss).
    x : str
        Column on the horizontal axis (``"epoch"`` or ``"step"``), plotted 1-based.
    ylabel : str
        Label of the loss axis, with its unit.
    log_y : bool
        Logarithmic loss axis.
    """
    fig, axes = plt.subplots(1, len(histories), figsize=(5.5 * len(histories), 3.5), squeeze=False)
    for ax, (name, history) in zip(axes[0], histories.items(), strict=True):
        marker = len(history) <= 50
        for style, column in zip(("o-", "s--", "^:"), columns, strict=False):
            if column in history:
                ax.plot(
                    history[x] + 1, history[column], style if marker else style[1:], label=column
                )
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel)
        if log_y:
            ax.set_yscale("log")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_receptive_field(dilations: Sequence[int], kernel_size: int = 2, title: str | None = None):
    """Dilated causal convolutions: which past inputs reach the newest output.

    Draws one row of dots per layer (input at the bottom) and the connections of the
    convolution taps that feed the last output, so the doubling of the reach with each
    dilation is visible.

    Parameters
    ----------
    dilations : sequence of int
        Dilation of each layer, bottom first (e.g. ``[1, 2, 4, 8]``).
    kernel_size : int
        Taps per convolution (the paper's model uses 3).
    """
    reach = (kernel_size - 1) * sum(dilations) + 1
    n = reach + 4
    fig, ax = plt.subplots(figsize=(min(12, 0.22 * n + 2), 0.55 * len(dilations) + 1.6))
    levels = len(dilations) + 1
    for level in range(levels):
        ax.scatter(np.arange(n), np.full(n, level), s=10, color="0.75", zorder=2)
    active = {n - 1}
    for level in range(levels - 1, 0, -1):  # from the output down to the input
        d = dilations[level - 1]
        below = set()
        for t in active:
            for m in range(kernel_size):
                src = t - m * d
                if src >= 0:
                    ax.plot([src, t], [level - 1, level], color="C0", lw=0.8, zorder=1)
                    below.add(src)
        ax.scatter(sorted(active), [level] * len(active), s=18, color="C0", zorder=3)
        active = below
    ax.scatter(sorted(active), [0] * len(active), s=18, color="C3", zorder=3)
    ax.set_yticks(range(levels))
    ax.set_yticklabels(["input"] + [f"dilation {d}" for d in dilations], fontsize=8)
    ax.set_xlabel(f"time step (samples); the newest output sees the last {reach} inputs")
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_predicted_distributions(
    amplitudes: np.ndarray, densities: np.ndarray, actual: Sequence[float], labels: Sequence[str]
):
    """The next-sample distribution a WaveNet predicts at a few time steps.

    Parameters
    ----------
    amplitudes : (n,) float
        Amplitude grid in [-1, 1].
    densities : (k, n) float
        Probability density over the grid at k time steps (per unit amplitude).
    actual : sequence of k floats
        The true next sample at each step (drawn as a vertical line).
    labels : sequence of k str
        Panel titles.
    """
    k = len(labels)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k, 2.9), squeeze=False, sharey=False)
    for ax, density, x, label in zip(axes[0], densities, actual, labels, strict=True):
        ax.fill_between(amplitudes, density, color="C0", alpha=0.35, lw=0)
        ax.plot(amplitudes, density, color="C0", lw=1)
        ax.axvline(x, color="C3", lw=1.2, ls="--", label="true sample")
        ax.set_xlabel("next sample amplitude")
        ax.set_title(label, fontsize=9)
    axes[0, 0].set_ylabel("probability density")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_weight_map(weights: np.ndarray, grid: np.ndarray, title: str | None = None):
    """The loss weight w(X, X̂) as an image over target level X and estimate level X̂.

    Parameters
    ----------
    weights : (n, n) float
        ``weights[i, j]`` for target ``grid[i]`` and estimate ``grid[j]``.
    grid : (n,) float
        Normalised levels in [0, 1].
    """
    fig, ax = plt.subplots(figsize=(4.8, 4))
    extent = (grid[0], grid[-1], grid[0], grid[-1])
    image = ax.imshow(weights, origin="lower", extent=extent, cmap="viridis", vmin=0, vmax=1)
    contours = ax.contour(
        grid, grid, weights, levels=[0.1, 0.25, 0.5, 0.75], colors="white", linewidths=0.7
    )
    ax.clabel(contours, fontsize=7)
    ax.set_xlabel("estimate level X̂")
    ax.set_ylabel("target level X")
    fig.colorbar(image, ax=ax, label="weight w")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_listening_distribution(distribution, means=None, title: str | None = None):
    """Answers of a paired-comparison listening test as stacked bars (the paper's Fig. 3).

    One horizontal bar per comparison and attribute, split into the answer categories
    from "Worse" (red, left) through "Not sure" (grey) to "Better" (blue, right); shares of
    5 % or more are printed on the bar. If any answer came from a simulated listener the
    title says so.

    Parameters
    ----------
    distribution : pandas.DataFrame
        From :func:`synthsep_lib.evaluation.listening.analysis.answer_distribution`: index
        (comparison, attribute); one column per category in scale order (percent), and
        ``n`` and ``simulated``.
    means : pandas.DataFrame, optional
        From :func:`~synthsep_lib.evaluation.listening.analysis.mean_scores` (same index):
        the mean score (1-5) and its confidence interval are written beside each bar.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    categories = [c for c in distribution.columns if c not in ("n", "simulated")]
    colors = plt.get_cmap("RdBu")(np.linspace(0.12, 0.88, len(categories)))
    colors[len(categories) // 2] = (0.75, 0.75, 0.75, 1.0)  # the neutral middle in grey
    labels = [f"{comparison}\n{attribute}" for comparison, attribute in distribution.index]
    y = np.arange(len(distribution))
    fig, ax = plt.subplots(figsize=(9, 0.8 * len(distribution) + 1.6))
    left = np.zeros(len(distribution))
    for category, color in zip(categories, colors, strict=True):
        share = distribution[category].to_numpy(float)
        ax.barh(y, share, left=left, color=color, edgecolor="white", label=category)
        for yi, (start, width) in enumerate(zip(left, share, strict=True)):
            if width >= 5:
                ax.text(start + width / 2, yi, f"{width:.0f}", ha="center", va="center", fontsize=8)
        left += share
    if means is not None:
        for yi, key in enumerate(distribution.index):
            row = means.loc[key]
            ax.text(
                101,
                yi,
                f"mean {row['mean']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]",
                va="center",
                fontsize=8,
            )
    ax.set_yticks(y, labels)
    ax.invert_yaxis()  # first comparison on top
    ax.set_xlim(0, 100)
    ax.set_xlabel("answers (%)")
    ax.legend(
        ncol=len(categories),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.18),
        fontsize=8,
        frameon=False,
    )
    if bool(distribution["simulated"].any()):
        title = f"{title or 'Listening test'} (SIMULATED listeners, not real answers)"
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
