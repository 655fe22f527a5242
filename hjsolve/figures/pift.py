"""PI-FT figure (paper 002, analogue of Fig. 3): ``pift.png``.

Panels, for several KL weights β (``finetune.alpha``, w_t = β for every step):

(a) the inner PI-FT iteration at the step with the largest contraction bound: the control error
    max_x |u^m_t - u*_t| against the iteration m on a log scale, u* the Riccati control, for a
    linear–quadratic DDPM (N = 100, Gaussian data N(1, 0.5), r = -½(x - 2)²); the straight lines
    are the linear rate, and the dashed lines the bound ρ_t^m = (b_t² Lip ∇V_{t+1}/(2 β c_t))^m;
(b) the fine-tuned reward E r(X_N) and (c) the path KL Σ_t E c_t |u_t - s_t|² against β: exact
    (Riccati) curves and PI-FT Monte Carlo markers;
(d) samples of the terminal law of the controlled chain from functional PI-FT for a bimodal
    pretrained model ½N(-2, 0.5²) + ½N(2, 0.5²) and r = -½(x - 1)² (N = 50), against the
    pretrained chain: small β moves the mass to the reward, large β keeps the pretrained law.

The ``*_data`` functions return the numbers each panel shows (tests check them).
"""
import numpy as np

from ..case import case_from_dict
from ..ddpm.chain import make_chain
from ..ddpm.functional import run_functional
from ..ddpm.riccati import solve_riccati
from ..solvers import solve
from ..solvers.pift import DEFAULT_GH, default_box
from ..ddpm.grid import Grid
from .style import new_figure, save, style

LQ_CASE = {
    "title": "figure: DDPM LQ 1-D",
    "sde": {"kind": "ddpm", "steps": 100},
    "pretrained": {"kind": "gaussian_mixture", "weights": [1.0], "means": [[1.0]], "covs": [[[0.5]]]},
    "reward": {"kind": "quadratic", "center": [2.0], "scale": 1.0},
    "finetune": {"alpha": 1.0, "divergence": "kl"},
    "solver": {"method": "pift"},
}
MIXTURE_CASE = {
    "title": "figure: DDPM bimodal 1-D",
    "sde": {"kind": "ddpm", "steps": 50},
    "pretrained": {"kind": "gaussian_mixture", "weights": [0.5, 0.5], "means": [[-2.0], [2.0]], "covs": [[[0.25]], [[0.25]]]},
    "reward": {"kind": "quadratic", "center": [1.0], "scale": 1.0},
    "finetune": {"alpha": 1.0, "divergence": "kl"},
    "solver": {"method": "pift"},
}
CONVERGENCE_BETAS = (0.001, 0.01, 0.1, 1.0)
SWEEP_BETAS = tuple(np.geomspace(1e-3, 10.0, 13))
MARKER_BETAS = (0.001, 0.01, 0.1, 1.0, 10.0)
SAMPLE_BETAS = (0.03, 0.3, 3.0)
N_SAMPLES = 20_000


def _case(base, beta):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    data["finetune"] = {"alpha": float(beta), "divergence": "kl"}
    return case_from_dict(data)


def convergence_data(betas=CONVERGENCE_BETAS, points=401):
    """{β: {"step", "errors" (m,), "bound", "measured"}}: inner-loop control errors vs the Riccati u*."""
    out = {}
    for beta in betas:
        case = _case(LQ_CASE, beta)
        chain = make_chain(case)
        exact = solve_riccati(chain)
        lo, hi = default_box(case.problem)
        grid = Grid(lo=lo, hi=hi, n=np.array([points]))
        x = grid.points
        bounds = [chain.contraction_bound(t, np.abs(np.linalg.eigvalsh(exact.P[t + 1])).max()) for t in range(chain.steps)]
        step = int(np.argmax(bounds))
        errors = []

        def record(t, m, u, step=step, errors=errors, target=exact.control(step, x)):
            if t == step:
                errors.append(float(np.abs(u - target).max()))

        result = run_functional(chain, grid, DEFAULT_GH[1], 1e-13, 200, relax=True, callback=record)
        rec = result["records"][step]
        lam, rho = rec["relaxation"], float(rec["factor_bound"])
        out[beta] = {"step": step, "errors": np.array(errors), "bound": rho, "relaxation": lam,
                     # factor of u ← u + λ(Tu - u) for a Jacobian of T in [-ρ, 0] (concave V_{t+1})
                     "rate_bound": max(abs(1.0 - lam * (1.0 + rho)), abs(1.0 - lam)),
                     "measured": rec["factor_measured"]}
    return out


def tradeoff_data(betas=SWEEP_BETAS, markers=MARKER_BETAS):
    """Exact (Riccati) and PI-FT (Monte Carlo) E r(X_N) and path KL against β."""
    exact = [solve(_case(LQ_CASE, b), method="exact").summary for b in betas]
    pift = [solve(_case(LQ_CASE, b), method="pift", n_eval=N_SAMPLES).summary for b in markers]
    return {
        "beta": np.array(betas), "reward": np.array([s["reward_finetuned"] for s in exact]),
        "kl": np.array([s["kl_finetuned_pretrained"] for s in exact]),
        "reward_pretrained": exact[0]["reward_pretrained"],
        "marker_beta": np.array(markers), "pift_reward": np.array([s["reward_finetuned"] for s in pift]),
        "pift_reward_stderr": np.array([s["reward_finetuned_stderr"] for s in pift]),
        "pift_kl": np.array([s["kl_finetuned_pretrained"] for s in pift]),
    }


def samples_data(betas=SAMPLE_BETAS, n=N_SAMPLES):
    """{"pretrained": (n,), β: (n,)}: terminal samples of the pretrained and PI-FT chains."""
    first = solve(_case(MIXTURE_CASE, betas[0]), method="pift", n_eval=1000)
    out = {"pretrained": first.chain.simulate(first.chain.score, n, seed=11)[:, 0]}
    for beta in betas:
        sol = first if beta == betas[0] else solve(_case(MIXTURE_CASE, beta), method="pift", n_eval=1000)
        out[beta] = sol.sample(n, seed=12)[:, 0]
    return out


def plot_pift(path):
    """``pift.png``: the four panels of the module docstring."""
    conv, trade, samples = convergence_data(), tradeoff_data(), samples_data()
    with style():
        fig = new_figure(12.0, 8.0)
        (a, b), (c, d) = fig.subplots(2, 2)
        for i, (beta, item) in enumerate(conv.items()):
            m = np.arange(len(item["errors"]))
            keep = item["errors"] > 1e-14
            relaxed = f", relaxed λ = {item['relaxation']:.2f}" if item["relaxation"] < 1 else ""
            a.semilogy(m[keep], item["errors"][keep], "o-", color=f"C{i}", ms=3.5,
                       label=rf"$\beta$ = {beta:g}, t = {item['step']}: rate {item['measured']:.3g} "
                             rf"(bound {item['rate_bound']:.3g}{relaxed})")
            a.semilogy(m, item["errors"][0] * item["rate_bound"] ** m, "--", color=f"C{i}", lw=1)
        a.set_ylim(1e-14, None)
        a.set_xlabel("inner iteration m")
        a.set_ylabel(r"$\max_x |u^m_t - u^*_t|$")
        a.set_title("(a) PI-FT converges linearly; larger β, faster (LQ, vs Riccati)")
        a.legend(fontsize=7)

        b.semilogx(trade["beta"], trade["reward"], "-", color="C0", label="exact (Riccati)")
        b.errorbar(trade["marker_beta"], trade["pift_reward"], yerr=2 * trade["pift_reward_stderr"], fmt="o", color="C1",
                   ms=4, label="PI-FT (Monte Carlo, ±2 s.e.)")
        b.axhline(trade["reward_pretrained"], color="0.5", ls="--", lw=1, label="pretrained")
        b.set_xlabel(r"$\beta$ (KL weight)")
        b.set_ylabel(r"$E\,r(X_N)$")
        b.set_title("(b) fine-tuned reward")
        b.legend(fontsize=8)

        c.loglog(trade["beta"], trade["kl"], "-", color="C0", label="exact (Riccati)")
        c.loglog(trade["marker_beta"], trade["pift_kl"], "o", color="C1", ms=4, label="PI-FT (Monte Carlo)")
        c.set_xlabel(r"$\beta$ (KL weight)")
        c.set_ylabel(r"$\sum_t E\, c_t |u_t - s_t|^2$")
        c.set_title("(c) path KL to the pretrained chain (Lemma 2.5)")
        c.legend(fontsize=8)

        bins = np.linspace(-4.5, 4.5, 121)
        d.hist(samples["pretrained"], bins=bins, density=True, color="0.8", label="pretrained chain")
        for i, beta in enumerate(b_ for b_ in samples if b_ != "pretrained"):
            d.hist(samples[beta], bins=bins, density=True, histtype="step", lw=1.5, color=f"C{i + 2}", label=rf"PI-FT, $\beta$ = {beta:g}")
        d.axvline(MIXTURE_CASE["reward"]["center"][0], color="crimson", ls=":", lw=1.2, label="reward maximiser")
        d.set_xlabel(r"$X_N$")
        d.set_ylabel("density")
        d.set_title(r"(d) terminal samples, bimodal model, $r = -\frac{1}{2}(x-1)^2$")
        d.legend(fontsize=8)
        return save(fig, path)


FIGURES = {"pift.png": plot_pift}
