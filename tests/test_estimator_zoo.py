"""The published estimators beyond Gu et al.'s Table 1 (RLOO, REINFORCE++-baseline, PSR / NSR /
W-REINFORCE, QAE, A-GRAE, AsymRE, OPO, GPG): closed forms by hand for several (k, G), the sources'
worked examples and reference-code semantics recomputed by hand, the context interface (batch-coupled
estimators split across ranks give the one-process result), and config validation."""

from __future__ import annotations

import math

import pytest
import torch

from asymrl import advantages
from asymrl.advantages import compute
from asymrl.config import ConfigError, build_config

ZOO = ["rloo", "reinforce_pp_baseline", "psr", "nsr", "w_reinforce", "qae", "a_grae", "asymre", "opo", "gpg"]
SIZES = [2, 3, 4, 5, 8, 16]
TOL = dict(abs=1e-12, rel=0)


def group(correct: int, size: int) -> torch.Tensor:
    """One group of ``size`` rollouts, the first ``correct`` of them correct (float64)."""
    rewards = torch.zeros(1, size, dtype=torch.float64)
    rewards[0, :correct] = 1.0
    return rewards


def channels(name: str, correct: int, size: int, **params) -> tuple[float | None, float | None]:
    """(advantage of a correct rollout, of a wrong one) in a group with ``correct`` hits; a
    batch-coupled estimator sees that one group as its batch unless ``params`` say otherwise."""
    rewards = group(correct, size)
    context = {"batch_rewards": rewards, "response_lengths": torch.ones_like(rewards), "step": 0, "total_steps": 1}
    params = {**{p: context[p] for p in advantages.context_parameters(name)}, **params}
    adv = compute(name, rewards, **params)[0]
    return (float(adv[0]) if correct > 0 else None), (float(adv[-1]) if correct < size else None)


def sample_std(correct: int, size: int) -> float:
    """Bessel std of a binary group: sqrt(k (G-k) / (G (G-1)))."""
    return math.sqrt(correct * (size - correct) / (size * (size - 1)))


def random_batch(prompts: int = 6, size: int = 8, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    rewards = (torch.rand(prompts, size, generator=generator, dtype=torch.float64) < 0.5).double()
    rewards[0] = 1.0  # one all-correct and one all-wrong group: the zero-variance cases
    rewards[1] = 0.0
    return rewards


# -- the interface -------------------------------------------------------------------------------------


def test_zoo_is_registered_with_its_context():
    assert set(ZOO) <= set(advantages.available())
    assert advantages.CONTEXT_PARAMETERS == ("batch_rewards", "step", "total_steps", "response_lengths")
    expected = {"reinforce_pp_baseline": {"batch_rewards"}, "a_grae": {"batch_rewards"}, "gpg": {"batch_rewards"},
                "opo": {"response_lengths"}}
    for name in advantages.available():
        assert advantages.context_parameters(name) == expected.get(name, set()), name
        # context is never a configurable parameter
        assert not set(advantages.parameters(name)) & set(advantages.CONTEXT_PARAMETERS), name


def test_published_defaults():
    assert advantages.parameters("rloo") == {}
    assert advantages.parameters("reinforce_pp_baseline") == {"std": "population", "eps": 1e-8}
    assert advantages.parameters("w_reinforce") == {"lam": 0.1}
    assert advantages.parameters("qae") == {"quantile_k": 0.4, "std": "sample", "eps": 1e-6, "method": "inverted_cdf"}
    assert advantages.parameters("a_grae") == {"alpha": 1.0, "std": "sample", "eps": 1e-6}
    assert advantages.parameters("asymre") == {"delta_v": -0.1, "baseline": "mean"}
    assert advantages.parameters("opo") == {}
    assert advantages.parameters("gpg") == {"std": "none", "eps": 0.0}


def test_compute_checks_context():
    rewards = group(1, 4)
    with pytest.raises(TypeError, match=r"needs context \['batch_rewards'\]"):
        compute("gpg", rewards)
    with pytest.raises(TypeError, match=r"needs context \['response_lengths'\]"):
        compute("opo", rewards)
    with pytest.raises(TypeError, match="takes no parameter.*step.*context.*batch_rewards"):
        compute("gpg", rewards, batch_rewards=rewards, step=3)  # gpg takes no step
    with pytest.raises(TypeError, match="takes no parameter.*batch_rewards"):
        compute("rloo", rewards, batch_rewards=rewards)
    with pytest.raises(ValueError, match="batch_rewards must have shape"):
        compute("gpg", rewards, batch_rewards=torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="response_lengths must have the shape"):
        compute("opo", rewards, response_lengths=torch.ones(1, 3))


def test_context_for_picks_what_the_estimator_takes():
    rewards, lengths = group(2, 4), torch.full((1, 4), 7.0)
    everything = dict(batch_rewards=rewards, step=5, total_steps=10, response_lengths=lengths)
    assert advantages.context_for("rloo", **everything) == {}
    assert set(advantages.context_for("gpg", **everything)) == {"batch_rewards"}
    assert advantages.context_for("opo", **everything)["response_lengths"] is lengths
    with pytest.raises(TypeError, match="needs context"):
        advantages.context_for("gpg", step=5)
    with pytest.raises(TypeError, match="not context parameters"):
        advantages.context_for("gpg", batch_reward=rewards)


@pytest.mark.parametrize("name", [n for n in ZOO if n not in ("psr", "nsr", "w_reinforce")])
def test_shape_dtype_and_uniform_rows(name):
    rewards = random_batch()
    context = advantages.context_for(name, batch_rewards=rewards, step=0, total_steps=1,
                                     response_lengths=torch.ones_like(rewards))
    adv = compute(name, rewards, **context)
    assert adv.shape == rewards.shape and adv.dtype == torch.float64 and torch.isfinite(adv).all()
    if name != "asymre":  # asymre's shifted baseline gives a uniform group -delta_v (below)
        assert torch.equal(adv[:2], torch.zeros_like(adv[:2])), name


# -- RLOO ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_rloo_closed_form(size):
    for k in range(size + 1):
        pos, neg = channels("rloo", k, size)
        if pos is not None:
            assert pos == pytest.approx((size - k) / (size - 1), **TOL)
        if neg is not None:
            assert neg == pytest.approx(-k / (size - 1), **TOL)


def test_rloo_is_the_leave_one_out_mean_and_verls_rescaled_form():
    rewards = torch.tensor([[0.2, 0.5, 0.9], [1.0, 0.0, 0.0]], dtype=torch.float64)
    got = compute("rloo", rewards)
    by_hand = [[0.2 - (0.5 + 0.9) / 2, 0.5 - (0.2 + 0.9) / 2, 0.9 - (0.2 + 0.5) / 2], [1.0, -0.5, -0.5]]
    torch.testing.assert_close(got, torch.tensor(by_hand, dtype=torch.float64), atol=1e-12, rtol=0)
    # verl's form: r n/(n-1) - mean n/(n-1)
    for row, adv in zip(rewards.tolist(), got.tolist()):
        n, mean = len(row), sum(row) / len(row)
        assert adv == pytest.approx([r * n / (n - 1) - mean * n / (n - 1) for r in row], **TOL)


# -- REINFORCE++-baseline --------------------------------------------------------------------------------


def test_reinforce_pp_baseline_by_hand():
    batch = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.float64)
    # centred: [.75, -.25, -.25, -.25], [.5, .5, -.5, -.5], [0, 0, 0, 0]; sum of squares 1.75 over 12
    centred = torch.tensor([[0.75, -0.25, -0.25, -0.25], [0.5, 0.5, -0.5, -0.5], [0.0] * 4], dtype=torch.float64)
    population = compute("reinforce_pp_baseline", batch, batch_rewards=batch)
    torch.testing.assert_close(population, centred / math.sqrt(1.75 / 12), atol=1e-12, rtol=0)
    sample = compute("reinforce_pp_baseline", batch, std="sample", batch_rewards=batch)
    torch.testing.assert_close(sample, centred / math.sqrt(1.75 / 11), atol=1e-12, rtol=0)
    assert float(population[0, 0]) == pytest.approx(0.75 / math.sqrt(1.75 / 12), **TOL)


def test_reinforce_pp_baseline_matches_openrlhf_whitening_with_equal_lengths():
    """The authors' OpenRLHF: centred rewards copied to every token, then (A - token mean) * max(var, 1e-8)^-1/2
    over every token of the batch; with equal lengths that is the per-rollout formula (recomputed here)."""
    batch = random_batch(prompts=5, size=4, seed=3)
    tokens = 3
    per_token = (batch - batch.mean(dim=1, keepdim=True)).repeat_interleave(tokens, dim=1).flatten().tolist()
    mean = sum(per_token) / len(per_token)
    var = sum((a - mean) ** 2 for a in per_token) / len(per_token)
    expected = [[(a - mean) / math.sqrt(max(var, 1e-8)) for a in row[::tokens]]
                for row in torch.tensor(per_token).view(5, 4 * tokens).tolist()]
    got = compute("reinforce_pp_baseline", batch, batch_rewards=batch)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("size", SIZES)
def test_reinforce_pp_baseline_of_one_group_is_grpo(size):
    """A batch of one group: the batch std of its centred rewards is the group's population std."""
    for k in range(size + 1):
        rewards = group(k, size)
        torch.testing.assert_close(compute("reinforce_pp_baseline", rewards, batch_rewards=rewards),
                                   compute("grpo", rewards), atol=1e-12, rtol=0)


def test_reinforce_pp_baseline_couples_groups():
    batch = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 0]], dtype=torch.float64)
    other = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.float64)
    alone = compute("reinforce_pp_baseline", batch[:1], batch_rewards=batch)
    changed = compute("reinforce_pp_baseline", batch[:1], batch_rewards=other)
    assert not torch.allclose(alone, changed)  # the first group's advantages depend on the second
    uniform = torch.ones(3, 4, dtype=torch.float64)
    assert torch.equal(compute("reinforce_pp_baseline", uniform, batch_rewards=uniform), torch.zeros(3, 4, dtype=torch.float64))


# -- PSR / NSR / W-REINFORCE -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_psr_nsr_w_reinforce_closed_forms(size):
    for k in range(size + 1):
        assert channels("psr", k, size) == (1.0 if k else None, 0.0 if k < size else None)
        assert channels("nsr", k, size) == (0.0 if k else None, -1.0 if k < size else None)
        pos, neg = channels("w_reinforce", k, size)
        assert pos in (None, pytest.approx(0.1, **TOL)) and neg in (None, -1.0)
        pos, neg = channels("w_reinforce", k, size, lam=1.0)
        assert (pos, neg) == channels("reinforce", k, size)


def test_decomposed_reference_code_semantics():
    """The authors' code with 0/1 scores: PSR advantage = score (+1 on the correct rollouts it keeps),
    NSR = score - 1 (-1 on the wrong ones it keeps), W-REINFORCE = score * lam on correct, score - 1 on wrong."""
    scores = torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    correct = scores[0] == 1
    assert compute("psr", scores)[0][correct].tolist() == scores[0][correct].tolist()
    assert compute("nsr", scores)[0][~correct].tolist() == (scores[0][~correct] - 1).tolist()
    assert compute("w_reinforce", scores, lam=0.1)[0].tolist() == pytest.approx([0.1, -1.0, -1.0, 0.1, -1.0], **TOL)
    # and the channels they drop carry no signal here
    assert compute("psr", scores)[0][~correct].abs().sum() == 0 and compute("nsr", scores)[0][correct].abs().sum() == 0


@pytest.mark.parametrize("size", [4, 8])
def test_psr_nsr_are_not_pos_only_neg_only(size):
    """Pos-Only keeps REINFORCE's -1 on wrong rollouts and modulates correct ones by sqrt((1-p)/p);
    PSR drops the wrong channel (0) and gives every correct rollout +1 (mirror for Neg-Only / NSR)."""
    for k in range(1, size):
        p = k / size
        assert channels("pos_only", k, size) == (pytest.approx(math.sqrt((1 - p) / p)), -1.0)
        assert channels("psr", k, size) == (1.0, 0.0)
        assert channels("neg_only", k, size) == (1.0, pytest.approx(-math.sqrt(p / (1 - p))))
        assert channels("nsr", k, size) == (0.0, -1.0)


@pytest.mark.parametrize("name", ["psr", "nsr", "w_reinforce"])
def test_decomposed_estimators_need_binary_rewards(name):
    with pytest.raises(ValueError, match="binary rewards"):
        compute(name, torch.tensor([[0.0, 0.5, 1.0]]))


# -- QAE -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("level", [0.2, 0.4, 0.6, 0.8])
def test_qae_two_regime_gate(size, level):
    """Wu et al.'s Eq. 4: baseline 0 when p <= 1 - K, else 1; then (r - b) / (Bessel std + 1e-6)."""
    for k in range(size + 1):
        p = k / size
        baseline = 0.0 if p <= 1 - level + 1e-12 else 1.0
        scale = sample_std(k, size) + 1e-6
        pos, neg = channels("qae", k, size, quantile_k=level)
        if 0 < k < size:
            assert pos == pytest.approx((1 - baseline) / scale, **TOL)
            assert neg == pytest.approx((0 - baseline) / scale, **TOL)
            # the gate: a hard prompt trains only its successes, an easy one only its failures
            assert (pos == 0) == (baseline == 1) and (neg == 0) == (baseline == 0)
        else:
            assert pos in (None, 0.0) and neg in (None, 0.0)


def test_qae_default_g8_by_hand():
    """K = 0.4, G = 8: hard up to k = 4 (p = 0.5 <= 0.6), easy from k = 5 (p = 0.625 > 0.6); the
    Bessel std of k correct is sqrt(k (8-k) / 56)."""
    assert channels("qae", 1, 8) == (pytest.approx(1 / (math.sqrt(7 / 56) + 1e-6), **TOL), 0.0)
    assert channels("qae", 4, 8) == (pytest.approx(1 / (math.sqrt(16 / 56) + 1e-6), **TOL), 0.0)
    assert channels("qae", 5, 8) == (0.0, pytest.approx(-1 / (math.sqrt(15 / 56) + 1e-6), **TOL))
    # about 80% zeros at their default is a statement about their training batches; here: the share of
    # rollouts with a non-zero advantage in a group of accuracy p is p on hard prompts, 1 - p on easy ones
    adv = compute("qae", advantages.accuracy_grid(8))
    assert [int((row != 0).sum()) for row in adv] == [0, 1, 2, 3, 4, 3, 2, 1, 0]


def test_qae_linear_quantile_is_the_released_codes():
    """torch.quantile (linear) at G = 8, K = 0.4: position 0.4 * 7 = 2.8 between the sorted rewards
    at 2 and 3; with k = 5 correct those are 0 and 1, so the baseline is 0.8 (the definition: 1)."""
    rewards = group(5, 8)
    scale = sample_std(5, 8) + 1e-6
    linear = compute("qae", rewards, method="linear")[0]
    assert float(linear[0]) == pytest.approx((1 - 0.8) / scale, abs=1e-12) and float(linear[-1]) == pytest.approx(-0.8 / scale, abs=1e-12)
    # away from that boundary the two agree
    for k in (0, 1, 2, 3, 4, 6, 7, 8):
        torch.testing.assert_close(compute("qae", group(k, 8), method="linear"), compute("qae", group(k, 8)), atol=1e-12, rtol=0)


def test_quantile_definitions_on_real_rewards():
    rewards = torch.tensor([[0.1, 0.5, 0.3, 0.9, 0.7]], dtype=torch.float64)
    # inf{x: F(x) >= 0.4}: F(0.1) = 0.2, F(0.3) = 0.4 -> 0.3; linear: position 1.6 -> 0.3 + 0.6 * 0.2
    assert float(advantages.empirical_quantile(rewards, 0.4)) == pytest.approx(0.3, **TOL)
    assert float(advantages.empirical_quantile(rewards, 0.4, "linear")) == pytest.approx(0.42, **TOL)
    assert float(advantages.empirical_quantile(torch.arange(10.0)[None], 0.3)) == 2.0  # 0.3 * 10 is not 3.0000000000000004
    adv = compute("qae", rewards, std="none")
    torch.testing.assert_close(adv, rewards - 0.3, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        compute("qae", rewards, quantile_k=1.0)


# -- A-GRAE ----------------------------------------------------------------------------------------------


def a_grae_by_hand(k: int, size: int, batch_accuracy: float, alpha: float = 1.0, eps: float = 1e-6):
    """The authors' released formula, on one binary group with ``k`` correct of ``size``."""
    p = k / size
    spread = sample_std(k, size)
    out = []
    for reward in (1.0, 0.0):
        base = (reward - p) / (spread + eps) if 0 < k < size else 0.0
        easy = 0.5 * base / (1 - math.sqrt(p) + eps)
        hard = 0.5 * base / (math.sqrt(p) + eps)
        mixed = (1 - batch_accuracy) * easy + batch_accuracy * hard
        out.append(mixed * min(1.0, batch_accuracy / alpha) if mixed > 0 else mixed)
    return out[0] if k > 0 else None, out[1] if k < size else None


@pytest.mark.parametrize("size", [4, 5, 8, 16])
@pytest.mark.parametrize("batch_correct", [1, 2, 3])
def test_a_grae_closed_form(size, batch_correct):
    batch = torch.zeros(3, size, dtype=torch.float64)  # a stated batch of accuracy about batch_correct / 4
    batch[:, : batch_correct * size // 4] = 1.0
    accuracy = float(batch.mean())
    for k in range(size + 1):
        for alpha in (1.0, 0.5):
            got = channels("a_grae", k, size, batch_rewards=batch, alpha=alpha)
            want = a_grae_by_hand(k, size, accuracy, alpha)
            for g, w in zip(got, want):
                assert (g is None) == (w is None)
                if g is not None:
                    assert g == pytest.approx(w, abs=1e-12, rel=1e-12)


def test_a_grae_worked_example():
    """G = 4, batch of groups with 1, 2 and 4 correct: batch accuracy m = 7/12; the group with one
    correct has p = 1/4, sqrt(p) = 1/2, so both focus terms are A / (2 (1/2 + eps)) and A' = A / (1 + 2 eps)."""
    batch = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.float64)
    eps, m = 1e-6, 7 / 12
    adv = compute("a_grae", batch, batch_rewards=batch)
    base_pos, base_neg = 0.75 / (0.5 + eps), -0.25 / (0.5 + eps)
    assert float(adv[0, 0]) == pytest.approx(base_pos / (1 + 2 * eps) * m, abs=1e-12)  # suppressed by min(1, m)
    assert float(adv[0, 1]) == pytest.approx(base_neg / (1 + 2 * eps), abs=1e-12)  # negatives untouched
    assert torch.equal(adv[2], torch.zeros(4, dtype=torch.float64))


def test_a_grae_curriculum_moves_from_easy_to_hard_prompts():
    """The weight A-GRAE puts on GRPO's advantage, (1-m) / (2 (1 - sqrt p)) + m / (2 sqrt p) (wrong
    rollouts: never suppressed), grows with p at a low batch accuracy m and falls with p at a high one."""
    size = 8
    low, high = group(1, size).repeat(4, 1), group(7, size).repeat(4, 1)

    def weight(k, batch):
        grpo = compute("grpo", group(k, size), std="sample", eps=1e-6)[0, -1]
        return float(channels("a_grae", k, size, batch_rewards=batch)[1] / grpo)

    for k in (2, 6):
        p = k / size
        for m, batch in ((1 / 8, low), (7 / 8, high)):
            want = (1 - m) / (2 * (1 - math.sqrt(p) + 1e-6)) + m / (2 * (math.sqrt(p) + 1e-6))
            assert weight(k, batch) == pytest.approx(want, abs=1e-12, rel=1e-12)
    assert weight(6, low) > weight(2, low) and weight(2, high) > weight(6, high)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        compute("a_grae", torch.tensor([[2.0, 0.0]]), batch_rewards=torch.tensor([[2.0, 0.0]]))


# -- AsymRE, OPO, GPG ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_asymre_closed_form(size):
    for delta in (-0.1, 0.0, -0.3):
        for k in range(size + 1):
            p = k / size
            pos, neg = channels("asymre", k, size, delta_v=delta)
            assert pos in (None, pytest.approx(1 - p - delta, **TOL)) and neg in (None, pytest.approx(-p - delta, **TOL))
            pos, neg = channels("asymre", k, size, delta_v=delta, baseline="leave_one_out")
            if pos is not None:
                assert pos == pytest.approx(1 - (k - 1) / (size - 1) - delta, **TOL)
            if neg is not None:
                assert neg == pytest.approx(-k / (size - 1) - delta, **TOL)


def test_asymre_reference_semantics():
    """r - (group mean + shift), shift -0.1 (Trinity-RFT's AsymRE): [1, 0, 0, 0] -> mean 0.25, V = 0.15."""
    adv = compute("asymre", torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(adv, torch.tensor([[0.85, -0.15, -0.15, -0.15], [0.1] * 4], dtype=torch.float64),
                               atol=1e-12, rtol=0)
    assert torch.equal(compute("asymre", group(3, 8), delta_v=0.0), compute("dr_grpo", group(3, 8)))


def test_opo_length_weighted_baseline():
    rewards = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.5, 1.0, 0.0, 0.5]], dtype=torch.float64)
    lengths = torch.tensor([[10, 30, 20, 40], [0, 0, 0, 0]])
    # row 0: b = (10 + 20) / 100 = 0.3; row 1: no tokens -> the plain mean 0.5
    adv = compute("opo", rewards, response_lengths=lengths)
    torch.testing.assert_close(adv, torch.tensor([[0.7, -0.3, 0.7, -0.3], [0.0, 0.5, -0.5, 0.0]], dtype=torch.float64),
                               atol=1e-12, rtol=0)
    equal = torch.full((2, 4), 17)
    torch.testing.assert_close(compute("opo", rewards, response_lengths=equal), compute("dr_grpo", rewards), atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match=">= 0"):
        compute("opo", rewards, response_lengths=-equal)


@pytest.mark.parametrize("size", [4, 8])
def test_opo_closed_form_when_wrong_responses_are_longer(size):
    """Correct responses of length l+, wrong ones l-: b = k l+ / (k l+ + (G-k) l-)."""
    for k in range(size + 1):
        rewards = group(k, size)
        lengths = torch.where(rewards > 0.5, 3.0, 5.0)
        b = k * 3 / (k * 3 + (size - k) * 5)
        adv = compute("opo", rewards, response_lengths=lengths)[0]
        if k:
            assert float(adv[0]) == pytest.approx(1 - b, **TOL)
        if k < size:
            assert float(adv[-1]) == pytest.approx(-b, **TOL)


def test_gpg_valid_sample_correction():
    batch = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.float64)
    # B = 16 rollouts, M = 8 of them in uniform groups: alpha = 16 / 8 = 2
    adv = compute("gpg", batch, batch_rewards=batch)
    expected = 2 * (batch - batch.mean(dim=1, keepdim=True))
    torch.testing.assert_close(adv, expected, atol=1e-12, rtol=0)
    # the authors' code divides the loss by (B - M) / B + 1e-5: the same factor up to that 1e-5
    assert float(adv[0, 0]) == pytest.approx(0.75 / (8 / 16 + 1e-5), rel=1e-4)
    # a batch with every group informative: alpha = 1, Dr.GRPO
    mixed = batch[[0, 3]]
    torch.testing.assert_close(compute("gpg", mixed, batch_rewards=mixed), compute("dr_grpo", mixed), atol=1e-12, rtol=0)
    uniform = batch[[1, 2]]
    assert torch.equal(compute("gpg", uniform, batch_rewards=uniform), torch.zeros(2, 4, dtype=torch.float64))
    # F_norm = group std
    sample = compute("gpg", batch, std="sample", batch_rewards=batch)
    assert float(sample[0, 0]) == pytest.approx(2 * 0.75 / 0.5, **TOL)


# -- split batches: a rank's rows with the whole batch give the one-process rows -------------------------


@pytest.mark.parametrize("name", [n for n in advantages.available() if advantages.context_parameters(n)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_batch_is_exact(name, seed):
    rewards = random_batch(prompts=6, size=8, seed=seed)
    generator = torch.Generator().manual_seed(seed + 10)
    lengths = torch.randint(1, 50, rewards.shape, generator=generator)
    context = dict(batch_rewards=rewards, step=3, total_steps=10, response_lengths=lengths)
    whole = compute(name, rewards, **advantages.context_for(name, **context))
    halves = []
    for rows in (slice(0, 2), slice(2, 6)):  # unequal halves, as ranks with uneven shares
        local = {**context, "response_lengths": lengths[rows]}  # batch_rewards stays the whole step's
        halves.append(compute(name, rewards[rows], **advantages.context_for(name, **local)))
    torch.testing.assert_close(torch.cat(halves), whole, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", [n for n in advantages.available() if "batch_rewards" in advantages.context_parameters(n)])
def test_batch_coupled_estimators_depend_on_the_batch(name):
    """The same group gets other advantages in another batch: a rank must not use its own rows alone."""
    rows = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    first = torch.cat([rows, torch.ones(1, 4, dtype=torch.float64)])
    second = torch.cat([rows, torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)])
    assert not torch.allclose(compute(name, rows, batch_rewards=first), compute(name, rows, batch_rewards=second))


# -- config --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ZOO)
def test_config_accepts_each_estimator_with_defaults(name):
    config = build_config({"algorithm.estimator": name})
    assert config.algorithm.estimator == name and config.algorithm.estimator_params() == {}


@pytest.mark.parametrize("name,key,value", [
    ("qae", "quantile_k", 0.6), ("qae", "method", "linear"), ("w_reinforce", "lam", 0.25), ("asymre", "delta_v", -0.2),
    ("a_grae", "alpha", 0.5), ("reinforce_pp_baseline", "std", "sample"), ("gpg", "std", "sample"),
])
def test_config_sets_and_converts_estimator_kwargs(name, key, value):
    config = build_config({"algorithm.estimator": name, f"algorithm.estimator_kwargs.{key}": str(value)})
    assert config.algorithm.estimator_params() == {key: value}


@pytest.mark.parametrize("name,key,value", [
    ("qae", "quantile", 0.4), ("w_reinforce", "lamda", 0.1), ("qae", "quantile_k", "high"),
    ("qae", "method", "nearest"), ("reinforce_pp_baseline", "std", "none"), ("rloo", "eps", 1e-6),
])
def test_config_rejects_bad_kwargs_naming_the_key(name, key, value):
    with pytest.raises(ConfigError, match=rf"algorithm\.estimator_kwargs\.{key}"):
        build_config({"algorithm.estimator": name, f"algorithm.estimator_kwargs.{key}": value})


@pytest.mark.parametrize("name", [n for n in advantages.available() if advantages.context_parameters(n)])
def test_context_cannot_be_set_in_estimator_kwargs(name):
    for key in advantages.CONTEXT_PARAMETERS:
        with pytest.raises(ConfigError, match=rf"algorithm\.estimator_kwargs\.{key}: .* has no parameter"):
            build_config({"algorithm.estimator": name, f"algorithm.estimator_kwargs.{key}": 1})


# -- curves for the figure -------------------------------------------------------------------------------


def test_channel_curves_with_context():
    # default batch: the accuracy grid itself (9 groups at G = 8, 7 informative): gpg alpha = 9/7
    pos, neg = advantages.channel_curves("gpg", 8)
    assert pos[2] == pytest.approx(9 / 7 * 0.75, **TOL) and neg[2] == pytest.approx(-9 / 7 * 0.25, **TOL)
    assert pos[0] is None and neg[8] is None
    # a stated batch and stated lengths
    pos, _ = advantages.channel_curves("a_grae", 8, context={"batch_rewards": group(2, 8)})
    assert pos[3] == pytest.approx(a_grae_by_hand(3, 8, 0.25)[0], abs=1e-12, rel=1e-12)
    grid = advantages.accuracy_grid(8)
    _, neg = advantages.channel_curves("opo", 8, context={"response_lengths": 1 + (grid < 0.5).double()})
    assert neg[4] == pytest.approx(-4 / (4 + 8), **TOL)


def test_zoo_figure(tmp_path):
    from asymrl import plots

    assert set(ZOO) <= {name for _, name, _, _ in plots.ZOO_CURVES}
    out = plots.plot_advantage_curves(8, tmp_path / "zoo.png", curves=plots.ZOO_CURVES)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
