"""Time to accuracy of the grid solver against FiPy and a plain SciPy (scipy.sparse) version of
the same scheme, on a 2-D case; the grid's cell-steps per second beside this machine's memory
bandwidth (a STREAM-like triad measured here). Not a test: prints a table.

    python benchmarks/bench_grid.py [--quick]

Accuracy: max |Δ log h| against the exact solution at query points (grid nodes, shifted by
0.37 cell, where Q*_t has mass, at 5 times), the same measure as tests/test_grid.py.
"""
import argparse
import datetime
import functools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from grid_helpers import grid_errors  # noqa: E402

from hjsolve.case import case_from_dict  # noqa: E402
from hjsolve.grid.coefficients import Generator  # noqa: E402
from hjsolve.grid.passes import FLOOR, RANNACHER, solve_passes, step_factors  # noqa: E402
from hjsolve.solvers import solve  # noqa: E402
from hjsolve.solvers.grid import CACHE_BYTES, GridSolution, initial_masses, setup  # noqa: E402

CASE = {
    "title": "bench: bimodal 2-D, VP, quadratic reward",
    "sde": {"kind": "vp", "T": 1.0},
    "pretrained": {"kind": "gaussian_mixture", "weights": [0.4, 0.6], "means": [[-2.0, 0.0], [2.0, 1.0]],
                   "stds": [0.5, 0.7]},
    "reward": {"kind": "quadratic", "center": [2.0, 0.0], "scale": 1.0},
    "finetune": {"alpha": 1.0, "divergence": "kl"},
}


def triad_bandwidth(n=2**25, repeats=5):
    """GB/s of a = b + s c (3 arrays of n doubles moved), best of ``repeats`` (NumPy, in place)."""
    b, c = np.random.rand(n), np.random.rand(n)
    a = np.empty(n)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.multiply(c, 3.0, out=a)
        a += b
        best = min(best, time.perf_counter() - start)
    return 4 * 8 * n / best / 1e9  # multiply: read c, write a; add: read a, b, write a


def passes_throughput(case, points, steps):
    """Cell-steps/s of the backward and forward passes alone, as the solver runs them
    (`solve_passes`: on 2-3 threads side by side, one thread each), without the box, the
    summary or anything else of `solve`."""
    problem = case.problem
    domain, tg = setup(case, {"points": points, "time_steps": steps}, "grid")
    r_eff = problem.effective_reward(domain.to_y(tg.T, domain.nodes()))
    masses = initial_masses(problem, domain)
    start = time.perf_counter()
    solve_passes(problem, domain, tg, r_eff, masses, CACHE_BYTES)
    return 2 * points**2 * tg.nt / (time.perf_counter() - start)


def scipy_solve(case, points, steps):
    """The same scheme (fitted rates, Strang-split Crank–Nicolson, Rannacher start, rescaling,
    discrete-adjoint forward pass) with scipy.sparse matrices and SuperLU, no Numba."""
    problem = case.problem
    domain, tg = setup(case, {"points": points, "time_steps": steps}, "grid")
    gen = Generator(problem, domain)
    n, N = domain.n, domain.n**2
    eye = sp.identity(N, format="csc")

    def axis_matrix(B, a, axis):
        dz = domain.dz
        pe = B * dz / (2 * a)
        fit = np.where(np.abs(pe) < 1e-4, 1 + pe**2 / 3, pe / np.tanh(np.where(pe == 0, 1, pe)))
        up = a * fit / dz**2 + B / (2 * dz)
        down = a * fit / dz**2 - B / (2 * dz)
        idx = np.indices(domain.shape).reshape(2, -1)[axis]
        up[idx == n - 1] = 0.0
        down[idx == 0] = 0.0
        stride = n if axis == 0 else 1
        rows = np.arange(N)
        L = sp.coo_matrix((-(up + down), (rows, rows)), shape=(N, N))
        L = L + sp.coo_matrix((up[idx < n - 1], (rows[idx < n - 1], rows[idx < n - 1] + stride)), shape=(N, N))
        L = L + sp.coo_matrix((down[idx > 0], (rows[idx > 0], rows[idx > 0] - stride)), shape=(N, N))
        return L.tocsc()

    def factors(k):
        ds, t = tg.step(k)
        B, a = gen.drift(t)
        Ls = [axis_matrix(B[:, i], a[i], i) for i in range(2)]
        out = []
        for axis, frac, theta in step_factors(2, k < RANNACHER):
            dt = frac * ds
            out.append((splu((eye - theta * dt * Ls[axis]).tocsc()), (eye + (1 - theta) * dt * Ls[axis]).tocsr()))
        return out

    r_eff = problem.effective_reward(domain.to_y(tg.T, domain.nodes()))
    offset = r_eff.max()
    h = np.exp(r_eff - offset)
    log_h = np.empty((tg.levels, N))
    log_h[0] = np.log(np.maximum(h, FLOOR)) + offset
    for k in range(tg.nt):
        for lu, ex in factors(k):
            h = lu.solve(ex @ h)
        top = h.max()
        h /= top
        offset += np.log(top)
        if (k + 1) % tg.save_every == 0:
            log_h[(k + 1) // tg.save_every] = np.log(np.maximum(h, FLOOR)) + offset
    m = initial_masses(problem, domain)
    mass = np.empty((tg.levels, N))
    mass[-1] = m
    for k in range(tg.nt - 1, -1, -1):
        for lu, ex in factors(k)[::-1]:
            m = ex.T @ lu.solve(m, trans="T")
        if k % tg.save_every == 0:
            mass[k // tg.save_every] = m
    state = {"center": domain.center, "radius": domain.radius, "n": n, "noise_width": domain.noise_width,
             "nt": tg.nt, "save_every": tg.save_every, "log_h": log_h, "mass": mass, "log_C": 0.0}
    return GridSolution(case, state=state).compute_summary()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def best_and_median(fn, repeat):
    """(output of the fastest call, its wall, the median wall) of ``repeat`` calls of fn. Only the
    fastest output is kept: holding all of them would make every call write fresh memory, whose
    first touch is slow on this VM (0.15-0.5 s more per solve at 161^2-241^2)."""
    best, walls = None, []
    for _ in range(repeat):
        out, wall = timed(fn)
        walls.append(wall)
        if wall == min(walls):
            best = out
        del out
    return best, min(walls), float(np.median(walls))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer resolutions")
    parser.add_argument("--repeat", type=int, default=3, help="timings of each grid run; the best and the "
                        "median are printed (the machine may be shared)")
    args = parser.parse_args()
    case = case_from_dict(CASE)
    exact = solve(case, "exact")
    runs = {
        "grid": ([(41, 25), (81, 50), (161, 100), (241, 200), (321, 300), (481, 400)] if not args.quick
                 else [(41, 25), (81, 50), (161, 100)]),
        "scipy": [(81, 50), (161, 100)] if not args.quick else [(81, 50)],
        "fipy": [(41, 50), (61, 100)] if not args.quick else [(41, 50)],
    }
    solve(case, "grid", points=21, time_steps=4)  # compile / load the Numba cache outside the timings
    rows = []
    for method, settings in runs.items():
        for points, steps in settings:
            if method == "scipy":
                run = functools.partial(scipy_solve, case, points, steps)
            else:
                run = functools.partial(solve, case, method, points=points, time_steps=steps)
            sol, wall, median = best_and_median(run, args.repeat if method == "grid" else 1)
            worst, control = grid_errors(sol, exact)
            cell_steps = 2 * points**2 * sol.time_grid.nt  # backward + forward
            rows.append((method, points, sol.time_grid.nt, wall, worst, control,
                         abs(sol.summary["log_normalizer"] - exact.summary["log_normalizer"]), cell_steps / wall,
                         cell_steps / median))
            print(f"  done {method} {points}^2 x {steps}: {wall:.2f} s", file=sys.stderr, flush=True)
    passes = {points: sorted(passes_throughput(case, points, steps) for _ in range(args.repeat))
              for points, steps in runs["grid"] if points >= 161}
    bandwidth = triad_bandwidth()
    load = os.getloadavg()
    print(f"# bench_grid  {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"# {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"# case: {CASE['title']}")
    print("| method | points | steps | wall [s] | max abs dlog h | u* L2 | abs dlog C | cell-steps/s (best) "
          "| cell-steps/s (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for method, points, steps, wall, worst, control, dlogc, rate, typical in rows:
        print(f"| {method} | {points}^2 | {steps} | {wall:.2f} | {worst:.2e} | {control:.2e} | {dlogc:.2e} "
              f"| {rate:.3g} | {typical:.3g} |")
    for fipy in (row for row in rows if row[0] == "fipy"):
        match = [row for row in rows
                 if row[0] == "grid" and row[4] <= fipy[4] and row[5] <= fipy[5] and row[6] <= fipy[6]]
        if match:
            best = min(match, key=lambda row: row[3])
            print(f"\ngrid {best[1]}^2 x {best[2]} vs fipy {fipy[1]}^2 x {fipy[2]} (grid at least as accurate "
                  f"in all three errors): {fipy[3] / best[3]:.0f}x faster")
    print("\nBackward and forward passes alone (solve_passes, without the box and the summary), best and "
          "median: " + ", ".join(f"{points}^2 {rates[-1]:.3g} / {float(np.median(rates)):.3g}"
                                 for points, rates in passes.items()) + " cell-steps/s")
    bytes_per_cell_step = 8 * (3 * 4 + 4)  # 3 sweeps of (u, up, down read, u written) + the rates written
    print(f"STREAM-like triad (NumPy): {bandwidth:.1f} GB/s; a 2-D cell-step moves at least "
          f"{bytes_per_cell_step} bytes (3 sweeps, each reading u, up, down and writing u; the rates of both "
          f"axes written in each pass), so if all of it went to memory, bandwidth would bound it at "
          f"{bandwidth * 1e9 / bytes_per_cell_step:.3g} cell-steps/s (below ~400^2 it stays in cache)")


if __name__ == "__main__":
    main()
