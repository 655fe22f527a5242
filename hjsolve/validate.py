"""``hjsolve validate``: check solvers on one case, as a table.

The exact solution is checked against an independent brute-force Monte Carlo estimate from
the pretrained sampler: log C = log E_pre[exp(r_eff)] and E_pre r. Every other method will be
compared with the exact solution; until a method exists its row says so.
"""
import numpy as np

from .errors import NotApplicableError
from .progress import progress
from .solvers import METHODS, solve

#: Pretrained samples of the Monte Carlo reference.
MC_SAMPLES = 200_000
MC_SEED = 0
#: |z| below which the exact log C agrees with the Monte Carlo estimate.
Z_TOLERANCE = 4.0
PLANNED = "not implemented yet (will be compared: max |Δv|, weighted L2 of u*, |Δ log C|, TV of the terminal law, time)"
ROW_KEYS = ("method", "status", "log_normalizer", "log_normalizer_mc", "stderr", "z",
            "reward_pretrained", "reward_pretrained_mc", "wall_time_s")
COLUMNS = (  # (row key, header)
    ("method", "method"), ("log_normalizer", "log C"), ("log_normalizer_mc", "log C (MC)"),
    ("stderr", "MC stderr"), ("z", "z"), ("reward_pretrained", "E_pre r"),
    ("reward_pretrained_mc", "E_pre r (MC)"), ("wall_time_s", "time [s]"), ("status", "status"),
)


def validate_case(case, methods=None):
    """One row (a dict with `ROW_KEYS`) per method of ``methods`` (default: every method in METHODS)."""
    methods = list(METHODS) if methods is None else list(methods)
    return [_validate(case, method) for method in progress(methods, desc="validate")]


def _validate(case, method):
    if METHODS.get(method) is None:
        return _row(method, PLANNED)
    if method == "exact":
        return validate_exact(case)
    return _row(method, "comparison with the exact solution " + PLANNED)


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
