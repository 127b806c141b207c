"""The encoder's perceptual loss and its errors e1, e2 (PAPER_FACTS §4.5, §8.1).

The loss weights each time–frequency error by w = f(X) + (1 − f(X))·f(X̂), f(x) = x²,
where X is the target and X̂ the estimate, both normalised to [0, 1]. Loud bins of the
target weigh most; a quiet target bin still counts when the estimate puts energy there
(a spurious component), so both missing and invented speech are penalised.

``perceptual_weights`` and ``encoder_errors`` are numpy functions and do not import
TensorFlow; ``perceptual_loss`` imports ``keras.ops`` when first called.

Used in: Chapter 2 (02_encoder)
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

    Used in: Chapter 2 (02_encoder)
    """
    x = np.asarray(target, dtype=np.float64)
    x_hat = np.asarray(estimate, dtype=np.float64)
    if x.shape != x_hat.shape:
        raise ValueError(f"target has shape {x.shape} but estimate has shape {x_hat.shape}")
    return _f(x) + (1.0 - _f(x)) * _f(x_hat)


def perceptual_loss(y_true, y_pred):
    """Perceptual loss of one block per batch item (PAPER_FACTS §4.5), for ``model.compile``.

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

    Used in: Chapter 2 (02_encoder)
    """
    from keras import ops

    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    if len(y_true.shape) != len(y_pred.shape):
        raise ValueError(
            f"y_true has shape {tuple(y_true.shape)} but y_pred has shape "
            f"{tuple(y_pred.shape)}; both should be (B, T, F, 1)"
        )
    x = y_true[..., :1]
    f_x = _f(x)
    w = f_x + (1.0 - f_x) * _f(y_pred)
    axes = tuple(range(1, len(y_pred.shape)))
    weighted = ops.sum(w * ops.square(y_pred - x), axis=axes)
    return weighted / (ops.sum(w, axis=axes) + EPSILON)


def encoder_errors(target, estimate, *, e2_definition: str = "code") -> tuple[float, float]:
    """Errors e1 and e2 of one utterance's estimate, as the original code computes them.

    e1 = ‖Y − Ŷ‖² / ‖Y‖²;  e2 = Σ w·(Y − Ŷ)² / Σ w,  w = f(Y) + (1 − f(Y))·f(Ŷ),
    f(x) = x², sums over all frames and bins of the stitched spectra (P/Test.py; the
    paper averages the per-utterance values over the test utterances).

    The paper's Eq. (2) writes e2 = Σ w‖Y − Ŷ‖² / Σ w‖Y‖²; the reported numbers
    (0.3 % Proposed, 0.6 % B1) match the code's definition, which is also the training
    loss without its ε (PAPER_FACTS §8.1).

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

    Used in: Chapter 2 (02_encoder), evaluation chapters
    """
    if e2_definition not in ("code", "paper"):
        raise ValueError(f"e2_definition must be 'code' or 'paper', got {e2_definition!r}")
    y = np.asarray(target, dtype=np.float64)
    y_hat = np.asarray(estimate, dtype=np.float64)
    w = perceptual_weights(y, y_hat)
    energy = float(np.sum(y * y))
    if energy == 0.0:
        raise ValueError("target spectrum is all zeros: e1 = ‖Y − Ŷ‖²/‖Y‖² is undefined")
    squared = (y - y_hat) ** 2
    e1 = float(np.sum(squared)) / energy
    denominator = np.sum(w) if e2_definition == "code" else np.sum(w * y * y)
    e2 = float(np.sum(w * squared) / denominator)
    return e1, e2
