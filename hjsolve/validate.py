"""``hjsolve validate``: check solvers on one case, as a table.

The exact solution is checked against an independent brute-force Monte Carlo estimate from
the pretrained sampler: log C = log E_pre[exp(r_eff)] and E_pre r. Every other implemented
method is compared with a reference through the `Solution` API only: the exact solution, or,
where exact does not apply (a pretrained model without closed form), the grid solution.

Columns of a comparison row (paper 000, Section 3):
``max |Δv|``    max |v_m - v_ref| over query points drawn from Q*_t (3.21) at t = k T/4;
``u* L2``       relative L2 error of u* over the same points: sqrt(Σ|Δu|² / Σ|u_ref|²), i.e.
                weighted by Q*_t (the points are samples of Q*_t);
``|Δ log C|``   from the summaries' log_normalizer;
``TV``          TV(p_m, p_ref) of the terminal law: ½ E_ref|1 - p_m/p_ref| over reference
                samples when both have a terminal density, else a histogram estimate (d ≤ 2)
                from the method's own samples.
Query points: Euler–Maruyama of the controlled SDE (3.9) with the reference control from the
reference ν* (`QUERY_PATHS` paths, `QUERY_STEPS` steps), or for ddpm standard normal points.
"""
import warnings

import numpy as np

from .errors import HJSolveError, HJSolveWarning, NotApplicableError
from .neural.metrics import controlled_marginals
from .progress import progress
from .solvers import METHODS, solve

#: Pretrained samples of the Monte Carlo reference.
MC_SAMPLES = 200_000
MC_SEED = 0
#: |z| below which the exact log C agrees with the Monte Carlo estimate.
Z_TOLERANCE = 4.0
ROW_KEYS = ("method", "status", "log_normalizer", "log_normalizer_mc", "stderr", "z",
            "reward_pretrained", "reward_pretrained_mc", "max_value_error", "control_l2_error",
            "log_normalizer_error", "tv_terminal", "wall_time_s")
COLUMNS = (  # (row key, header)
    ("method", "method"), ("log_normalizer", "log C"), ("log_normalizer_mc", "log C (MC)"),
    ("stderr", "MC stderr"), ("z", "z"), ("reward_pretrained", "E_pre r"),
    ("reward_pretrained_mc", "E_pre r (MC)"), ("max_value_error", "max |Δv|"),
    ("control_l2_error", "u* L2"), ("log_normalizer_error", "|Δ log C|"), ("tv_terminal", "TV"),
    ("wall_time_s", "time [s]"), ("status", "status"),
)
#: Paths and Euler–Maruyama steps of the reference controlled SDE that draws the query points.
QUERY_PATHS = 1000
QUERY_STEPS = 200
QUERY_SEED = 1
#: Reference samples of the terminal law for the TV column.
TV_SAMPLES = 4000


def validate_case(case, methods=None):
    """One row (a dict with `ROW_KEYS`) per method of ``methods`` (default: every method in METHODS)."""
    methods = list(METHODS) if methods is None else list(methods)
    reference = _Reference(case)
    return [_validate(case, method, reference) for method in progress(methods, desc="validate")]


def _validate(case, method, reference):
    if method == "exact":
        return validate_exact(case)
    return compare_method(case, method, reference)


def reference_solution(case):
    """The exact solution of ``case``, or its grid solution where exact does not apply."""
    for name in ("exact", "grid"):
        try:
            return solve(case, name)
        except NotApplicableError:
            continue
    raise NotApplicableError("no reference solution (exact or grid) applies to this case")


class _Reference:
    """The reference solution (exact, else grid) and its query points, computed on first use."""

    def __init__(self, case):
        self.case = case
        self._solution = self._name = self._queries = None

    def solution(self):
        if self._solution is None:
            self._solution = reference_solution(self.case)
            self._name = self._solution.method
        return self._solution, self._name

    def queries(self):
        """[(t, points (n, d))] at which values and controls are compared."""
        if self._queries is None:
            self._queries = query_points(self.solution()[0])
        return self._queries


def query_points(reference, n=QUERY_PATHS, steps=QUERY_STEPS, seed=QUERY_SEED):
    """[(t, y)]: samples of Q*_t at t = k T/4 (3.21) from the controlled SDE (3.9) under the
    reference's own control and ν*; for ddpm, standard normal points at steps 0, N/2, N-1."""
    problem = reference.problem
    if problem.is_discrete:
        rng = np.random.default_rng(seed)
        N = problem.sde.steps
        return [(t, rng.standard_normal((n, problem.dimension))) for t in sorted({0, N // 2, N - 1})]
    T = float(problem.sde.T)
    return controlled_marginals(reference, [k * T / 4 for k in range(5)], n, seed, T / steps)


def compare_method(case, method, reference):
    """A row comparing ``method`` with the reference through the `Solution` API."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", HJSolveWarning)
            solution = solve(case, method)
        ref, ref_name = reference.solution()
        queries = reference.queries()
    except NotApplicableError as exc:
        return _row(method, f"not applicable: {exc}")
    except HJSolveError as exc:
        return _row(method, f"failed: {exc}")
    if method == ref_name:
        return _row(method, "reference (exact does not apply)", log_normalizer=solution.summary["log_normalizer"],
                    wall_time_s=solution.summary["wall_time_s"])
    worst, num, den = 0.0, 0.0, 0.0
    for t, y in queries:
        v_m, u_m = solution.value_and_control(t, y)
        v_r, u_r = ref.value_and_control(t, y)
        worst = max(worst, float(np.max(np.abs(v_m - v_r))))
        num += float(np.sum((u_m - u_r) ** 2))
        den += float(np.sum(u_r**2))
    log_C_error = abs(solution.summary["log_normalizer"] - ref.summary["log_normalizer"])
    tv = terminal_tv(solution, ref)
    notes = [f"vs {ref_name}"] + [str(w.message).split(";")[0] for w in caught]
    return _row(method, "ok: " + "; ".join(notes), log_normalizer=solution.summary["log_normalizer"],
                reward_pretrained=solution.summary.get("reward_pretrained"), max_value_error=worst,
                control_l2_error=float(np.sqrt(num / den)) if den > 0 else None,
                log_normalizer_error=log_C_error, tv_terminal=tv, wall_time_s=solution.summary["wall_time_s"])


def terminal_tv(solution, reference, n=TV_SAMPLES, seed=2):
    """TV(p_m, p_ref) of the terminal laws: ½ E_ref|1 - p_m/p_ref| when both have densities,
    else a histogram estimate from samples (d ≤ 2; None beyond)."""
    try:
        x = reference.sample(n, seed=seed)
        log_ratio = solution.terminal_log_density(x) - reference.terminal_log_density(x)
        return float(0.5 * np.mean(np.abs(-np.expm1(np.minimum(log_ratio, 700.0)))))
    except (HJSolveError, NotImplementedError, AttributeError):
        pass
    d = reference.problem.dimension
    if d > 2:
        return None
    try:
        a, b = solution.sample(n, seed=seed), reference.sample(n, seed=seed + 1)
    except (HJSolveError, NotImplementedError):
        return None
    both = np.concatenate([a, b])
    edges = [np.linspace(lo, hi, 41 if d == 1 else 21) for lo, hi in zip(both.min(0), both.max(0))]
    ha = np.histogramdd(a, bins=edges)[0] / n
    hb = np.histogramdd(b, bins=edges)[0] / n
    return float(0.5 * np.abs(ha - hb).sum())


def validate_exact(case, n=MC_SAMPLES, seed=MC_SEED):
    """The exact log C and E_pre r against a Monte Carlo estimate from ``n`` pretrained samples."""
    try:
        solution = solve(case, "exact")
    except NotApplicableError as exc:
        return _row("exact", f"not applicable: {exc}")
    x = solution.sample_pretrained(n, np.random.default_rng(seed))[0]
    mc = monte_carlo_log_normalizer(case.problem.effective_reward(x))
    summary = solution.summary
    z = (summary["log_normalizer"] - mc["log_normalizer"]) / mc["stderr"] if mc["stderr"] > 0 else None
    agree = z is None or abs(z) < Z_TOLERANCE
    status = (f"{'ok' if agree else 'MISMATCH'}: |z| {'<' if agree else '>='} {Z_TOLERANCE:g} "
              f"({n} MC samples, effective sample size {mc['ess']:.3g})")
    return _row("exact", status, log_normalizer=summary["log_normalizer"],
                log_normalizer_mc=mc["log_normalizer"], stderr=mc["stderr"], z=z,
                reward_pretrained=summary["reward_pretrained"],
                reward_pretrained_mc=float(np.mean(case.problem.reward(x))),
                wall_time_s=summary["wall_time_s"])


def monte_carlo_log_normalizer(r_eff):
    """log mean exp(r_eff), its delta-method standard error and the effective sample size.

    From samples r_eff (n,) under p_pre, with w = exp(r_eff - max r_eff):
    log C ≈ max + log mean(w), se ≈ se(mean w) / mean(w), ESS = (Σ w)² / Σ w².
    """
    r_eff = np.asarray(r_eff, dtype=float)
    top = float(np.max(r_eff))
    w = np.exp(r_eff - top)
    mean = float(np.mean(w))
    stderr = float(np.std(w, ddof=1) / np.sqrt(len(w)) / mean)
    ess = float(np.sum(w) ** 2 / np.sum(w**2))
    return {"log_normalizer": top + float(np.log(mean)), "stderr": stderr, "ess": ess}


def _row(method, status, **values):
    row = dict.fromkeys(ROW_KEYS)
    row.update(method=method, status=status, **values)
    return row


def format_table(rows):
    """An aligned text table of validation rows: numbers right-aligned, the status last."""
    cells = [[header for _, header in COLUMNS]]
    cells += [[format_value(row.get(key)) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]

    def line(values):
        first = values[0].ljust(widths[0])
        middle = [value.rjust(width) for value, width in zip(values[1:-1], widths[1:])]
        return "  ".join([first, *middle, values[-1]]).rstrip()

    header = line(cells[0])
    return "\n".join([header, "-" * len(header), *(line(values) for values in cells[1:])])


def format_value(value):
    """One-line text for a table cell: floats with 6 significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{key}={format_value(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return " ".join(str(value).split())
