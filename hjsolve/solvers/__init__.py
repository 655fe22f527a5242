"""One entry point, `solve`, over every solver module.

A solver module defines ``OPTIONS`` (option name -> (type, default)), ``SOLUTION`` (its
`Solution` subclass) and ``solve(case, options) -> Solution``.
"""
import importlib
import time

from ..errors import CaseError, HJSolveError

#: Every method the design names, with the module that implements it.
METHODS = {
    "exact": "hjsolve.solvers.exact",
    "grid": "hjsolve.solvers.grid",
    "fipy": "hjsolve.solvers.fipy_solver",
    "particle": "hjsolve.solvers.particle",
    "pift": "hjsolve.solvers.pift",
    "neural": "hjsolve.solvers.neural",
}


def _module(method):
    if method not in METHODS:
        raise HJSolveError(f"unknown method '{method}' (expected one of {', '.join(METHODS)})")
    return importlib.import_module(METHODS[method])


def solver_options_spec(method):
    """{option: type} for ``method``."""
    return {name: kind for name, (kind, _) in _module(method).OPTIONS.items()}


def solution_class(method):
    return _module(method).SOLUTION


def resolve_options(method, case_options, overrides):
    """Defaults, then the case's [solver.<method>] table, then keyword overrides."""
    spec = _module(method).OPTIONS
    merged = {name: default for name, (_, default) in spec.items()}
    for source in (case_options, overrides):
        for key, value in source.items():
            if key not in spec:
                raise HJSolveError(f"solver.{method}.{key}: unknown option (expected one of {', '.join(spec)})")
            merged[key] = value
    return merged


def solve(case, method=None, **options):
    """Solve ``case`` with ``method`` (default: the case's [solver] method).

    Keyword options override the case's ``[solver.<method>]`` table.
    """
    method = method or case.method
    module = _module(method)
    start = time.perf_counter()
    try:
        solution = module.solve(case, resolve_options(method, case.options(method), options))
    except HJSolveError as exc:
        located = _naming_the_case(exc, case)
        if located is exc:
            raise
        raise located from exc
    solution.summary["wall_time_s"] = time.perf_counter() - start
    return solution


def _naming_the_case(exc, case):
    """A solver's ``solver.<method>.<key>: reason`` error as a `CaseError` naming the case file
    (the checks of option values live in the solvers); any other error unchanged."""
    key, sep, reason = str(exc).partition(": ")
    if type(exc) is not HJSolveError or not case.source or not key.startswith("solver.") or not sep:
        return exc
    return CaseError(case.source, key, reason)
