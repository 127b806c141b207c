"""The encoder's perceptual loss (original_code.md#oc-loss) and errors (original_code.md#oc-errors).

The loss weights each time–frequency error by w = f(X) + (1 − f(X))·f(X̂), f(x) = x²,
where X is the target and X̂ the estimate, both normalised to [0, 1]. Loud bins of the
target weigh most; a quiet target bin still counts when the estimate puts energy there
(a spurious component), so both missing and invented speech are penalised.

``perceptual_weights`` and ``encoder_errors`` are numpy functions and do not import
TensorFlow; ``perceptual_loss`` imports ``keras.ops`` when first called.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EPSILON", "perceptual_weights", "perceptual_loss", "encoder_errors"]

#: Added to Σw in the loss's denominator: Keras' ``K.epsilon()`` in the original.
EPSILON = 1e-7


def _f(x):
    return x * x


def perceptual_weights(target, estimate) -> np.ndarray:
    """Weights w = f(X) + (1 − f(X))·f(X̂), f(x) = x², of the perceptual loss.

    Parameters
    ----------
    target, estimate : array_like, same shape (e.g. (T, F))
        Normalised spectra X and X̂ in [0, 1].

    Returns
    -------
    numpy.ndarray
        w, same shape, in [0, 1] for inputs in [0, 1].

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    x = np.asarray(target, dtype=np.float64)
    x_hat = np.asarray(estimate, dtype=np.float64)
    if x.shape != x_hat.shape:
        raise ValueError(f"target has shape {x.shape} but estimate has shape {x_hat.shape}")
    return _f(x) + (1.0 - _f(x)) * _f(x_hat)


def perceptual_loss(y_true, y_pred):
    """Perceptual loss of each block of a batch, for ``model.compile`` (original_code.md#oc-loss).

    L_b = Σ_{t,ω} w·(X̂ − X)² / (Σ_{t,ω} w + 1e-7), w = f(X) + (1 − f(X))·f(X̂),
    f(x) = x². Keras averages the returned values over the batch (and adds the L2
    penalties of the layers to the reported ``loss``).

    As in the original, w is not a constant: gradients also flow through f(X̂).
    The normalisation by Σw is the code's; the paper's Eq. (1) has none.

    Parameters
    ----------
    y_true : tensor (B, T, F, 1)
        Target X. The original's ``y_true`` had 3 channels of which only channel 0 was
        used; here pass only that one (a wider ``y_true`` still works: channel 0 is taken).
    y_pred : tensor (B, T, F, 1)
        Estimate X̂, the encoder's output.

    Returns
    -------
    tensor (B,)
        L_b for each block.
    """
    from keras import ops

    x, y_pred = _loss_tensors(y_true, y_pred)
    f_x = _f(x)
    # a cell counts when the target is loud, or when the estimate puts energy there
    w = f_x + (1.0 - f_x) * _f(y_pred)
    axes = tuple(range(1, len(y_pred.shape)))  # all but the batch axis: one value per block
    weighted = ops.sum(w * ops.square(y_pred - x), axis=axes)
    return weighted / (ops.sum(w, axis=axes) + EPSILON)


def _loss_tensors(y_true, y_pred):
    """``(X, X̂)``: channel 0 of ``y_true`` and ``y_pred``, as tensors of X̂'s dtype."""
    from keras import ops

    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    if len(y_true.shape) != len(y_pred.shape):
        raise ValueError(
            f"y_true has shape {tuple(y_true.shape)} but y_pred has shape "
            f"{tuple(y_pred.shape)}; both should be (B, T, F, 1)"
        )
    return y_true[..., :1], y_pred


def encoder_errors(target, estimate, *, e2_definition: str = "code") -> tuple[float, float]:
    """Errors e1 and e2 of one utterance's estimate, as the original code computes them.

    e1 = ‖Y − Ŷ‖² / ‖Y‖²;  e2 = Σ w·(Y − Ŷ)² / Σ w,  w = f(Y) + (1 − f(Y))·f(Ŷ),
    f(x) = x², sums over all frames and bins of the stitched spectra (P/Test.py; the
    paper averages the per-utterance values over the test utterances).

    The paper's Eq. (2) writes e2 = Σ w‖Y − Ŷ‖² / Σ w‖Y‖²; the reported numbers
    (0.3 % Proposed, 0.6 % B1) match the code's definition, which is also the training
    loss without its ε (see original_code.md#oc-errors).

    Parameters
    ----------
    target, estimate : array_like, same shape (T, F)
        Y, the target's normalised spectrum (mel for Proposed, 512-bin linear for B1),
        and Ŷ, the encoder's stitched estimate.
    e2_definition : {"code", "paper"}
        ``"code"`` (default) as above; ``"paper"`` divides by Σ w·Y² instead (Eq. 2).

    Returns
    -------
    (float, float)
        e1 and e2, as fractions (multiply by 100 for the paper's percentages).

    Raises
    ------
    ValueError
        If the shapes differ, the target is all zeros, or ``e2_definition`` is unknown.
    """
    y, y_hat = _error_inputs(target, estimate, e2_definition)
    w = perceptual_weights(y, y_hat)
    squared = (y - y_hat) ** 2
    e1 = float(np.sum(squared)) / float(np.sum(y * y))
    # the code's e2 is the training loss (without its ε); the paper's Eq. (2) divides by Σ w·Y²
    denominator = np.sum(w) if e2_definition == "code" else np.sum(w * y * y)
    e2 = float(np.sum(w * squared) / denominator)
    return e1, e2


def _error_inputs(target, estimate, e2_definition: str) -> tuple[np.ndarray, np.ndarray]:
    """Y and Ŷ as float64 arrays of one shape, Y not all zeros; else ValueError."""
    if e2_definition not in ("code", "paper"):
        raise ValueError(f"e2_definition must be 'code' or 'paper', got {e2_definition!r}")
    y = np.asarray(target, dtype=np.float64)
    y_hat = np.asarray(estimate, dtype=np.float64)
    if y.shape != y_hat.shape:
        raise ValueError(f"target has shape {y.shape} but estimate has shape {y_hat.shape}")
    if not np.any(y):
        raise ValueError("target spectrum is all zeros: e1 = ‖Y − Ŷ‖²/‖Y‖² is undefined")
    return y, y_hat
