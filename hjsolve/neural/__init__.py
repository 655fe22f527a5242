"""Building blocks of the neural-SDE solver (``method = "neural"``, PyTorch).

Every module here imports torch at its top; `hjsolve` itself never imports this package, so
``import hjsolve`` works without torch. The solver entry point is `hjsolve.solvers.neural`.

- `coefficients`: the pretrained sampler on a time grid in torch (mixture score, drift b̄, ς²).
- `rewards`: torch versions of the bundled rewards and of r_eff.
- `network`: the control network g_θ(t, y) ≈ ∇log h(t, y), u_θ = ς² g_θ.
- `paths`: Euler–Maruyama paths with Girsanov log-weights.
- `objectives`: the relative-entropy loss (3.12) and adjoint matching.
- `train`: the training loop with checkpoints that resume.
- `estimators`: importance-sampling value, log C and initial-law estimates.
- `metrics`: Q*_t bridge samples, weighted relative L2 error of u, energy-distance test.
"""
