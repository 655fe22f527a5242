"""Neural-SDE solver (``method = "neural"``, PyTorch): paper 000, (3.10)–(3.16), Section 3.4.

A control network g_θ(t, y) ≈ ∇log h(t, y) (`hjsolve.neural.network`) defines
u_θ = ς² g_θ (Proposition 3.5). It is trained per unit α on r_eff (DESIGN §1), by
- ``objective = "bridge_matching"`` (default): regression onto denoising / target-score targets
  at Gaussian-bridge points between importance-weighted end points of Q*; see
  `hjsolve.neural.objectives`;
- ``objective = "relative_entropy"``: maximise E[r_eff(Y_T) - ½∫|u/ς|² dt] (3.12)/(3.14),
  differentiated through the Euler–Maruyama solver with checkpointed segments; or
- ``objective = "adjoint_matching"``: regress g_θ onto the lean adjoint along
  simulated paths (Domingo-Enrich et al. 2024); see `hjsolve.neural.objectives` for why no
  memoryless schedule is needed when the initial law is optimised separately.
The initial law ν* ∝ h(0,·) p_noise (3.16) is drawn by importance resampling of p_noise with
the learned control as proposal (``initial_law = "importance"``), as the terminal law of the
learned auxiliary control of (3.31)–(3.32) (``"learned"``, `hjsolve.neural.initial`), or left at
p_noise (``"noise"``). value(t, y) = value_scale · log h with log h estimated by importance sampling
(`hjsolve.neural.estimators`). torch is imported only when solving.
"""
import warnings

import numpy as np

from ..errors import HJSolveError, HJSolveWarning
from ..solution import Solution

OPTIONS = {
    "objective": (str, "bridge_matching"),  # bridge_matching | relative_entropy | adjoint_matching
    "initial_law": (str, "importance"),  # importance | learned ((3.31)-(3.32)) | noise
    "initial_train_steps": (int, 300),  # initial_law = "learned": optimiser steps of the auxiliary control
    "train_steps": (int, 400),  # optimiser steps
    "batch_size": (int, 256),  # paths per step
    "steps": (int, 100),  # Euler steps on [0, T] in training
    "sample_steps": (int, 200),  # Euler steps on [0, T] for sample, value and summary
    "lr": (float, 1e-2),  # initial Adam learning rate
    "lr_final": (float, 3e-3),  # learning rate at the last step (geometric decay)
    "grad_clip": (float, 1.0),  # gradient-norm clipping (0: none); adjoint targets are heavy-tailed
    "hidden": (int, 64),  # MLP width
    "layers": (int, 3),  # MLP hidden layers
    "frequencies": (int, 6),  # Fourier features of t
    "network": (str, "mlp"),  # "mlp" or "module:factory" (factory(in, out) -> nn.Module)
    "reward_skip": (bool, True),  # add φ_θ(t) ∇r_eff(y) to the network (exact at t = T)
    "reward_transport": (bool, True),  # bridge_matching: reward term φ_θ(t) ∇_y r_eff(x̂(t, y)) at Tweedie's x̂
    "score_feature": (bool, True),  # feed the pretrained score c(t) s(T - t, y) to the network
    "weighting": (str, "sigma2"),  # adjoint matching time weights: sigma2 (ς²) | uniform
    "bridge_points": (int, 16384),  # bridge_matching: regression points per step
    "bridge_times": (int, 64),  # bridge_matching: distinct times per step
    "bridge_buffer": (int, 8),  # bridge_matching: batches of weighted endpoint pairs kept
    "bridge_reuse": (int, 4),  # bridge_matching: optimiser steps per simulated batch of paths
    "bridge_bins": (int, 20),  # bridge_matching: time bins of the adaptive time density
    "bridge_rao_blackwell": (bool, True),  # bridge_matching: targets averaged over the pairs given Y_t
    "ema": (float, 0.99),  # decay of the weight average used at the end of training (0: none)
    "segments": (int, 0),  # relative_entropy: torch.utils.checkpoint segments (0: keep the whole graph)
    "checkpoint": (str, ""),  # path of the resumable training checkpoint ("" for none)
    "checkpoint_every": (int, 50),  # steps between checkpoints
    "stop_after": (int, 0),  # stop after this many steps in this call (as if killed); 0: never
    "seed": (int, 0),
    "device": (str, "cpu"),  # torch device
    "threads": (int, 1),  # torch CPU threads while solving (1 is fastest for these small networks); 0: leave
    "dtype": (str, "float32"),  # float32 | float64
    "value_paths": (int, 256),  # importance-sampling paths per point for value() (Euler grid of `steps`)
    "table_value_paths": (int, 16),  # the same for the saved plotting table (41 x 201 points in 1-D)
    "summary_paths": (int, 20000),  # paths for log C, E_ftune r, E_pre r
    "resampling_factor": (int, 8),  # p_noise draws per kept initial point
    "sample_reweighting": (str, "initial"),  # initial (ν̂, then u_θ) | path (resample Y_T by path weights)
    "latent": (dict, {}),  # pretrained.kind = "diffusers" only: the options of hjsolve.latent.options
}
#: Options added after saves were made, with the value such a save was trained with.
SAVED_BEFORE = {"reward_transport": False}
CHOICES = {"objective": ("adjoint_matching", "bridge_matching", "relative_entropy"),
           "initial_law": ("importance", "learned", "noise"), "weighting": ("sigma2", "uniform"), "dtype": ("float32", "float64"),
           "sample_reweighting": ("initial", "path")}


class _threads:
    """Context manager: torch.set_num_threads(n) inside (n = 0 leaves the setting alone)."""

    def __init__(self, torch, n):
        self.torch, self.n = torch, int(n)

    def __enter__(self):
        self.saved = self.torch.get_num_threads()
        if self.n > 0:
            self.torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        self.torch.set_num_threads(self.saved)


def _torch():
    try:
        import torch
    except ImportError:
        raise HJSolveError("method 'neural' needs PyTorch: pip install torch==2.13.0") from None
    return torch


def check_options(options):
    for key, allowed in CHOICES.items():
        if options[key] not in allowed:
            raise HJSolveError(f"solver.neural.{key}: expected one of {', '.join(allowed)} (got {options[key]!r})")
    for key in ("train_steps", "batch_size", "steps", "sample_steps", "hidden", "layers", "value_paths",
                "summary_paths", "resampling_factor", "checkpoint_every", "table_value_paths", "bridge_points",
                "bridge_times", "bridge_buffer", "bridge_bins", "bridge_reuse", "initial_train_steps"):
        if options[key] < 1:
            raise HJSolveError(f"solver.neural.{key}: must be >= 1 (got {options[key]})")
    if not 0 <= options["ema"] < 1:
        raise HJSolveError(f"solver.neural.ema: must be in [0, 1) (got {options['ema']})")
    if not 0 < options["lr_final"] <= options["lr"]:
        raise HJSolveError("solver.neural.lr_final: must be in (0, lr]")


class NeuralSolution(Solution):
    """The trained control network with importance-sampling value and initial-law estimates."""

    method = "neural"

    def __init__(self, case, options, summary=None, net_state=None, initial_state=None):
        super().__init__(case, summary)
        torch = _torch()
        from ..neural.coefficients import TorchSampler
        from ..neural.network import build_network
        from ..neural.rewards import torch_effective_reward_gradient

        self.options = dict(options)
        self.torch = torch
        dtype = torch.float64 if options["dtype"] == "float64" else torch.float32
        self.sampler = TorchSampler(self.problem, dtype=dtype, device=options["device"])
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, the caller's RNG untouched
            torch.manual_seed(int(options["seed"]))
            self.net = build_network(options, self.problem.dimension, self.sampler.T,
                                     torch_effective_reward_gradient(self.problem), self.sampler.score_at,
                                     self.sampler.transported_gradient)
        self.net = self.net.to(dtype=dtype, device=self.sampler.device)
        if net_state is not None:
            self.net.load_state_dict(net_state)
        self.net.eval()
        self._eval_calls = 0
        self.initial = None  # the LearnedInitialLaw once fitted (initial_law = "learned")
        if initial_state is not None:
            self.fit_initial_law(initial_state)

    def fit_initial_law(self, state=None):
        """Build the learned initial law of (3.31)-(3.32) on the current network: load ``state``
        (its network's state dict), or train it with the run's seed. Returns self."""
        from ..neural.initial import LearnedInitialLaw

        self.initial = LearnedInitialLaw(self.sampler, self.net, self.options)
        if state is not None:
            self.initial.k.load_state_dict(state)
        else:
            with _threads(self.torch, self.options["threads"]):
                self.initial.train(self._generator(self.options["seed"] + 104729))
        return self

    def _generator(self, seed):
        return self.torch.Generator().manual_seed(int(seed))

    # ----- DESIGN §3 -------------------------------------------------------------------------
    def grad_log_h(self, t, y):
        """(n, d) g_θ(t, y) ≈ ∇log h(t, y); control() multiplies by ς(t)²."""
        torch = self.torch
        y = self._check_points(y)
        sampler = self.sampler
        with torch.no_grad():
            yy = torch.as_tensor(y, dtype=sampler.dtype, device=sampler.device)
            tt = torch.full((len(y),), float(t), dtype=sampler.dtype, device=sampler.device)
            scale = torch.full_like(tt, float(sampler.input_scale(float(t))))
            return self.net(tt, yy, scale).double().cpu().numpy()

    def log_h(self, t, y):
        """(n,) log h(t, y) by importance sampling with the learned control as proposal."""
        from ..neural.estimators import log_h

        self._eval_calls += 1
        gen = self._generator(self.options["seed"] + 7919 * self._eval_calls)
        with _threads(self.torch, self.options["threads"]):
            return log_h(self.sampler, self.net, float(t), self._check_points(y), self.options["value_paths"],
                         self.options["steps"], gen)

    def sample_with_stats(self, n, seed=0):
        """((n, d) samples of the fine-tuned law, dict of importance-sampling statistics).

        ``sample_reweighting = "initial"``: Y_0 ~ ν̂ (importance-resampled p_noise, (3.16)), then
        the controlled SDE with u_θ; the terminal law carries the control's error.
        ``"path"``: Y_T of ``resampling_factor`` n controlled paths from p_noise, resampled with the
        full path weights exp(r_eff(Y_T) + girsanov) ∝ dQ*/dQ^{u_θ, p_noise}: exact as the number of
        paths grows, whatever the control (which sets only the effective sample size).
        """
        with _threads(self.torch, self.options["threads"]):
            return self._sample(n, seed)

    def _sample(self, n, seed):
        from ..neural.estimators import controlled_log_weights, learned_initial_stats, resample_paths

        gen = self._generator(seed)
        opts = self.options
        if opts["sample_reweighting"] == "path":
            return resample_paths(self.sampler, self.net, n, opts["resampling_factor"], opts["sample_steps"], gen)
        if opts["initial_law"] == "learned":  # one simulation gives Y_T and the initial law's weights
            y0, log_ratio = self._learned_initial().sample(n, gen)
            y_T, log_w = controlled_log_weights(self.sampler, self.net, y0, 0.0, opts["sample_steps"], gen)
            return y_T, learned_initial_stats(log_w, log_ratio)
        y0, stats = self._draw_initial(n, gen)
        y_T, _ = controlled_log_weights(self.sampler, self.net, y0, 0.0, opts["sample_steps"], gen)
        return y_T, stats

    def sample_initial(self, n, seed=0):
        """(n, d) draws of the initial law of ``initial_law`` (ν* for importance and learned)."""
        gen = self._generator(seed)
        with _threads(self.torch, self.options["threads"]):
            if self.options["initial_law"] == "learned":
                return self._learned_initial().sample(n, gen)[0]
            return self._draw_initial(n, gen)[0]

    def _learned_initial(self):
        """The fitted `LearnedInitialLaw`; an error if training stopped before it was fitted."""
        if self.initial is None:
            raise HJSolveError("neural: initial_law = 'learned' but the initial law was not trained "
                               "(training stopped early; run again to finish)")
        return self.initial

    def _draw_initial(self, n, generator):
        """(Y_0 (n, d), stats): `estimators.draw_initial` with this solution's options."""
        from ..neural.estimators import draw_initial

        opts = self.options
        learned = self._learned_initial() if opts["initial_law"] == "learned" else None
        return draw_initial(self.sampler, self.net, n, opts["resampling_factor"], opts["sample_steps"], generator,
                            law=opts["initial_law"], learned=learned)

    def sample(self, n, seed=0):
        """(n, d) samples of the fine-tuned law (see `sample_with_stats`)."""
        return self.sample_with_stats(n, seed)[0]

    def _compute_table(self):
        """The base table with ``table_value_paths`` importance-sampling paths per point."""
        paths = self.options["value_paths"]
        self.options["value_paths"] = min(paths, self.options["table_value_paths"])
        try:
            return super()._compute_table()
        finally:
            self.options["value_paths"] = paths

    # ----- persistence -------------------------------------------------------------------------
    def _state(self):
        modules = {"net": self.net, "initial": self.initial.k if self.initial is not None else None}
        return {f"{prefix}.{k}": v.detach().cpu().numpy() for prefix, module in modules.items() if module is not None
                for k, v in module.state_dict().items()}

    @classmethod
    def from_state(cls, case, summary, state):
        if _is_latent(case):
            from ..latent import require

            require()
            from ..latent.solution import LatentSolution

            return LatentSolution.from_state(case, summary, state)
        torch = _torch()
        part = lambda prefix: {k[len(prefix):]: torch.as_tensor(v) for k, v in state.items() if k.startswith(prefix)}
        options = {**{k: v for k, (_, v) in OPTIONS.items()}, **SAVED_BEFORE, **summary["options"]}
        return cls(case, options, summary=summary, net_state=part("net."), initial_state=part("initial.") or None)

    # ----- summary -----------------------------------------------------------------------------
    def compute_summary(self, trainer=None):
        """DESIGN §3 keys from importance sampling with ``summary_paths`` paths, plus training entries."""
        from scipy.special import logsumexp

        from ..neural.estimators import controlled_log_weights, effective_sample_size

        problem, opts = self.problem, self.options
        m = opts["summary_paths"]
        gen = self._generator(opts["seed"] + 1)
        std = problem.noise_std()
        y0 = std * self.torch.randn(m, problem.dimension, generator=gen, dtype=self.torch.float64).numpy()
        y_T, log_w = controlled_log_weights(self.sampler, self.net, y0, 0.0, opts["sample_steps"], gen)
        log_C = float(logsumexp(log_w) - np.log(m))
        w = np.exp(log_w - logsumexp(log_w))
        r = problem.reward(y_T)
        r_eff = problem.effective_reward(y_T)
        x_pre, _ = controlled_log_weights(self.sampler, self.net, y0, 0.0, opts["sample_steps"], gen, control=False)
        r_pre_eff = problem.effective_reward(x_pre)
        half_log_m2 = 0.5 * float(logsumexp(2 * r_pre_eff) - np.log(m))
        kappa = problem.divergence.effective_bounds(problem.reward)[0]
        with np.errstate(over="ignore"):
            shifted = 0.5 * np.exp(half_log_m2 - kappa) if np.isfinite(kappa) else np.inf
            tv_bound = 0.5 * np.exp(half_log_m2) if problem.divergence.name == "kl" else shifted
        _, init = self._draw_initial(500, gen)
        ess = effective_sample_size(log_w)
        self.summary.update({
            "case": self.case.title, "method": self.method, "dimension": problem.dimension,
            "alpha": problem.alpha, "divergence": problem.divergence.name,
            "log_normalizer": log_C,
            "reward_pretrained": float(np.mean(problem.reward(x_pre))),
            "reward_finetuned": float(w @ r),
            "kl_finetuned_pretrained": float(w @ r_eff) - log_C,
            "tv_bound": float(tv_bound), "tv_bound_shifted": float(shifted),
            "wall_time_s": None,
            "objective": opts["objective"], "initial_law": opts["initial_law"],
            "path_ess_fraction": ess / m,
            "control_reward_mean": float(np.mean(r)),
            "options": dict(opts),
        })
        self.summary.update({k: v for k, v in init.items() if k != "initial_law"})
        if trainer is not None:
            last = trainer.history[-1] if trainer.history else (0, 0.0, np.nan, np.nan, np.nan)
            self.summary.update({"train_steps_done": trainer.step, "train_time_s": trainer.elapsed,
                                 "training_complete": trainer.step >= opts["train_steps"],
                                 "loss_final": last[2], "control_kl_final": last[4]})
        bad = [k for k, v in self.summary.items() if isinstance(v, float) and np.isnan(v)]
        if bad:
            raise HJSolveError(f"neural: the summary has NaN in {', '.join(bad)}")
        if ess / m < 0.05:
            warnings.warn(f"neural: path importance weights are degenerate (ESS {ess:.0f} of {m}); "
                          "log C and the fine-tuned statistics are unreliable - train longer", HJSolveWarning, stacklevel=2)
        return self


SOLUTION = NeuralSolution


def train_solution(case, options, callback=None):
    """(NeuralSolution, Trainer) after training (or resuming) per ``options``.

    callback(trainer) runs after every optimiser step; ``trainer.solution`` is the solution being
    trained (call ``trainer.solution.net.eval()`` before evaluating it, ``.train()`` after).
    """
    check_options(options)
    _torch()
    from ..neural.rewards import torch_effective_reward
    from ..neural.train import Trainer

    solution = NeuralSolution(case, options)
    reward_eff = torch_effective_reward(solution.problem) if options["objective"] == "relative_entropy" else None
    solution.net.train()
    trainer = Trainer(solution.problem, solution.sampler, solution.net, options, reward_eff)
    trainer.solution = solution  # for callbacks that evaluate the solution during training
    trainer.train(checkpoint=options["checkpoint"] or None, checkpoint_every=options["checkpoint_every"],
                  stop_after=options["stop_after"], callback=callback)
    solution.net.eval()
    if options["initial_law"] == "learned" and trainer.step >= options["train_steps"]:
        solution.fit_initial_law()
    return solution, trainer


def _is_latent(case):
    return getattr(case.problem.pretrained, "kind", None) == "diffusers"


def solve(case, options):
    """Train the control network (resuming from ``checkpoint`` if present) and fill the summary.

    A ``pretrained.kind = "diffusers"`` case goes to the latent-space solver (`hjsolve.latent`)
    with the options of ``[solver.neural.latent]``.
    """
    if _is_latent(case):
        from ..latent import require

        require()
        from ..latent.solution import latent_options, solve as solve_latent

        return solve_latent(case, latent_options(case, options["latent"]))
    with _threads(_torch(), options["threads"]):
        solution, trainer = train_solution(case, options)
        return solution.compute_summary(trainer)
