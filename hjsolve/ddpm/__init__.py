"""Discrete-time fine-tuning of a DDPM (paper 002; DESIGN §1 "Discrete time, DDPM").

Sampler steps t = 0..N-1 use the forward index k = N - t:

    X_{t+1} = a_t X_t + b_t u_t(X_t) + σ_k W_t,   X_0 ~ N(0, I)                      (002, (3))
    a_t = 1/sqrt(α_k), b_t = (1-α_k)/sqrt(α_k), σ_k² = 1 - α_k,

with the pretrained control u_t = s_t (the exact score of q(x_k)). The objective is
E r(X_N) - Σ_t w_t E KL_t, KL_t = c_t |u_t - s_t|², c_t = (1-α_k)²/(2 α_k σ_k²) (Lemma 2.5),
and its Bellman equation (002, (9)) is

    V_N = r,  V_t(x) = max_u { -w_t c_t |u - s_t(x)|² + E V_{t+1}(a_t x + b_t u + σ_k W) }.

Modules: `chain` (coefficients, scores, simulation), `riccati` (the linear–quadratic exact
solution), `grid` (regular grids and the interpolation kernels), `functional` (Algorithm 1 on a
grid, d ≤ 2), `features` and `parametric` (Section 4.1: controls linear in features), `solution`
(the shared `Solution` subclass with integer steps).
"""
