"""Building blocks of the neural-SDE solver (``method = "neural"``, PyTorch).

Every module here but `metrics` (numpy only, also used by ``hjsolve validate``) imports torch
at its top, and `hjsolve` imports none of them, so ``import hjsolve`` works without torch. The
solver entry point is `hjsolve.solvers.neural`.

- `coefficients`: the pretrained sampler on a time grid in torch (mixture or python score, drift b̄, ς²).
- `rewards`: torch versions of the bundled rewards and of r_eff.
- `network`: the control network g_θ(t, y) ≈ ∇log h(t, y), u_θ = ς² g_θ.
- `paths`: Euler–Maruyama paths with Girsanov log-weights.
- `objectives`: bridge matching (the default), the relative-entropy loss (3.12) and adjoint matching.
- `train`: the training loop with checkpoints that resume.
- `estimators`: importance-sampling value, log C and initial-law estimates.
- `metrics`: Q*_t samples (exact bridges or the reference's controlled SDE), weighted relative
  L2 error of u, energy-distance and two-sample tests.
"""
