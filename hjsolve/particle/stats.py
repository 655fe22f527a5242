"""Monte Carlo summaries with delta-method standard errors (all in log space).

Samples are 1-D arrays over paths; weights are exp(log_w - max log_w) so nothing overflows.
"""
import numpy as np


def _sd(x, axis=0):
    n = x.shape[axis]
    return np.std(x, axis=axis, ddof=1) if n > 1 else np.zeros(np.delete(x.shape, axis))


def log_mean_exp(log_w):
    """log mean exp(log_w) (float), its delta-method standard error and the ESS.

    With w = exp(log_w - max): se(log mean w) ≈ sd(w) / (sqrt(n) mean w); ESS = (Σw)²/Σw².
    """
    log_w = np.asarray(log_w, dtype=float)
    top = float(np.max(log_w))
    w = np.exp(log_w - top)
    mean = float(np.mean(w))
    se = float(_sd(w) / np.sqrt(len(w)) / mean)
    ess = float(np.sum(w) ** 2 / np.sum(w * w))
    return top + float(np.log(mean)), se, ess


def weighted_mean(log_w, x):
    """Self-normalised Σ w x / Σ w for x (n,) or (n, m), and its delta-method standard error.

    se² = Σ_i w_i² (x_i - R)² / (Σ w)²  (the ratio estimator's linearisation).
    """
    log_w = np.asarray(log_w, dtype=float)
    w = np.exp(log_w - np.max(log_w))
    x = np.asarray(x, dtype=float)
    wx = w.reshape((-1,) + (1,) * (x.ndim - 1))
    total = np.sum(w)
    ratio = np.sum(wx * x, axis=0) / total
    se = np.sqrt(np.sum(wx**2 * (x - ratio) ** 2, axis=0)) / total
    return ratio, se


def kl_estimate(log_w, r_eff):
    """KL(p_ftune ‖ p_pre) = E_ftune r_eff - log C from pretrained samples, with its standard error.

    log_w = r_eff here; the influence function of R - log w̄ is [w (r_eff - R) - (w - w̄)] / w̄.
    """
    r_eff = np.asarray(r_eff, dtype=float)
    w = np.exp(np.asarray(log_w, dtype=float) - np.max(log_w))
    mean = np.mean(w)
    ratio = np.sum(w * r_eff) / np.sum(w)
    log_c = float(np.max(log_w) + np.log(mean))
    psi = (w * (r_eff - ratio) - (w - mean)) / mean
    return float(ratio - log_c), float(_sd(psi) / np.sqrt(len(w)))


def mean_and_se(x):
    """Plain mean of x (n,) or (n, m) and its standard error."""
    x = np.asarray(x, dtype=float)
    return np.mean(x, axis=0), _sd(x) / np.sqrt(x.shape[0])
