"""Particle-steps per second of the pretrained sampler (2.4): Numba kernels vs vectorised NumPy
vs torchsde on CPU (same SDE, same path count, same step count), in 1-D and 10-D.

The SDE: VP schedule (β 0.1..20, T = 1) and a two-component isotropic Gaussian-mixture score
(exact). Numba and NumPy use the exponential integrator on the same grid; torchsde integrates
the same drift b̄(t, y) = λ(t) y + g2 s and diffusion ς(t) with its Euler scheme (method
"euler", fixed dt), the closest it offers. Timings exclude compilation (one warm-up run each).

    .venv/bin/python benchmarks/bench_particle.py [--paths N] [--steps K]

torchsde is optional: install with `.venv/bin/pip install torch==2.13.0 torchsde` (pinned).
"""
import argparse
import datetime
import os
import platform
import time

import numba
import numpy as np

from hjsolve.case import case_from_dict
from hjsolve.particle.rng import stream_key
from hjsolve.particle.sampler import PretrainedSampler


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def make_problem(d):
    e1 = np.eye(d)[0]
    return case_from_dict({
        "title": f"bench {d}-D", "sde": {"kind": "vp", "T": 1.0},
        "pretrained": {"kind": "gaussian_mixture", "weights": [0.5, 0.5],
                       "means": [(-2 * e1).tolist(), (2 * e1).tolist()], "stds": [0.5, 0.5]},
        "reward": {"kind": "linear", "weight": e1.tolist()}, "finetune": {"alpha": 1.0, "divergence": "kl"},
    }).problem


def run_numba(problem, n, steps):
    sampler = PretrainedSampler(problem, steps)
    sampler.run(stream_key(0, 0), 1000)  # compile / load cache
    start = time.perf_counter()
    sampler.run(stream_key(0, 1), n)
    return time.perf_counter() - start


def run_numpy(problem, n, steps):
    """The same exponential-integrator steps, vectorised over particles in NumPy."""
    sampler = PretrainedSampler(problem, steps)
    sched, _ = sampler.grid(0.0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    y = np.sqrt(problem.sde.noise_var()) * rng.standard_normal((n, problem.dimension))
    for k in range(sched.n_steps):
        y = (sched.lin[k] * y + sched.coef[k] * problem.score(sched.s[k], y)
             + sched.sd[k] * rng.standard_normal(y.shape))
    return time.perf_counter() - start


def run_torchsde(problem, n, steps):
    try:
        import torch
        import torchsde
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    pre, sde = problem.pretrained, problem.sde
    means = torch.tensor(pre.means, dtype=torch.float64)
    w = torch.tensor(pre.weights, dtype=torch.float64)
    v0 = float(pre.isotropic_vars[0])
    T = float(sde.T)

    class Sampler(torch.nn.Module):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):
            s = T - float(t)
            a, var, g2 = float(sde.a(s)), float(sde.var(s)), float(sde.g2(s))
            c = a * a * v0 + var
            diff = y[:, None, :] - a * means[None]
            logp = torch.log(w)[None] - 0.5 * (diff**2).sum(-1) / c
            pi = torch.softmax(logp, dim=1)
            score = -(pi[:, :, None] * diff).sum(1) / c
            return 0.5 * g2 * y + g2 * score

        def g(self, t, y):
            return torch.full_like(y, float(np.sqrt(sde.g2(T - float(t)))))

    y0 = np.sqrt(sde.noise_var()) * torch.randn(n, problem.dimension, dtype=torch.float64)
    ts = torch.tensor([0.0, T], dtype=torch.float64)
    model = Sampler()
    with torch.no_grad():
        torchsde.sdeint(model, y0[:100], ts, method="euler", dt=T / steps)
        start = time.perf_counter()
        torchsde.sdeint(model, y0, ts, method="euler", dt=T / steps)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    print(f"# bench_particle  {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"# {platform.platform()}  {cpu_model()}  cpus={os.cpu_count()}  numba threads={numba.get_num_threads()}"
          f"  load={os.getloadavg()[0]:.2f}")
    print(f"# paths={args.paths} steps={args.steps}")
    header = f"{'d':>3}  {'numba [steps/s]':>16}  {'numpy [steps/s]':>16}  {'torchsde [steps/s]':>18}  {'vs numpy':>8}  {'vs torchsde':>11}"
    print(header)
    print("-" * len(header))
    missing = False
    for d in (1, 10):
        problem = make_problem(d)
        work = args.paths * args.steps
        t_nb = run_numba(problem, args.paths, args.steps)
        t_np = run_numpy(problem, args.paths, args.steps)
        t_ts = run_torchsde(problem, args.paths, args.steps)
        missing |= t_ts is None
        ts_rate = f"{work / t_ts:18.3e}" if t_ts else f"{'-':>18}"
        ts_ratio = f"{t_ts / t_nb:10.1f}x" if t_ts else f"{'-':>11}"
        print(f"{d:>3}  {work / t_nb:16.3e}  {work / t_np:16.3e}  {ts_rate}  {t_np / t_nb:7.1f}x  {ts_ratio}")
    if missing:
        print("# torchsde skipped: not installed (`.venv/bin/pip install torch==2.13.0 torchsde`)")


if __name__ == "__main__":
    main()
