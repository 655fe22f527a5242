"""Method ``exact`` on ``sde.kind = "ddpm"``: the linear–quadratic Riccati solution.

Applies to a single Gaussian pretrained component with a quadratic or linear reward under kl
(see `hjsolve.ddpm.riccati` for the recursion); otherwise NotApplicableError naming ``pift``.
The terminal law under u* is Gaussian N(μ_N, Σ_N), sampled and evaluated exactly.
"""
import numpy as np

from ..ddpm.chain import make_chain
from ..ddpm.riccati import gaussian_log_mgf, gaussian_reward_mean, solve_riccati
from ..ddpm.solution import DDPMSolution
from ..errors import NotApplicableError
from ..mixture import gaussian_log_pdf

OPTIONS = {}


class DDPMLQSolution(DDPMSolution):
    """Exact DDPM solution: V_t quadratic, u*_t affine, Gaussian terminal law."""

    method = "exact"

    def __init__(self, case, summary=None):
        chain = make_chain(case)
        super().__init__(case, chain, summary)
        self.lq = solve_riccati(chain)

    def _value(self, t, y):
        return self.lq.value(t, y)

    def _control(self, t, y):
        return self.lq.control(t, y)

    def value_gradient(self, t, y):
        """(n, d) ∇V_t(y)."""
        return self.lq.gradient(self._check_step(t, self.steps), self._check_points(y))

    def sample(self, n, seed=0):
        """(n, d) exact samples of the terminal law N(μ_N, Σ_N) of the optimally controlled chain."""
        rng = np.random.default_rng(seed)
        chol = np.linalg.cholesky(self.lq.cov[-1])
        return self.lq.mean[-1] + rng.standard_normal((n, self.problem.dimension)) @ chol.T

    def terminal_log_density(self, y):
        """(n,) log N(y; μ_N, Σ_N)."""
        y = self._check_points(y)
        cov = self.lq.cov[-1]
        return gaussian_log_pdf(y, self.lq.mean[-1], np.linalg.inv(cov), np.linalg.slogdet(cov)[1])

    def compute_summary(self):
        lq, w0 = self.lq, self.chain.w[0]
        pre = (lq.pre_mean[-1], lq.pre_cov[-1])
        return self.fill_summary(
            log_normalizer=gaussian_log_mgf(lq.form, *pre, 1.0 / w0),
            log_second_moment=gaussian_log_mgf(lq.form, *pre, 2.0 / w0),
            reward_pretrained=gaussian_reward_mean(lq.form, *pre),
            reward_finetuned=gaussian_reward_mean(lq.form, lq.mean[-1], lq.cov[-1]),
            kl_steps=lq.kl_steps,
            extra={"solver": "riccati", "value_initial_mean": float(lq.kappa[0] - 0.5 * np.trace(lq.P[0])),
                   "terminal_mean": lq.mean[-1].tolist(), "terminal_cov": lq.cov[-1].tolist()},
        )

    @classmethod
    def from_state(cls, case, summary, state):
        return cls(case, summary=summary)


SOLUTION = DDPMLQSolution


def solve(case, options):
    """The Riccati solution of a ddpm ``case`` (NotApplicableError naming pift when not LQ)."""
    try:
        solution = DDPMLQSolution(case).compute_summary()
    except NotApplicableError as exc:
        message = str(exc)
        raise NotApplicableError(message if "pift" in message else f"{message}; use method 'pift'") from None
    solution.summary["options"] = dict(options)
    return solution
