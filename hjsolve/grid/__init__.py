"""Building blocks of the grid (finite-difference) solver, one concept per module.

``domain``       the time-dependent box y = μ(t) + c(t) z, z ∈ [-1, 1]^d, chosen from the model.
``coefficients`` the generator of the pretrained sampler in z-coordinates, per axis.
``kernels``      Numba kernels: fitted rates, tridiagonal axis sweeps, interpolation.
``passes``       the backward (Feynman–Kac, (3.24)) and forward (Fokker–Planck) passes.
"""
