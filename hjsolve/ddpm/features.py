"""Feature maps for parametric PI-FT (paper 002, Section 4.1): u_t(x) = φ(x) K_t.

``affine``     φ(x) = [1, x]                         (F = 1 + d): realizes the LQ optimum;
``quadratic``  φ(x) = [1, x, x_i x_j (i ≤ j)]         (F = 1 + d + d(d+1)/2);
``rbf``        φ(x) = [1, x, exp(-|x - c_j|²/(2ℓ²))]  with centres c_j on the pretrained data
               (means ± 1 std along each axis) and ℓ = the largest data std (≥ 1).
Every set contains the affine functions, so the pretrained score of Gaussian data is realizable.
"""
import numpy as np

from ..errors import HJSolveError

FEATURE_KINDS = ("affine", "quadratic", "rbf")


def _quadratic_terms(x):
    d = x.shape[1]
    i, j = np.triu_indices(d)
    return x[:, i] * x[:, j]


def least_squares(design):
    """A function target (n, ...) -> argmin_θ |design θ - target|² for ``design`` (n, F).

    Solved through the eigen-decomposition of the small Gram matrix DᵀD (F × F), with columns
    scaled to unit norm and eigenvalues below 1e-13 · max dropped (a pseudo-inverse); this avoids
    an SVD of the tall matrix, which is slow on shared machines.
    """
    norms = np.sqrt(np.sum(design**2, axis=0))
    norms[norms == 0] = 1.0
    scaled = design / norms
    evals, evecs = np.linalg.eigh(np.einsum("ni,nj->ij", scaled, scaled))  # einsum: no BLAS threads
    keep = evals > 1e-13 * evals.max()
    inverse = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T

    def solve(target):
        return (inverse @ (scaled.T @ target)) / (norms[:, None] if np.ndim(target) > 1 else norms)

    return solve


class Features:
    """φ: (n, d) -> (n, F) for one of `FEATURE_KINDS`."""

    def __init__(self, kind, pretrained):
        if kind not in FEATURE_KINDS:
            raise HJSolveError(f"solver.pift.features: must be one of {', '.join(FEATURE_KINDS)} (got {kind!r})")
        self.kind = kind
        self.centers = None
        if kind == "rbf":
            d = pretrained.dimension
            offsets = np.concatenate([np.zeros((1, d)), np.eye(d), -np.eye(d)])
            stds = np.sqrt(np.array([np.diag(c) for c in pretrained.covs]))
            self.centers = np.concatenate([m + offsets * s for m, s in zip(pretrained.means, stds)])
            self.length = max(pretrained.max_std, 1.0)

    def __call__(self, x):
        parts = [np.ones((len(x), 1)), x]
        if self.kind == "quadratic":
            parts.append(_quadratic_terms(x))
        elif self.kind == "rbf":
            sq = np.sum((x[:, None, :] - self.centers[None, :, :]) ** 2, axis=2)
            parts.append(np.exp(-0.5 * sq / self.length**2))
        return np.concatenate(parts, axis=1)


class QuadraticValue:
    """V(x) = -½ xᵀP x + qᵀx + κ fitted by least squares on [1, x, x_i x_j]; exact E over noise."""

    def __init__(self, P, q, kappa):
        self.P, self.q, self.kappa = P, q, float(kappa)

    @classmethod
    def fit(cls, x, values):
        """Least-squares fit to ``values`` (n,) at ``x`` (n, d)."""
        d = x.shape[1]
        design = np.concatenate([np.ones((len(x), 1)), x, _quadratic_terms(x)], axis=1)
        theta = least_squares(design)(values)
        i, j = np.triu_indices(d)
        H = np.zeros((d, d))
        H[i, j] = theta[1 + d:]
        P = -(H + H.T)  # -½ xᵀP x = Σ_{i≤j} θ_ij x_i x_j
        return cls(P, theta[1:1 + d], theta[0])

    def __call__(self, x):
        return -0.5 * np.einsum("ni,ij,nj->n", x, self.P, x) + x @ self.q + self.kappa

    def gradient(self, x):
        return -x @ self.P + self.q

    def noisy_mean(self, z, sigma):
        """E V(z + σW), W ~ N(0, I): V(z) - ½ σ² tr P."""
        return self(z) - 0.5 * sigma**2 * np.trace(self.P)

    @property
    def lipschitz(self):
        """Lip(∇V) = the largest |eigenvalue| of P."""
        return float(np.abs(np.linalg.eigvalsh(self.P)).max())
