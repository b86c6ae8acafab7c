"""Advantage estimators against their closed forms: the power family, flipped curves and Table 1
baselines of Gu et al. 2026 (arXiv 2604.04894), ``A+_a(p) = ((1-p)/p)^a``, ``A-_a(p) = -(p/(1-p))^a``."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asymrl import advantages
from asymrl.advantages import compute


def group(correct: int, size: int) -> torch.Tensor:
    """One group of ``size`` rollouts, the first ``correct`` of them correct."""
    rewards = torch.zeros(1, size, dtype=torch.float64)
    rewards[0, :correct] = 1.0
    return rewards


def channel_values(name: str, correct: int, size: int, **params) -> tuple[float | None, float | None]:
    """(advantage of a correct rollout, advantage of a wrong one) for a group with ``correct`` hits."""
    adv = compute(name, group(correct, size), **params)[0]
    pos = float(adv[0]) if correct > 0 else None
    neg = float(adv[-1]) if correct < size else None
    return pos, neg


def power_pos(p: float, a: float) -> float:
    return ((1 - p) / p) ** a


def power_neg(p: float, a: float) -> float:
    return -((p / (1 - p)) ** a)


SIZES = [3, 4, 5, 8, 16]
ALPHAS = [(0.0, 0.0), (0.5, 0.5), (0.9, 0.4), (0.4, 0.9), (0.65, 0.65), (1.0, 0.25)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("alpha_pos,alpha_neg", ALPHAS)
def test_asymgrpo_closed_form_every_k(size, alpha_pos, alpha_neg):
    for k in range(size + 1):
        p = k / size
        pos, neg = channel_values("asymgrpo", k, size, alpha_pos=alpha_pos, alpha_neg=alpha_neg)
        if k > 0:
            # p = 1: ((1-p)/p)^a is 0 for a > 0 and +1 for a = 0 (REINFORCE's +1).
            expected = power_pos(p, alpha_pos) if k < size else (1.0 if alpha_pos == 0 else 0.0)
            assert pos == pytest.approx(expected, abs=1e-12), (k, pos, expected)
        if k < size:
            expected = power_neg(p, alpha_neg) if k > 0 else (-1.0 if alpha_neg == 0 else 0.0)
            assert neg == pytest.approx(expected, abs=1e-12), (k, neg, expected)


@pytest.mark.parametrize("size", SIZES)
def test_presets_are_the_papers_rows(size):
    for k in range(size + 1):
        p = k / size
        rewards = group(k, size)
        assert torch.equal(compute("pos_only", rewards), compute("asymgrpo", rewards, alpha_pos=0.5, alpha_neg=0.0))
        assert torch.equal(compute("neg_only", rewards), compute("asymgrpo", rewards, alpha_pos=0.0, alpha_neg=0.5))
        pos, neg = channel_values("pos_only", k, size)
        if 0 < k < size:
            assert pos == pytest.approx(math.sqrt((1 - p) / p))
            assert neg == -1.0
        pos, neg = channel_values("neg_only", k, size)
        if 0 < k < size:
            assert pos == 1.0
            assert neg == pytest.approx(-math.sqrt(p / (1 - p)))


@pytest.mark.parametrize("size", SIZES)
def test_reinforce_is_plus_minus_one(size):
    for k in range(size + 1):
        pos, neg = channel_values("reinforce", k, size)
        assert pos in (None, 1.0) and neg in (None, -1.0)


@pytest.mark.parametrize("size", SIZES)
def test_asymgrpo_half_half_is_grpo(size):
    for k in range(size + 1):
        rewards = group(k, size)
        torch.testing.assert_close(
            compute("asymgrpo", rewards, alpha_pos=0.5, alpha_neg=0.5), compute("grpo", rewards), atol=1e-12, rtol=0
        )


@pytest.mark.parametrize("size", SIZES)
def test_asymgrpo_zero_zero_is_reinforce(size):
    for k in range(size + 1):
        rewards = group(k, size)
        assert torch.equal(compute("asymgrpo", rewards, alpha_pos=0, alpha_neg=0), compute("reinforce", rewards))


@pytest.mark.parametrize("size", SIZES)
def test_grpo_sample_std_is_verl_scaled_curve(size):
    """verl's GRPO (Bessel std + 1e-6) = sqrt((G-1)/G) x the analytic a = 1/2 curve (population std)."""
    for k in range(size + 1):
        rewards = group(k, size)
        verl = compute("grpo", rewards, std="sample", eps=1e-6)
        scaled = math.sqrt((size - 1) / size) * compute("grpo", rewards)
        torch.testing.assert_close(verl, scaled, atol=1e-5, rtol=1e-5)
        # And directly against the formula with the epsilon.
        mean = k / size
        sample_std = math.sqrt(k * (1 - mean) ** 2 + (size - k) * mean**2) / math.sqrt(size - 1)
        if 0 < k < size:
            assert float(verl[0, 0]) == pytest.approx((1 - mean) / (sample_std + 1e-6), rel=1e-12)


def test_grpo_handles_real_valued_rewards_and_uniform_groups():
    rewards = torch.tensor([[0.0, 0.5, 1.0, 2.5], [0.3, 0.3, 0.3, 0.3]], dtype=torch.float64)
    adv = compute("grpo", rewards)
    expected = (rewards[0] - rewards[0].mean()) / rewards[0].std(correction=0)
    torch.testing.assert_close(adv[0], expected)
    assert torch.equal(adv[1], torch.zeros(4, dtype=torch.float64))


def test_dr_grpo_is_mean_centred():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.2, 0.4, 0.6, 0.8]])
    adv = compute("dr_grpo", rewards)
    torch.testing.assert_close(adv[0], torch.tensor([0.75, -0.25, -0.25, -0.25]))
    assert torch.equal(adv[1], torch.zeros(4))
    torch.testing.assert_close(adv[2], torch.tensor([-0.3, -0.1, 0.1, 0.3]))


def test_flip_boundary_value_at_g8():
    # The flipped positive channel at G = 8 is sqrt(p / (1 - p)): sqrt(3) at p = 6/8 and sqrt(7) at
    # p = 7/8 (the code's values, by hand); extended linearly through them to p = 1: 2 sqrt(7) - sqrt(3).
    assert channel_values("ent_decrease", 6, 8)[0] == pytest.approx(math.sqrt(3), abs=1e-12)
    assert channel_values("ent_decrease", 7, 8)[0] == pytest.approx(math.sqrt(7), abs=1e-12)
    # Mirrored for the flipped negative channel, -sqrt((1 - p) / p): -sqrt(7) at 1/8, -sqrt(3) at 2/8.
    assert channel_values("ent_increase", 1, 8)[1] == pytest.approx(-math.sqrt(7), abs=1e-12)
    assert channel_values("ent_increase", 2, 8)[1] == pytest.approx(-math.sqrt(3), abs=1e-12)
    boundary = 2 * math.sqrt(7) - math.sqrt(3)
    pos, neg = channel_values("ent_decrease", 8, 8)
    assert pos == pytest.approx(boundary, abs=1e-12) and neg is None
    pos, neg = channel_values("ent_increase", 0, 8)
    assert neg == pytest.approx(-boundary, abs=1e-12) and pos is None


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["ent_decrease", "ent_increase"])
def test_flipped_curves_closed_form(name, size):
    """The flipped channel is GRPO's curve read at 1 - p, extended linearly at its singular end;
    the other channel is GRPO's (Gu et al. 2026's EntDecrease / EntIncrease controls)."""
    flips_positive = name == "ent_decrease"

    def flipped(k: int) -> float:  # on the interior grid 0 < k < G
        p = k / size
        return math.sqrt(p / (1 - p)) if flips_positive else -math.sqrt((1 - p) / p)

    boundary_k, inner = (size, (size - 1, size - 2)) if flips_positive else (0, (1, 2))
    for k in range(size + 1):
        pos, neg = channel_values(name, k, size)
        flipped_value, other_value = (pos, neg) if flips_positive else (neg, pos)
        if 0 < k < size:
            assert flipped_value == pytest.approx(flipped(k), abs=1e-12)
        if k == boundary_k:
            assert flipped_value == pytest.approx(2 * flipped(inner[0]) - flipped(inner[1]), abs=1e-12)
        if other_value is not None:
            p = k / size
            grpo = (power_neg(p, 0.5) if k > 0 else 0.0) if flips_positive else (power_pos(p, 0.5) if k < size else 0.0)
            assert other_value == pytest.approx(grpo, abs=1e-12)


def test_flips_reject_g_below_3():
    for name in ("ent_decrease", "ent_increase"):
        with pytest.raises(ValueError, match="G >= 3"):
            compute(name, group(1, 2))


def passk_brute_force(rewards: list[int], k: int, eps: float = 1e-6) -> list[float]:
    """Advantages by enumerating every k-subset: subset reward = max reward in it (Chen et al.)."""
    n = len(rewards)
    subsets = list(itertools.combinations(range(n), k))
    subset_reward = {s: max(rewards[i] for i in s) for s in subsets}
    mean = sum(subset_reward.values()) / len(subsets)
    spread = math.sqrt(sum((v - mean) ** 2 for v in subset_reward.values()) / len(subsets))
    result = []
    for i in range(n):
        containing = [s for s in subsets if i in s]
        result.append(sum(subset_reward[s] - mean for s in containing) / len(containing) / (spread + eps))
    return result


@pytest.mark.parametrize("size,k", [(4, 1), (4, 2), (5, 3), (6, 4), (8, 4), (8, 8), (8, 1)])
def test_passk_matches_brute_force_enumeration(size, k):
    for correct in range(size + 1):
        rewards = [1] * correct + [0] * (size - correct)
        expected = torch.tensor(passk_brute_force(rewards, k), dtype=torch.float64)
        got = compute("passk", torch.tensor([rewards], dtype=torch.float64), k=k)[0]
        torch.testing.assert_close(got, expected, atol=1e-9, rtol=1e-9)


def test_passk_rejects_bad_k():
    with pytest.raises(ValueError, match="1 <= k <= G"):
        compute("passk", group(2, 4), k=5)


@pytest.mark.parametrize("name", ["reinforce", "asymgrpo", "pos_only", "neg_only", "ent_decrease", "ent_increase", "passk"])
def test_binary_estimators_reject_non_binary_rewards(name):
    with pytest.raises(ValueError, match="binary rewards"):
        compute(name, torch.tensor([[0.0, 0.5, 1.0, 1.0]]))


def test_unknown_estimator_and_parameter_errors_are_clear():
    with pytest.raises(KeyError, match="unknown advantage estimator 'grpoo'.*asymgrpo"):
        compute("grpoo", group(1, 4))
    with pytest.raises(TypeError, match="takes no parameter.*alpha"):
        compute("grpo", group(1, 4), alpha=0.5)
    with pytest.raises(ValueError, match="shape"):
        compute("grpo", torch.zeros(8))


def test_register_custom_estimator():
    name = "test_double_reinforce"

    @advantages.register(name)
    def double(rewards: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
        return (rewards * 2 - 1) * scale

    # (removed after the test by conftest's restore_registries)
    assert name in advantages.available()
    assert advantages.parameters(name) == {"scale": 2.0}
    assert torch.equal(compute(name, group(1, 2), scale=3.0), torch.tensor([[3.0, -3.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="already registered"):
        advantages.register(name)(double)


def test_the_papers_estimators_are_all_registered():
    assert {"reinforce", "grpo", "asymgrpo", "pos_only", "neg_only", "ent_decrease", "ent_increase", "dr_grpo", "passk"} <= set(
        advantages.available()
    )


# -- properties over random groups -----------------------------------------------------------------

binary_groups = st.integers(min_value=3, max_value=12).flatmap(
    lambda size: st.lists(
        st.lists(st.sampled_from([0.0, 1.0]), min_size=size, max_size=size), min_size=1, max_size=6
    )
)
alphas = st.floats(min_value=0.0, max_value=2.0, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(rows=binary_groups, alpha_pos=alphas, alpha_neg=alphas)
def test_asymgrpo_properties(rows, alpha_pos, alpha_neg):
    rewards = torch.tensor(rows, dtype=torch.float64)
    adv = compute("asymgrpo", rewards, alpha_pos=alpha_pos, alpha_neg=alpha_neg)
    assert adv.shape == rewards.shape and torch.isfinite(adv).all()
    assert (adv[rewards == 1] >= 0).all() and (adv[rewards == 0] <= 0).all()
    # Within a group, every correct rollout gets the same value, and every wrong one.
    for row, row_adv in zip(rewards, adv):
        assert row_adv[row == 1].unique().numel() <= 1 and row_adv[row == 0].unique().numel() <= 1
    # Permuting rollouts inside a group permutes their advantages.
    perm = torch.randperm(rewards.shape[1])
    assert torch.equal(compute("asymgrpo", rewards[:, perm], alpha_pos=alpha_pos, alpha_neg=alpha_neg), adv[:, perm])


@settings(max_examples=150, deadline=None)
@given(rows=binary_groups)
def test_grpo_is_zero_mean_unit_std_on_mixed_groups(rows):
    rewards = torch.tensor(rows, dtype=torch.float64)
    adv = compute("grpo", rewards)
    mixed = (rewards.sum(1) > 0) & (rewards.sum(1) < rewards.shape[1])
    torch.testing.assert_close(adv.mean(1), torch.zeros(len(rows), dtype=torch.float64), atol=1e-12, rtol=0)
    if mixed.any():
        torch.testing.assert_close(
            adv[mixed].std(1, correction=0), torch.ones(int(mixed.sum()), dtype=torch.float64), atol=1e-12, rtol=0
        )
    assert torch.equal(adv[~mixed], torch.zeros_like(adv[~mixed]))


@settings(max_examples=100, deadline=None)
@given(rows=binary_groups, alpha=st.floats(min_value=0.05, max_value=2.0))
def test_positive_channel_shrinks_as_accuracy_rises(rows, alpha):
    """For a > 0, A+ decreases in p and |A-| increases in p (the 'modulation' of sec. 2): on the drawn
    groups themselves, each rollout's advantage is the closed form at its group's accuracy, and across
    groups a higher accuracy gives a smaller A+ and a more negative A-."""
    rewards = torch.tensor(rows, dtype=torch.float64)
    adv = compute("asymgrpo", rewards, alpha_pos=alpha, alpha_neg=alpha)
    size = rewards.shape[1]
    pos, neg = {}, {}  # group accuracy -> the value every correct / wrong rollout of such a group gets
    for row, row_adv in zip(rows, adv.tolist()):
        correct = int(sum(row))
        p = correct / size
        for reward, value in zip(row, row_adv):
            if reward == 1.0:
                assert value == pytest.approx(power_pos(p, alpha) if correct < size else 0.0, abs=1e-12)
                pos[p] = value
            else:
                assert value == pytest.approx(power_neg(p, alpha) if correct > 0 else 0.0, abs=1e-12)
                neg[p] = value
    # Interior accuracies only: the channel is 0 (not the limit of the curve) where the group is uniform.
    pos_values = [pos[p] for p in sorted(pos) if p < 1]
    neg_values = [neg[p] for p in sorted(neg) if p > 0]
    assert all(a > b for a, b in zip(pos_values, pos_values[1:]))
    assert all(a > b for a, b in zip(neg_values, neg_values[1:]))


@settings(max_examples=100, deadline=None)
@given(rows=binary_groups, k=st.integers(min_value=1, max_value=3))
def test_passk_is_zero_mean_over_subsets(rows, k):
    """The Pass@K advantages of a group average to zero weighted as in the subset enumeration."""
    rewards = torch.tensor(rows, dtype=torch.float64)
    adv = compute("passk", rewards, k=k)
    assert torch.isfinite(adv).all()
    torch.testing.assert_close(adv.mean(1), torch.zeros(len(rows), dtype=torch.float64), atol=1e-6, rtol=0)


def test_entropy_advantage_values_and_no_gradient_through_entropy():
    adv = torch.tensor([[1.0, 1.0, -1.0, 0.0]])
    entropy = torch.tensor([[0.5, 4.0, 4.0, 2.0]], requires_grad=True)
    shaped = advantages.entropy_advantage(adv, entropy, alpha=0.4, kappa=2.0)
    # min(0.4 * H, |A| / 2): 0.2, 0.5, 0.5, 0.0
    torch.testing.assert_close(shaped, torch.tensor([[1.2, 1.5, -0.5, 0.0]]))
    assert not shaped.requires_grad


def test_channel_curves_for_plots():
    pos, neg = advantages.channel_curves("grpo", 8)
    assert pos[0] is None and neg[8] is None
    assert pos[4] == pytest.approx(1.0) and neg[4] == pytest.approx(-1.0)
    assert pos[2] == pytest.approx(math.sqrt(3)) and neg[6] == pytest.approx(-math.sqrt(3))
    pos, _ = advantages.channel_curves("ent_decrease", 8)
    assert pos[8] == pytest.approx(2 * math.sqrt(7) - math.sqrt(3))
