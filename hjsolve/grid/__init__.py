"""Building blocks of the grid (finite-difference) solver, one concept per module.

``domain``       the time-dependent box y = μ(t) + c(t) z, z ∈ [-1, 1]^d, chosen from the model.
``coefficients`` the generator of the pretrained sampler in z-coordinates, per axis.
``rates``        Numba kernels of the fitted jump rates per axis (and their memory layout).
``sweeps``       the Numba θ-step along one axis: Thomas solves across 32 lines at a time.
``kernels``      Numba kernels of the outputs (a backward step's rescaling and saved level,
                 interpolation, Euler–Maruyama).
``passes``       the backward (Feynman–Kac, (3.24)) and forward (Fokker–Planck) passes.
``mixture_passes`` the same passes for a Gaussian-mixture score, looping over the steps in Numba.
"""
