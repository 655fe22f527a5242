"""FiPy cross-check of the grid solver (d ≤ 2): the same equations through FiPy's terms.

Same z-coordinates and box as `grid` (`hjsolve.grid.domain`): FiPy cells are centred on the
grid's nodes. Backward, in s = T - t (B·∇h = ∇·(B h) - (∇·B) h):

    ∂_s h = Σ_i a_i ∂_i² h + ∇·(B h) - (∇·B) h
    TransientTerm() == DiffusionTerm(a) - ExponentialConvectionTerm(-B) - ImplicitSourceTerm(∇·B)

and forward, for the density of Q_t in t: TransientTerm() + ExponentialConvectionTerm(B) ==
DiffusionTerm(a). FiPy's default boundary is no flux; its time stepping is backward Euler
(first order), so it needs more steps than `grid` for the same accuracy. h is rescaled by its
maximum after every step (log space). FiPy is optional: ``pip install hjsolve[fipy]``.
"""
import numpy as np

from ..errors import HJSolveError, NotApplicableError
from ..grid.coefficients import Generator
from ..grid.passes import FLOOR
from ..grid.solution_base import TensorGridSolution
from .grid import initial_masses, setup

OPTIONS = {
    "points": (int, 0),  # cells per axis; 0: 201, 61 for d = 1, 2
    "time_steps": (int, 0),  # backward-Euler steps; 0: 400, 100 for d = 1, 2
    "save_every": (int, 0),  # steps between saved levels; 0: keep ≤ 65 levels
    "domain": (list, None),  # data box [[lo, hi], ...] at t = T; None: chosen from the model
    "noise_width": (float, 6.0),  # noise standard deviations covered by the box at every t
    "sample_steps": (int, 1000),  # Euler–Maruyama steps of `sample`
}
DEFAULT_POINTS = {1: 201, 2: 61}
DEFAULT_STEPS = {1: 400, 2: 100}


class FipySolution(TensorGridSolution):
    method = "fipy"


SOLUTION = FipySolution


def _import_fipy():
    try:
        import fipy
    except ImportError:
        raise HJSolveError("method 'fipy' needs FiPy: pip install 'hjsolve[fipy]' (or pip install fipy)") from None
    return fipy


class _FipyModel:
    """FiPy mesh, variables and per-time coefficients for one domain."""

    def __init__(self, fipy, problem, domain):
        self.fipy, self.domain = fipy, domain
        d, n, dz = domain.d, domain.n, domain.dz
        if d == 1:
            mesh = fipy.Grid1D(nx=n, dx=dz)
        else:
            mesh = fipy.Grid2D(nx=n, ny=n, dx=dz, dy=dz)
        self.mesh = mesh + ((-1.0 - 0.5 * dz,),) * 1 if d == 1 else mesh + ((-1.0 - 0.5 * dz,), (-1.0 - 0.5 * dz,))
        self.generator = Generator(problem, domain)
        # FiPy's x is our last axis, y our first: its cell order (x fastest) is our C order.
        self.face_z = np.asarray(self.mesh.faceCenters)[::-1].T.copy()

    def coefficients(self, t):
        """(diffusion term coefficient, face velocity B as a rank-1 FaceVariable)."""
        fipy, d = self.fipy, self.domain.d
        B, a = self.generator.drift(t, self.face_z)
        velocity = fipy.FaceVariable(mesh=self.mesh, rank=1, value=B[:, ::-1].T)
        diffusion = float(a[0]) if d == 1 else [[[float(a[1]), 0.0], [0.0, float(a[0])]]]
        return diffusion, velocity

    def backward_equation(self, t):
        fipy = self.fipy
        diffusion, velocity = self.coefficients(t)
        return (fipy.TransientTerm() == fipy.DiffusionTerm(coeff=diffusion)
                - fipy.ExponentialConvectionTerm(coeff=-velocity)
                - fipy.ImplicitSourceTerm(coeff=velocity.divergence))

    def forward_equation(self, t):
        fipy = self.fipy
        diffusion, velocity = self.coefficients(t)
        return fipy.TransientTerm() + fipy.ExponentialConvectionTerm(coeff=velocity) == fipy.DiffusionTerm(coeff=diffusion)


def solve(case, options):
    """Backward and forward passes with FiPy, then the grid solution's summary."""
    fipy = _import_fipy()
    problem = case.problem
    if problem.dimension > 2:
        raise NotApplicableError(f"fipy: d <= 2 (got d = {problem.dimension}); use method 'grid'")
    d = problem.dimension
    options = dict(options)
    options["points"] = options.get("points") or DEFAULT_POINTS[d]
    options["time_steps"] = options.get("time_steps") or DEFAULT_STEPS[d]
    domain, tg = setup(case, options, "fipy")
    model = _FipyModel(fipy, problem, domain)
    nodes = domain.nodes()

    r_eff = problem.effective_reward(domain.to_y(tg.T, nodes))
    offset = float(r_eff.max())
    h = fipy.CellVariable(mesh=model.mesh, value=np.exp(r_eff - offset))
    log_h = np.empty((tg.levels, nodes.shape[0]))
    log_h[0] = np.log(np.maximum(np.asarray(h.value), FLOOR)) + offset
    for k in range(tg.nt):  # s from 0 to T: t from T to 0
        model.backward_equation(tg.T - (k + 1) * tg.ds).solve(var=h, dt=tg.ds)
        top = float(np.max(h.value))
        if not top > 0.0 or not np.isfinite(top):
            raise HJSolveError("fipy: h lost positivity in the backward pass; refine the grid or time steps")
        h.setValue(np.asarray(h.value) / top)
        offset += np.log(top)
        if (k + 1) % tg.save_every == 0:
            log_h[(k + 1) // tg.save_every] = np.log(np.maximum(np.asarray(h.value), FLOOR)) + offset

    p = fipy.CellVariable(mesh=model.mesh, value=initial_masses(problem, domain))
    mass = np.empty((tg.levels, nodes.shape[0]))
    mass[-1] = np.asarray(p.value)
    for k in range(tg.nt - 1, -1, -1):  # t from 0 to T
        model.forward_equation(tg.T - k * tg.ds).solve(var=p, dt=tg.ds)
        if k % tg.save_every == 0:
            mass[k // tg.save_every] = np.asarray(p.value)

    state = {"center": domain.center, "radius": domain.radius, "n": domain.n, "noise_width": domain.noise_width,
             "nt": tg.nt, "save_every": tg.save_every, "log_h": log_h, "mass": mass, "log_C": 0.0}
    solution = FipySolution(case, state=state, options=options)
    solution.summary["options"] = dict(options)
    return solution.compute_summary({"fipy_version": fipy.__version__})
