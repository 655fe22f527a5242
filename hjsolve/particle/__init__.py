"""Particle (Monte Carlo) machinery for the pretrained sampler (2.4) and its tilts.

Small modules, one concept each:

``rng``        counter-based normal streams (reproducible whatever the thread count)
``schedule``   per-step coefficients of the Euler–Maruyama / exponential integrators
``kernels``    Numba kernels: mixture score, simulation, adjoint (pathwise / Bismut) sweeps
``sampler``    the kernels on a time grid, or numpy step loops for any other score model
``stats``      log-mean-exp, self-normalised ratios and their delta-method standard errors
``estimators`` nested Monte Carlo for log h, ∇log h and ∇E[r] at query points (3.24), (3.27)–(3.30)
``tilted``     samplers of p_ftune: importance resampling, von Neumann rejection, controlled (3.9)
``bound``      the approximate control (3.28) against u*: η and the bound (3.33)
"""
