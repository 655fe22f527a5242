"""Schedules of DESIGN §1 against their definitions."""
import numpy as np
import pytest

from hjsolve.sde import DDPM, OU, VE, VP

S = np.linspace(0.0, 1.0, 11)


@pytest.mark.parametrize("sde", [VP(T=1.0), VP(T=2.0, beta_min=0.5, beta_max=5.0), VE(T=1.0), OU(T=1.0, theta=0.7, sigma=1.3)])
def test_variance_solves_the_forward_lyapunov_equation(sde):
    """d var/ds = 2 (a'/a) var + g2 and d log a/ds = a'/a, checked by central differences."""
    s = np.linspace(0.05, 0.95, 7) * sde.T
    h = 1e-6
    dvar = (sde.var(s + h) - sde.var(s - h)) / (2 * h)
    np.testing.assert_allclose(dvar, 2 * sde.log_a_rate(s) * sde.var(s) + sde.g2(s), rtol=1e-6)
    dlog_a = (np.log(sde.a(s + h)) - np.log(sde.a(s - h))) / (2 * h)
    np.testing.assert_allclose(dlog_a, sde.log_a_rate(s), rtol=1e-6, atol=1e-9)
    assert sde.var(0.0) == 0.0 and sde.a(0.0) == 1.0


def test_vp_closed_forms():
    sde = VP(T=1.0)
    B = 0.1 * S + 19.9 * S**2 / 2
    np.testing.assert_allclose(sde.a(S), np.exp(-B / 2))
    np.testing.assert_allclose(sde.var(S), 1 - np.exp(-B))
    np.testing.assert_allclose(sde.g2(S), 0.1 + 19.9 * S)


def test_sampler_diffusion_runs_backwards():
    sde = OU(T=2.0)
    assert sde.sampler_sigma2(0.0) == pytest.approx(sde.g2(2.0))
    ve = VE(T=1.0)
    assert ve.sampler_sigma2(0.25) == pytest.approx(ve.g2(0.75))
    assert ve.noise_var() == pytest.approx(0.01**2 * (1000.0**2 - 1))


def test_ddpm_schedule():
    sde = DDPM(steps=50)
    betas = np.linspace(1e-4, 0.02, 50)
    np.testing.assert_allclose(sde.betas, betas)
    np.testing.assert_allclose(sde.alpha_bars[1:], np.cumprod(1 - betas))
    assert sde.k_of(0) == 50 and sde.k_of(49) == 1
    a_t, b_t, c_t, sigma = sde.step_coefficients(0)
    alpha = 1 - 0.02
    assert a_t == pytest.approx(1 / np.sqrt(alpha))
    assert b_t == pytest.approx((1 - alpha) / np.sqrt(alpha))
    assert c_t == pytest.approx((1 - alpha) ** 2 / (2 * alpha * (1 - alpha)))
    assert sigma == pytest.approx(np.sqrt(1 - alpha))
    with pytest.raises(ValueError):
        sde.k_of(50)
