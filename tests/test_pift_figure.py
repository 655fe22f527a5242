"""The PI-FT figure's data (hjsolve/figures/pift.py): linear rates at the bound, the reward/KL
trade-off against β from Riccati and PI-FT, and terminal samples that move to the reward."""
import numpy as np
import pytest

from hjsolve.figures import pift


def test_convergence_data_is_linear_at_the_bound():
    data = pift.convergence_data(betas=(0.001, 0.1), points=101)
    rates = []
    for beta, item in data.items():
        errors = item["errors"]
        ratios = errors[1:] / errors[:-1]
        useful = errors[1:] > 1e-11 * errors[0]
        np.testing.assert_allclose(ratios[useful][2:], item["rate_bound"], rtol=0.02)
        assert item["relaxation"] == 1.0
        rates.append(item["measured"])
    assert rates[1] < rates[0] / 5


def test_tradeoff_data_orders_reward_and_kl():
    data = pift.tradeoff_data(betas=(0.01, 0.1, 1.0), markers=(0.1,))
    assert np.all(np.diff(data["reward"]) < 0) and np.all(np.diff(data["kl"]) < 0)
    assert np.all(data["reward"] > data["reward_pretrained"])
    assert abs(data["pift_reward"][0] - data["reward"][1]) < 4 * data["pift_reward_stderr"][0]
    np.testing.assert_allclose(data["pift_kl"][0], data["kl"][1], rtol=0.03)


@pytest.mark.slow
def test_samples_move_towards_the_reward_as_beta_falls():
    data = pift.samples_data(betas=(0.03, 3.0), n=4000)
    distance = {b: np.mean((data[b] - 1.0) ** 2) for b in (0.03, 3.0)}
    assert distance[0.03] < 0.2 < distance[3.0]
    assert np.mean(data[3.0] > 0) < 0.8  # β = 3 keeps the left mode
