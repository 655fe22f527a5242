"""Rewards and their gradients; divergences and their domains."""
from pathlib import Path

import numpy as np
import pytest

from hjsolve.divergence import ForwardKL, Gamma, KL, make_divergence
from hjsolve.errors import DomainError
from hjsolve.mixture import GaussianMixture
from hjsolve.rewards import Bump, Linear, PythonReward, Quadratic, Sigmoid

REWARDS = [
    Quadratic([1.0, -0.5], 2.0),
    Linear([0.3, -1.2], 0.5),
    Bump([0.5, 0.5], 1.5, 0.7),
    Sigmoid([1.0, 2.0], -0.5, 2.0),
    PythonReward("reward_module:squared_norm", search_dir=Path(__file__).parent),  # central differences
]


@pytest.mark.parametrize("reward", REWARDS, ids=lambda r: r.kind)
def test_gradient_matches_finite_differences(reward):
    x = np.random.default_rng(0).normal(size=(8, 2))
    eps = 1e-6
    fd = np.stack([(reward(x + eps * e) - reward(x - eps * e)) / (2 * eps) for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(reward.gradient(x), fd, rtol=1e-5, atol=1e-7)


def test_bounds():
    assert Quadratic([0.0], 1.0).sup == 0.0
    assert Bump([0.0], 2.0, 1.0).sup == 2.0 and Bump([0.0], 2.0, 1.0).strictly_positive
    assert Sigmoid([1.0], 0.0, 3.0).sup == 3.0
    assert Linear([1.0]).sup == np.inf


def test_effective_rewards():
    r = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(KL(0.5).effective(r), r / 0.5)
    np.testing.assert_allclose(ForwardKL(2.0).effective(r), -np.log(r / 2.0))
    np.testing.assert_allclose(Gamma(1.0, 0.5).effective(r), -2.0 * np.log(1 - 0.5 * r))
    np.testing.assert_allclose(Gamma(1.0, 1e-9).effective(r), r, rtol=1e-8)


@pytest.mark.parametrize("divergence", [KL(0.7), ForwardKL(0.7), Gamma(0.7, 0.4)], ids=lambda d: d.name)
def test_effective_gradient_is_chain_rule(divergence):
    reward = Bump([0.2], 1.0, 0.8)
    x = np.linspace(-1, 1, 5)[:, None]
    eps = 1e-6
    fd = (divergence.effective(reward(x + eps)) - divergence.effective(reward(x - eps))) / (2 * eps)
    np.testing.assert_allclose(divergence.effective_gradient(reward(x), reward.gradient(x))[:, 0], fd, rtol=1e-6)


def test_domains():
    mix = GaussianMixture([1.0], [[0.0]], [[[1.0]]])
    with pytest.raises(DomainError, match="r > 0"):
        ForwardKL(1.0).check_domain(Quadratic([0.0]), mix)
    with pytest.raises(DomainError, match="width"):
        ForwardKL(1.0).check_domain(Bump([0.0], 1.0, 0.5), mix)
    ForwardKL(1.0).check_domain(Bump([0.0], 1.0, 2.0), mix)
    with pytest.raises(DomainError, match="alpha/gamma"):
        Gamma(1.0, 0.5).check_domain(Bump([0.0], 2.0, 1.0), mix)
    with pytest.raises(DomainError, match="alpha/gamma"):
        Gamma(1.0, 0.5).check_domain(Linear([1.0]), mix)
    with pytest.raises(DomainError, match=r"\(f'\)\^\{-1\} is not defined"):
        make_divergence("total_variation", 1.0)
    with pytest.raises(DomainError):
        ForwardKL(1.0).effective(np.array([0.5, -0.1]))
