"""Neural solver: weighted relative L2 error of u, value error and a two-sample test against a
reference, versus CPU training time: the exact solver on the bundled-style 1-D and 2-D mixture
cases, the grid solver on the two-moons case (a python score model, no closed form).

    .venv/bin/python benchmarks/bench_neural.py [--budget 180] [--threads 1] [--cases 1d,2d,moons] [--set hidden=128]

Prints one table row per evaluation point: case, objective, step, training time [s] (evaluation
excluded), rel. L2 error of u over (t, Q*_t), max |Δ value| on Q*_{0.5} points (kl: α log h),
the energy distance and the KS-projection two-sample p-value of n = 3000 samples against the
reference's samples. The header gives the platform, CPU, threads, load and date.
"""
import argparse
import datetime
import os
import platform
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402

import hjsolve  # noqa: E402
from hjsolve.neural.metrics import energy_distance, reference_marginals, two_sample_pvalue, weighted_relative_l2  # noqa: E402
from hjsolve.solvers import neural  # noqa: E402
from hjsolve.validate import reference_solution  # noqa: E402
from conftest import BIMODAL_1D, make_case  # noqa: E402

MOONS = Path(__file__).resolve().parents[1] / "cases" / "two_moons_2d.toml"

CASE_2D = {
    "title": "bimodal 2-D", "sde": {"kind": "vp", "T": 1.0},
    "pretrained": {"kind": "gaussian_mixture", "weights": [0.4, 0.6], "means": [[-1.5, 0.0], [1.5, 1.0]],
                   "covs": [[[0.3, 0.1], [0.1, 0.2]], [[0.25, 0.0], [0.0, 0.4]]]},
    "reward": {"kind": "quadratic", "center": [1.5, 0.0], "scale": 1.0},
    "finetune": {"alpha": 1.0, "divergence": "kl"}, "solver": {"method": "neural"},
}
SETTINGS = {  # objective -> option overrides
    "bridge_matching": {"objective": "bridge_matching"},
    "relative_entropy": {"objective": "relative_entropy", "batch_size": 256, "lr": 1e-2, "lr_final": 3e-4, "segments": 0},
    "adjoint_matching": {"objective": "adjoint_matching", "batch_size": 256, "lr": 3e-3, "lr_final": 1e-4},
    "relative_entropy_200": {"objective": "relative_entropy", "batch_size": 256, "lr": 1e-2, "lr_final": 3e-4,
                             "segments": 0, "steps": 200},
}


def value_error(sol, reference, n=300, seed=1):
    (_, y), = reference_marginals(reference, [0.5], n, seed=seed)
    return float(np.max(np.abs(sol.value(0.5, y) - reference.value(0.5, y))))


def run(name, case, objective, budget, evals, overrides=None):
    reference = reference_solution(case)
    reference_samples = reference.sample(3000, seed=99)
    opts = {k: v for k, (_, v) in neural.OPTIONS.items()}
    opts.update(SETTINGS[objective])
    opts.update(overrides or {})
    opts["train_steps"] = 10_000  # replaced below once the step time is known
    steps_per_eval = []

    def callback(trainer):
        if trainer.step in (5, 40):  # the step time, estimated twice (early steps are often faster)
            total = max(int(budget * trainer.step / trainer.elapsed), trainer.step + 1)
            trainer.options["train_steps"] = total  # lr decay targets the budget
            steps_per_eval[:] = [max(total // evals, 1)]
        sol = trainer.solution
        if steps_per_eval and (trainer.step % steps_per_eval[0] == 0 or trainer.step == trainer.options["train_steps"]):
            sol.net.eval()
            err = weighted_relative_l2(sol.control, reference, n=1000)
            row = [name, objective, trainer.step, trainer.elapsed, err]
            if trainer.step == trainer.options["train_steps"]:
                y = sol.sample(3000, seed=7)
                row += [value_error(sol, reference), energy_distance(y, reference_samples),
                        two_sample_pvalue(y, reference_samples)]
            print(format_row(row), flush=True)
            sol.net.train()

    # the Trainer reads its options at every step, so the budgeted train_steps set above is seen
    neural.train_solution(case, opts, callback=callback)


def format_row(row):
    cells = [f"{row[0]:<6}", f"{row[1]:<17}", f"{row[2]:>6}", f"{row[3]:>8.1f}", f"{row[4]:>8.3f}"]
    if len(row) > 5:
        cells += [f"{row[5]:>8.3f}", f"{row[6]:>9.4f}", f"{row[7]:>8.3g}"]
    return " | ".join(cells)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=180.0, help="CPU training seconds per run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--evals", type=int, default=6)
    parser.add_argument("--cases", default="1d,2d,moons")
    parser.add_argument("--objectives", default="bridge_matching,relative_entropy")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a [solver.neural] option (TOML value), e.g. --set hidden=128")
    args = parser.parse_args()
    overrides = {k: tomllib.loads(f"v = {v}")["v"] for k, v in (item.split("=", 1) for item in args.set)}
    torch.set_num_threads(args.threads)
    print(f"# bench_neural  {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  "
          f"{platform.platform()}  {platform.processor() or platform.machine()}  cpus={os.cpu_count()}  "
          f"torch={torch.__version__} threads={args.threads}  load={os.getloadavg()[0]:.2f}  budget={args.budget:g}s  {overrides or ''}")
    print("case   | objective         |   step | train s  | relL2(u) | max|dv|  | energy d  | KS p")
    cases = {"1d": lambda: make_case(BIMODAL_1D), "2d": lambda: make_case(CASE_2D), "moons": lambda: hjsolve.load_case(MOONS)}
    for name in args.cases.split(","):
        for objective in args.objectives.split(","):
            run(name, cases[name](), objective, args.budget, args.evals, overrides)
    print(f"# load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
