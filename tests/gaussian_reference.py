"""Independent ground truth for a single-Gaussian pretrained model (K = 1).

With Gaussian data the pretrained sampler (2.4) is a linear SDE, so its law from (t, y) is
Gaussian with mean and covariance solving the moment ODEs
    dμ/dt = A(t) μ + c(t),   dP/dt = A P + P Aᵀ + ς(t)² I,
    A(t) = -(a'/a)(T-t) I - g2(T-t) C(T-t)^{-1},  c(t) = g2(T-t) C(T-t)^{-1} a(T-t) m,
integrated here with scipy's solve_ivp: no posterior formula of the solver is used.
"""
import numpy as np
from scipy.integrate import solve_ivp


def propagate(sde, mean, cov, t0, y_mean, y_cov):
    """Mean (d,) and covariance (d, d) at T of the sampler started from N(y_mean, y_cov) at t0."""
    d = len(mean)
    T = float(sde.T)

    def rhs(t, z):
        s = T - t
        a, var, g2 = float(sde.a(s)), float(sde.var(s)), float(sde.g2(s))
        C_inv = np.linalg.inv(a * a * cov + var * np.eye(d))
        A = -float(sde.log_a_rate(s)) * np.eye(d) - g2 * C_inv
        mu, P = z[:d], z[d:].reshape(d, d)
        dmu = A @ mu + g2 * C_inv @ (a * mean)
        dP = A @ P + P @ A.T + g2 * np.eye(d)
        return np.concatenate([dmu, dP.ravel()])

    z0 = np.concatenate([y_mean, np.asarray(y_cov, dtype=float).ravel()])
    sol = solve_ivp(rhs, (t0, T), z0, method="DOP853", rtol=1e-12, atol=1e-13)
    z = sol.y[:, -1]
    P = z[d:].reshape(d, d)
    return z[:d], 0.5 * (P + P.T)


def quadratic_tilt(mu, P, center, lam):
    """log E exp(-lam/2 |X - z|²) and the tilted mean and covariance, X ~ N(mu, P)."""
    d = len(mu)
    A = np.eye(d) + lam * P
    delta = mu - center
    log_mgf = -0.5 * np.linalg.slogdet(A)[1] - 0.5 * lam * delta @ np.linalg.solve(A, delta)
    P_t = np.linalg.solve(A, P)
    mu_t = center + np.linalg.solve(A, delta)
    return log_mgf, mu_t, 0.5 * (P_t + P_t.T)


def gaussian_kl(mu1, P1, mu0, P0):
    """KL(N(mu1, P1) ‖ N(mu0, P0))."""
    d = len(mu1)
    P0_inv = np.linalg.inv(P0)
    diff = mu0 - mu1
    return 0.5 * (np.trace(P0_inv @ P1) + diff @ P0_inv @ diff - d
                  + np.linalg.slogdet(P0)[1] - np.linalg.slogdet(P1)[1])


def quadratic_reward_truth(sde, mean, cov, center, scale, alpha):
    """Summary quantities of DESIGN §3 for r = -scale/2 |x - center|², KL with weight alpha."""
    d = len(mean)
    mu_p, P_p = propagate(sde, mean, cov, 0.0, np.zeros(d), sde.noise_var() * np.eye(d))
    lam = scale / alpha
    log_C, mu_f, P_f = quadratic_tilt(mu_p, P_p, center, lam)
    log_m2 = quadratic_tilt(mu_p, P_p, center, 2 * lam)[0]

    def mean_reward(mu, P):
        return -0.5 * scale * (np.sum((mu - center) ** 2) + np.trace(P))

    return {
        "log_normalizer": log_C,
        "reward_pretrained": mean_reward(mu_p, P_p),
        "reward_finetuned": mean_reward(mu_f, P_f),
        "kl_finetuned_pretrained": gaussian_kl(mu_f, P_f, mu_p, P_p),
        "tv_bound": 0.5 * np.exp(0.5 * log_m2),
        "pretrained_mean": mu_p, "pretrained_cov": P_p, "finetuned_mean": mu_f, "finetuned_cov": P_f,
    }


def quadratic_log_h(sde, mean, cov, center, scale, alpha, t, y):
    """log h(t, y) for the same problem, from the moment ODEs started at Y_t = y."""
    mu, P = propagate(sde, mean, cov, t, np.asarray(y, dtype=float), np.zeros((len(mean), len(mean))))
    return quadratic_tilt(mu, P, center, scale / alpha)[0]
