"""hjsolve: reward fine-tuning of diffusion models as stochastic control (DESIGN.md)."""

__version__ = "0.1.0"

from .case import Case, load_case  # noqa: E402
from .errors import CaseError, DomainError, HJSolveError, NotApplicableError  # noqa: E402
from .problem import Problem  # noqa: E402
from .solution import Solution, load  # noqa: E402
from .solvers import solve  # noqa: E402

__all__ = [
    "Case", "CaseError", "DomainError", "HJSolveError", "NotApplicableError", "Problem",
    "Solution", "load", "load_case", "solve", "__version__",
]
