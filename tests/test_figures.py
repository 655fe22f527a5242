"""`hjsolve.figures`: the PNGs are written (deterministically) and the numbers they show are right."""
import numpy as np
import pytest

from hjsolve import figures
from hjsolve.figures import core, style

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def collapse():
    return core.reward_collapse_data(core.COLLAPSE_SWEEP_ALPHAS)


@pytest.fixture(scope="module")
def tv():
    return core.tv_bound_data(core.TV_ALPHAS)


@pytest.fixture(scope="module")
def divergences():
    return core.divergences_data()


def test_every_figure_module_is_discovered():
    names = set(figures.all_figures())
    assert {"reward_collapse.png", "tv_bound.png", "divergences.png", "pift.png"} <= names


@pytest.mark.slow
def test_core_figures_are_written(tmp_path):
    """Each solver's figure module has its own tests; here the core figures go through `save`."""
    paths = [plot(tmp_path / "figs" / name) for name, plot in core.FIGURES.items()]
    assert {p.name for p in paths} == {"reward_collapse.png", "tv_bound.png", "divergences.png"}
    for path in paths:
        assert path.parent == tmp_path / "figs"
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC
        assert len(data) > 10_000, f"{path.name} looks empty ({len(data)} bytes)"
    leftovers = [p.name for p in (tmp_path / "figs").iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_a_figure_is_byte_stable(tmp_path):
    """Same numbers, default style, no volatile metadata: regenerating gives identical bytes."""
    first = core.plot_tv_bound(tmp_path / "a.png", alphas=(0.3, 3.0))
    second = core.plot_tv_bound(tmp_path / "b.png", alphas=(0.3, 3.0))
    assert first.read_bytes()[:8] == PNG_MAGIC
    assert first.read_bytes() == second.read_bytes()
    assert b"Software" not in first.read_bytes()


def test_figures_leave_pyplot_alone():
    """Building figures must not import pyplot (and so never switch the user's backend)."""
    import sys

    had_pyplot = "matplotlib.pyplot" in sys.modules
    fig = style.new_figure(2.0, 2.0)
    assert fig.canvas.__class__.__name__ == "FigureCanvasAgg"
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot


# --------------------------------------------------------------------------- reward collapse


def test_reward_collapse_diversity_falls_and_reward_rises_as_alpha_falls(collapse):
    alpha = collapse["alpha"]
    order = np.argsort(alpha)[::-1]  # α from large to small
    std = collapse["std"][order]
    reward = collapse["reward_finetuned"][order]
    assert np.all(np.diff(std) < 0), std
    assert np.all(np.diff(reward) > 0), reward
    assert np.all(collapse["reward_finetuned"] >= collapse["reward_pretrained"])


def test_reward_collapse_limits(collapse):
    """α → 0: a spike at the reward's maximiser; α → ∞: back to the pretrained law."""
    small = int(np.argmin(collapse["alpha"]))
    large = int(np.argmax(collapse["alpha"]))
    alpha = collapse["alpha"][small]
    # Tilting the right mode N(2, 0.5²) by exp(-(x-1)²/(2α)) leaves N(·, 1/(4 + 1/α)); the left
    # mode's weight is ~1e-8 here.
    var = 1.0 / (4.0 + 1.0 / alpha)
    mean = (8.0 + 1.0 / alpha) * var
    assert collapse["std"][small] == pytest.approx(np.sqrt(var), rel=1e-4)
    assert collapse["mean"][small] == pytest.approx(mean, rel=1e-4)
    assert collapse["reward_finetuned"][small] == pytest.approx(-0.5 * (var + (mean - 1.0) ** 2), rel=1e-4)
    assert collapse["std"][large] < collapse["std_pretrained"]
    assert collapse["std"][large] == pytest.approx(collapse["std_pretrained"], rel=0.05)


def test_reward_collapse_grid_agrees_with_summary(collapse):
    np.testing.assert_allclose(collapse["mass"], 1.0, atol=1e-8)
    np.testing.assert_allclose(collapse["reward_finetuned_grid"], collapse["reward_finetuned"], atol=1e-8)
    assert collapse["density"].shape == (len(collapse["alpha"]), len(collapse["x"]))


# --------------------------------------------------------------------------- Proposition 3.2


def test_measured_tv_is_below_the_bound_at_every_alpha(tv):
    assert len(tv["alpha"]) >= 10
    assert np.all(tv["tv_measured"] < tv["bound"]), (tv["tv_measured"], tv["bound"])
    # the sharper step of the proof, and the cruder (3.6), bracket (3.3)
    assert np.all(tv["tv_measured"] < tv["bound_var"])
    assert np.all(tv["bound_var"] <= tv["bound"] * (1 + 1e-12))
    assert np.all(tv["bound"] <= tv["bound_36"] * (1 + 1e-12))
    assert np.all((tv["tv_measured"] >= 0.0) & (tv["tv_measured"] <= 1.0))


def test_tv_bound_blows_up_as_alpha_falls(tv):
    order = np.argsort(tv["alpha"])
    assert np.all(np.diff(tv["bound"][order]) < 0)
    assert np.all(np.diff(tv["tv_measured"][order]) < 0)
    assert tv["bound"][order[0]] > 1e6
    # for r >= 0, E_pre[e^{2r/α}] >= 1: the second term of (3.3) never drops below 1/2
    assert np.all(tv["tv_bound"] >= 0.5)


def test_tv_pretrained_data_agrees_with_the_grid(tv):
    np.testing.assert_allclose(tv["mass"], 1.0, atol=1e-8)
    assert tv["tv_pretrained_data"][0] == pytest.approx(tv["tv_pretrained_data_grid"], abs=1e-9)


# --------------------------------------------------------------------------- f-divergences


def test_divergence_laws(divergences):
    laws = {(law["name"], law["gamma"]): law for law in divergences["laws"]}
    for law in laws.values():
        assert law["mass"] == pytest.approx(1.0, abs=1e-6), law["name"]
        assert np.all(np.isfinite(law["density"])) and np.all(law["density"] >= 0.0)
    gammas = sorted(g for name, g in laws if name == "gamma")
    assert gammas == sorted(core.DIVERGENCE_GAMMAS)
    # gamma tilts harder than kl and harder with larger γ: r_f and E_ftune[r] increase with γ
    chain = [laws[("kl", None)]] + [laws[("gamma", g)] for g in gammas]
    rewards = [law["reward_finetuned"] for law in chain]
    assert np.all(np.diff(rewards) > 0), rewards
    for lower, higher in zip(chain, chain[1:]):
        assert np.all(higher["r_eff"] >= lower["r_eff"] - 1e-12)
    # forward KL's weight α/r favours low reward (Definition 4.2 as written)
    assert laws[("forward_kl", None)]["reward_finetuned"] < divergences["reward_pretrained"]
