"""The clipped-surrogate policy loss and its aggregation modes (docs/method.md: the loss, Dr.GRPO, the entropy bonus)."""

from __future__ import annotations

import math

import pytest
import torch

from asymrl.loss import PolicyLossConfig, aggregate, clipped_surrogate, policy_loss


def test_gradient_matches_hand_computed_values():
    # Four tokens of one sequence, eps 0.2: ratios 1.0, 1.5, 0.5, 1.1; advantages +1, +1, -2, -2.
    old = torch.zeros(1, 4, dtype=torch.float64)
    logp = torch.log(torch.tensor([[1.0, 1.5, 0.5, 1.1]], dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([[1.0, 1.0, -2.0, -2.0]], dtype=torch.float64)
    mask = torch.ones(1, 4)
    loss, metrics = policy_loss(logp, old, adv, mask, PolicyLossConfig(eps_low=0.2, eps_high=0.2))
    # Token losses: -1*1.0, -1*1.2 (clipped high), 2*0.8 (clipped low), 2*1.1 (unclipped).
    assert loss.item() == pytest.approx((-1.0 - 1.2 + 1.6 + 2.2) / 4)
    loss.backward()
    # d(-A rho)/d logp = -A rho on unclipped tokens; 0 where the clip binds; / 4 tokens.
    torch.testing.assert_close(logp.grad, torch.tensor([[-1.0, 0.0, 0.0, 2.2]], dtype=torch.float64) / 4)
    assert metrics["clip_frac_high"] == pytest.approx(0.25)
    assert metrics["clip_frac_low"] == pytest.approx(0.25)


def test_masked_tokens_get_no_gradient_and_do_not_count():
    logp = torch.zeros(2, 3, requires_grad=True)
    adv = torch.tensor([[1.0], [-1.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    loss, _ = policy_loss(logp, torch.zeros(2, 3), adv, mask)
    assert loss.item() == pytest.approx((-1 - 1 + 1) / 3)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-1 / 3, -1 / 3, 0.0], [1 / 3, 0.0, 0.0]]))


def test_clip_higher_changes_only_positive_advantage_tokens():
    generator = torch.Generator().manual_seed(0)
    logp = torch.randn(64, 32, generator=generator) * 0.5
    old = torch.randn(64, 32, generator=generator) * 0.5
    adv = torch.randn(64, 1, generator=generator).expand(64, 32)
    symmetric, _ = clipped_surrogate(logp, old, adv, eps_low=0.2, eps_high=0.2)
    higher, _ = clipped_surrogate(logp, old, adv, eps_low=0.2, eps_high=0.28)
    changed = symmetric != higher
    assert changed.any(), "the test data must exercise the upper clip"
    assert (adv[changed] > 0).all()
    # And where it changes, raising the bound lets the ratio push further (lower loss).
    assert (higher[changed] < symmetric[changed]).all()


def test_dual_clip_bounds_negative_advantage_loss():
    logp = torch.log(torch.tensor([[10.0, 10.0, 0.5]]))
    adv = torch.tensor([[-1.0, 1.0, -1.0]])
    plain, _ = clipped_surrogate(logp, torch.zeros(1, 3), adv, 0.2, 0.2)
    dual, active = clipped_surrogate(logp, torch.zeros(1, 3), adv, 0.2, 0.2, dual_clip=3.0)
    torch.testing.assert_close(plain, torch.tensor([[10.0, -1.2, 0.8]]))
    torch.testing.assert_close(dual, torch.tensor([[3.0, -1.2, 0.8]]))
    assert active["dual_clip_frac"].tolist() == [[True, False, False]]
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        clipped_surrogate(logp, torch.zeros(1, 3), adv, 0.2, 0.2, dual_clip=1.0)


def test_entropy_bonus_is_subtracted_and_has_gradient():
    logp = torch.zeros(1, 2)
    entropy = torch.tensor([[1.0, 3.0]], requires_grad=True)
    adv = torch.zeros(1, 1)
    loss, metrics = policy_loss(
        logp, logp, adv, torch.ones(1, 2), PolicyLossConfig(entropy_coef=0.01), entropy=entropy
    )
    assert loss.item() == pytest.approx(-0.01 * 2.0)
    loss.backward()
    torch.testing.assert_close(entropy.grad, torch.full((1, 2), -0.005))
    assert metrics["entropy"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="entropy"):
        policy_loss(logp, logp, adv, torch.ones(1, 2), PolicyLossConfig(entropy_coef=0.01))


def test_aggregation_modes_by_hand():
    values = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    assert float(aggregate(values, mask, "token-mean")) == pytest.approx(10 / 4)
    assert float(aggregate(values, mask, "seq-mean-token-mean")) == pytest.approx((2 + 4) / 2)
    assert float(aggregate(values, mask, "seq-mean-token-sum-norm", constant=8)) == pytest.approx(10 / 8 / 2)
    with pytest.raises(ValueError, match="constant"):
        aggregate(values, mask, "seq-mean-token-sum-norm")
    with pytest.raises(ValueError, match="token-mean"):
        aggregate(values, mask, "sum")


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_gradient_invariant_to_micro_batch_split(mode):
    """Summing micro-batch gradients, each normalised by mini-batch counts, equals one big batch."""
    generator = torch.Generator().manual_seed(1)
    batch, length = 10, 12
    lengths = torch.randint(1, length + 1, (batch,), generator=generator)
    mask = (torch.arange(length)[None] < lengths[:, None]).float()
    old = torch.randn(batch, length, generator=generator, dtype=torch.float64) * 0.3
    start = old + torch.randn(batch, length, generator=generator, dtype=torch.float64) * 0.3
    adv = torch.randn(batch, 1, generator=generator, dtype=torch.float64)
    config = PolicyLossConfig(eps_low=0.2, eps_high=0.28, aggregation=mode, aggregation_constant=length)

    whole = start.clone().requires_grad_()
    loss, _ = policy_loss(whole, old, adv, mask, config)
    loss.backward()

    split = start.clone().requires_grad_()
    total = 0.0
    for rows in (slice(0, 3), slice(3, 7), slice(7, 10)):
        part, _ = policy_loss(
            split[rows], old[rows], adv[rows], mask[rows], config,
            num_tokens=mask.sum(), num_sequences=batch,
        )
        part.backward()
        total += part.item()
    assert total == pytest.approx(loss.item(), rel=1e-12)
    torch.testing.assert_close(split.grad, whole.grad, atol=1e-14, rtol=0)
    assert not math.isclose(float(whole.grad.abs().sum()), 0.0)


def test_approx_kl_metric_is_zero_on_policy_and_positive_off():
    logp = torch.randn(3, 5)
    _, same = policy_loss(logp, logp, torch.ones(3, 1), torch.ones(3, 5))
    _, moved = policy_loss(logp + 0.1, logp, torch.ones(3, 1), torch.ones(3, 5))
    assert same["approx_kl"] == 0.0
    # k3 of KL(old || new) when every new log-prob is 0.1 higher: r = exp(0.1), r - 1 - log r
    assert moved["approx_kl"] == pytest.approx(math.exp(0.1) - 1 - 0.1, rel=1e-5)


def test_approx_kl_is_unbiased_for_kl_old_new_under_old_samples():
    """E_{x ~ old}[k3(x)] equals KL(old || new) exactly on a categorical distribution."""
    from asymrl.loss import approx_kl

    old = torch.log_softmax(torch.tensor([1.0, -0.5, 0.3, 2.0], dtype=torch.float64), dim=0)
    new = torch.log_softmax(torch.tensor([0.2, 0.4, -1.0, 2.5], dtype=torch.float64), dim=0)
    expected = float((old.exp() * (old - new)).sum())
    estimate = float((old.exp() * approx_kl(new, old)).sum())
    assert estimate == pytest.approx(expected, rel=1e-12)
    assert float((new.exp() * (new - old)).sum()) != pytest.approx(expected, rel=1e-3)  # the other direction differs


def test_kl_penalty_estimators_and_gradient():
    from asymrl.loss import kl_penalty

    logp = torch.tensor([[-1.0, -2.0]])
    ref = torch.tensor([[-1.5, -2.0]])
    torch.testing.assert_close(kl_penalty(logp, ref, "k1"), torch.tensor([[0.5, 0.0]]))
    torch.testing.assert_close(kl_penalty(logp, ref, "k2"), torch.tensor([[0.125, 0.0]]))
    torch.testing.assert_close(kl_penalty(logp, ref, "k3"), torch.tensor([[math.exp(-0.5) - 1 + 0.5, 0.0]]))
    moving = logp.clone().requires_grad_()
    loss, metrics = policy_loss(moving, logp, torch.zeros(1, 1), torch.ones(1, 2), PolicyLossConfig(kl_coef=0.1), ref_logprobs=ref)
    loss.backward()
    # d k3 / d logp = 1 - exp(ref - logp); token-mean over 2 tokens; x 0.1
    torch.testing.assert_close(moving.grad, torch.tensor([[0.1 * (1 - math.exp(-0.5)) / 2, 0.0]]))
    assert metrics["kl_ref"] == pytest.approx((math.exp(-0.5) - 0.5) / 2)
    with pytest.raises(ValueError, match="reference"):
        policy_loss(moving, logp, torch.zeros(1, 1), torch.ones(1, 2), PolicyLossConfig(kl_coef=0.1))


def test_a_registered_policy_loss_variant_is_chosen_by_name():
    from asymrl.loss import POLICY_LOSSES, register_policy_loss

    @register_policy_loss("test_scaled_pg")
    def scaled_pg(logprobs, old_logprobs, advantages, mask, *, eps_low, eps_high, dual_clip, scale: float = 1.0):
        return -scale * advantages * logprobs, {"negative_frac": advantages < 0}

    assert {"test_scaled_pg", "ppo"} <= set(POLICY_LOSSES.available())
    assert POLICY_LOSSES.parameters("test_scaled_pg") == {"scale": 1.0}
    assert POLICY_LOSSES.parameters("ppo") == {}
    logp = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
    advantages = torch.tensor([[1.0, -1.0, 2.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    config = PolicyLossConfig(variant="test_scaled_pg", variant_params={"scale": 0.5})
    loss, metrics = policy_loss(logp, logp.detach(), advantages, mask, config)
    # token-mean over the two valid tokens of -0.5 * A * logp: (0.5 * 1 + 0.5 * -2) / 2
    assert loss.item() == pytest.approx((0.5 - 1.0) / 2)
    assert metrics["negative_frac"] == pytest.approx(0.5)
    with pytest.raises(KeyError, match="unknown policy loss 'nope'"):
        policy_loss(logp, logp, advantages, mask, PolicyLossConfig(variant="nope"))
    # (test_scaled_pg is removed after the test by conftest's restore_registries)


# -- entropy controls through the loss (issue 13): closed forms on small tensors ----------------------

def test_token_covariance_by_hand():
    from asymrl.loss import token_covariance

    logp = torch.tensor([[-1.0, -3.0, 0.0]])
    adv = torch.tensor([[2.0, 0.0, 5.0]])
    mask = torch.tensor([[1, 1, 0]])
    # means over the two valid tokens: logp -2, A 1 -> (1)(1), (-1)(-1); padding -inf
    assert token_covariance(logp, adv, mask).tolist() == [[1.0, 1.0, -math.inf]]


def test_clip_cov_cuts_the_gradient_of_high_covariance_tokens_only():
    from asymrl.loss import POLICY_LOSSES

    # Covariance terms (means logp -1.5, A 0): (0.5)(2)=1... choose values so that exactly one token
    # has a term in (1, 5): token 0 (logp -0.5, A 3) -> (1)(3) = 3; the others are <= 1.
    logp = torch.tensor([[-0.5, -2.0, -1.5, -2.0]], dtype=torch.float64, requires_grad=True)
    adv = torch.tensor([[3.0, -1.0, -1.0, -1.0]], dtype=torch.float64)
    mask = torch.ones(1, 4)
    clip_cov = POLICY_LOSSES.get("clip_cov")
    loss, active = clip_cov(logp, logp.detach(), adv, mask, eps_low=0.2, eps_high=0.2, dual_clip=None)
    assert active["cov_cut_frac"].tolist() == [[True, False, False, False]]
    torch.testing.assert_close(loss.detach(), -adv)            # values unchanged (ratio 1)
    loss.sum().backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0, 1.0, 1.0, 1.0]], dtype=torch.float64))
    # With no token in the band nothing is cut: the plain clipped surrogate.
    loss, active = clip_cov(logp, logp.detach(), adv, mask, eps_low=0.2, eps_high=0.2, dual_clip=None, cov_low=4.0)
    assert not active["cov_cut_frac"].any()


def test_kl_cov_penalises_the_top_covariance_tokens_by_hand():
    from asymrl.loss import POLICY_LOSSES

    old = torch.tensor([[-1.0, -1.0, -1.0, -1.0]], dtype=torch.float64)
    logp = torch.tensor([[-0.5, -1.2, -1.0, -0.9]], dtype=torch.float64, requires_grad=True)
    adv = torch.tensor([[2.0, -1.0, 0.0, -1.0]], dtype=torch.float64)
    mask = torch.ones(1, 4)
    # covariance terms: means logp -0.9, A 0 -> (0.4)(2)=0.8, (-0.3)(-1)=0.3, 0, 0 -> top 1: token 0
    loss, active = POLICY_LOSSES.get("kl_cov")(logp, old, adv, mask, eps_low=0.2, eps_high=0.2, dual_clip=None,
                                                 kl_ratio=0.25, kl_coef=0.5)
    assert active["cov_kl_frac"].tolist() == [[True, False, False, False]]
    ratio = torch.exp(logp.detach() - old)
    expected = -adv * ratio
    expected[0, 0] += 0.5 * 0.5                                 # kl_coef |logp - old|
    torch.testing.assert_close(loss.detach(), expected)
    loss.sum().backward()
    grad = -adv * ratio
    grad[0, 0] += 0.5                                           # d|x|/dx = sign(0.5) = 1
    torch.testing.assert_close(logp.grad, grad)


def test_gspo_uses_one_clipped_ratio_per_sequence():
    from asymrl.loss import POLICY_LOSSES

    old = torch.zeros(2, 3, dtype=torch.float64)
    # sequence 0: mean log-ratio over its 2 valid tokens (0.2 + 0.0) / 2 = 0.1 -> s = e^0.1 (clipped for A > 0)
    # sequence 1: mean (1e-4 - 1e-4 + 0) / 3 = 0 -> s = 1 (inside the bounds)
    logp = torch.tensor([[0.2, 0.0, 9.0], [1e-4, -1e-4, 0.0]], dtype=torch.float64, requires_grad=True)
    adv = torch.tensor([[1.0], [-2.0]], dtype=torch.float64).expand(2, 3)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    loss, active = POLICY_LOSSES.get("gspo")(logp, old, adv, mask, eps_low=0.2, eps_high=0.2, dual_clip=None)
    s0 = math.exp(0.1)
    assert loss[0, 0].item() == pytest.approx(-(1 + 4e-4)) and loss[0, 1].item() == pytest.approx(-(1 + 4e-4))
    assert loss[1].tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert active["clip_frac_high"][0, :2].all() and not active["clip_frac_low"].any()
    (loss * mask).sum().backward()
    # clipped sequence: no gradient; the other: d(-A s_i,t)/d logp_t = -A s_i = 2 on each token
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]], dtype=torch.float64))
    # Bounds wide enough that nothing binds: sequence 0's loss is -A s0 with s0 = e^0.1 by hand (the
    # mean over its 2 valid tokens, its padding's 9.0 left out), and each valid token's gradient -A s0.
    logp.grad = None
    loss, active = POLICY_LOSSES.get("gspo")(logp, old, adv, mask, eps_low=0.2, eps_high=0.2, dual_clip=None,
                                              seq_eps_low=0.5, seq_eps_high=0.5)
    assert loss[0, :2].tolist() == pytest.approx([-s0, -s0], rel=1e-12)
    assert not active["clip_frac_high"].any() and not active["clip_frac_low"].any()
    (loss * mask).sum().backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-s0, -s0, 0.0], [2.0, 2.0, 2.0]], dtype=torch.float64))


def test_high_entropy_token_mask_keeps_the_top_share():
    from asymrl.loss import high_entropy_token_mask

    entropy = torch.tensor([[0.1, 0.9, 0.5, 0.3, 7.0], [0.8, 0.2, 0.7, 0.4, 0.6]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    # 9 valid tokens; the top 20%: quantile 0.8 of them (linear interpolation) = 0.74 -> 0.8 and 0.9
    kept = high_entropy_token_mask(entropy, mask, 0.2)
    assert kept.tolist() == [[0, 1, 0, 0, 0], [1, 0, 0, 0, 0]]
    assert high_entropy_token_mask(entropy, mask, 1.0).sum() == 9
    assert high_entropy_token_mask(entropy, torch.zeros_like(mask), 0.2).sum() == 0


def test_sign_split_metrics_by_hand():
    logp = torch.log(torch.tensor([[1.5, 1.0, 0.5, 0.9]]))
    adv = torch.tensor([[1.0, 1.0, -1.0, 0.0]])
    _, metrics = policy_loss(logp, torch.zeros(1, 4), adv, torch.ones(1, 4), PolicyLossConfig(eps_low=0.2, eps_high=0.2))
    assert metrics["sign/ratio_mean_pos"] == pytest.approx(1.25) and metrics["sign/ratio_mean_neg"] == pytest.approx(0.5)
    assert metrics["sign/clip_frac_pos"] == pytest.approx(0.5) and metrics["sign/clip_frac_neg"] == pytest.approx(1.0)
    _, metrics = policy_loss(logp, torch.zeros(1, 4), adv.clamp_min(0), torch.ones(1, 4))
    assert "sign/ratio_mean_neg" not in metrics                 # no negative token: left out, not NaN


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
def test_sign_channel_losses_split_the_ratio_one_policy_gradient(mode):
    """Each channel's gradient is -A_t [sign] / N on its own tokens; the two sum to the PPO loss's
    gradient at ratio 1, also for a sequence whose tokens have both signs."""
    from asymrl.loss import sign_channel_losses

    logprobs = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -0.7, -1.1]], requires_grad=True)
    advantages = torch.tensor([[2.0, -1.0, 0.0], [-3.0, -3.0, 4.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])

    def reduce(per_token, valid):
        return aggregate(per_token, valid, mode)

    losses = sign_channel_losses(logprobs, advantages, mask, reduce)
    pos_grad, = torch.autograd.grad(losses["pos"], logprobs, retain_graph=True)
    neg_grad, = torch.autograd.grad(losses["neg"], logprobs, retain_graph=True)
    if mode == "token-mean":  # N = 5 valid tokens
        torch.testing.assert_close(pos_grad, torch.tensor([[-2 / 5, 0.0, 0.0], [0.0, 0.0, -4 / 5]]))
        torch.testing.assert_close(neg_grad, torch.tensor([[0.0, 1 / 5, 0.0], [3 / 5, 3 / 5, 0.0]]))
    else:  # each sequence's own token count, then over 2 sequences
        torch.testing.assert_close(pos_grad, torch.tensor([[-2 / 4, 0.0, 0.0], [0.0, 0.0, -4 / 6]]))
        torch.testing.assert_close(neg_grad, torch.tensor([[0.0, 1 / 4, 0.0], [3 / 6, 3 / 6, 0.0]]))
    whole, _ = policy_loss(logprobs, logprobs.detach(), advantages, mask, PolicyLossConfig(aggregation=mode))
    whole_grad, = torch.autograd.grad(whole, logprobs)
    torch.testing.assert_close(pos_grad + neg_grad, whole_grad)
