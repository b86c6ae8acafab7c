"""Rollout correction (Yao et al. 2025): mismatch metrics and importance weights, by hand and on an
engine that samples in bfloat16 while the trainer recomputes in float32."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from asymrl.logprobs import sequence_logprobs
from asymrl.rollout import SamplingParams, build_engine, collate
from asymrl.rollout_correction import (correction_weights, log_importance_weights, mismatch_metrics, mismatch_per_rollout,
                                       summarize_mismatch, summarize_weights, weight_per_rollout)
from asymrl.toy.build import ensure_base_policy

LOG2 = math.log(2.0)


def logprob_pair(deltas: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(old, engine) log-probs whose differences old - engine are ``deltas``."""
    engine = torch.full((len(deltas), len(deltas[0])), -1.5)
    return engine + torch.tensor(deltas), engine


def test_mismatch_metrics_by_hand():
    # d = old - engine on the valid tokens: 0.5, 0, -0.25 and -1 (row 1); the padding's 7 is ignored.
    old, engine = logprob_pair([[0.5, 0.0, -0.25, 7.0], [-1.0, 7.0, 7.0, 7.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    k3 = [math.exp(d) - 1 - d for d in (0.5, 0.0, -0.25, -1.0)]
    metrics = mismatch_metrics(old, engine, mask)
    assert metrics["mismatch/abs_logprob_diff_mean"] == pytest.approx((0.5 + 0 + 0.25 + 1.0) / 4)
    assert metrics["mismatch/abs_logprob_diff_max"] == pytest.approx(1.0)
    assert metrics["mismatch/kl_k3"] == pytest.approx(sum(k3) / 4, rel=1e-6)
    assert mismatch_metrics(old, engine, torch.zeros_like(mask)) == dict.fromkeys(metrics, 0.0)


def test_per_rollout_pieces_combine_across_ranks_exactly():
    """Rows split over two ranks, gathered as per-rollout sums, give the metrics of the whole batch."""
    old, engine = logprob_pair([[0.5, 0.0, -0.25, 7.0], [-1.0, 7.0, 7.0, 7.0], [0.125, -2.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]])
    ranks = [mismatch_per_rollout(old[rows], engine[rows], mask[rows]) for rows in (slice(0, 1), slice(1, 3))]
    gathered = {name: torch.cat([rank[name] for rank in ranks]) for name in ranks[0]}
    assert summarize_mismatch(gathered, mask.sum(dim=1)) == pytest.approx(mismatch_metrics(old, engine, mask))
    assert summarize_mismatch(gathered, mask.sum(dim=1))["mismatch/abs_logprob_diff_max"] == pytest.approx(2.0)

    weights, keep = correction_weights(old, engine, mask, mode="mask", level="token", cap=2.0)
    # kept (|d| <= log 2): 0.5, 0, -0.25 of row 0; nothing of row 1 (-1); 0.125 of row 2 (not -2).
    summary = summarize_weights(weight_per_rollout(weights, keep, mask), mask.sum(dim=1))
    assert summary == pytest.approx({"correction/weight_mean": 4 / 6, "correction/kept_frac": 4 / 6})
    tis_weights, tis_keep = correction_weights(old, engine, mask, mode="tis", level="token", cap=2.0)
    expected = (math.exp(0.5) + 1 + math.exp(-0.25) + math.exp(-1.0) + math.exp(0.125) + math.exp(-2.0)) / 6
    assert summarize_weights(weight_per_rollout(tis_weights, tis_keep, mask), mask.sum(dim=1)) == pytest.approx(
        {"correction/weight_mean": expected, "correction/kept_frac": 1.0})


def test_token_level_truncated_importance_sampling():
    # w = 3, 2 (at the cap), 0.5, 1; the last token is padding with w = e^5.
    old, engine = logprob_pair([[math.log(3.0), LOG2, -LOG2, 0.0, 5.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    weights, keep = correction_weights(old, engine, mask, mode="tis", level="token", cap=2.0)
    torch.testing.assert_close(weights, torch.tensor([[2.0, 2.0, 0.5, 1.0, 1.0]]))
    assert keep.tolist() == [[True, True, True, True, False]]


def test_token_level_masking_keeps_the_bounds():
    # w = 3 (out), 2 and 1/2 (the bounds: kept), 1/4 (out), 1; padding is never kept.
    old, engine = logprob_pair([[math.log(3.0), LOG2, -LOG2, -2 * LOG2, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    weights, keep = correction_weights(old, engine, mask, mode="mask", level="token", cap=2.0)
    assert keep.tolist() == [[False, True, True, False, True, False]]
    torch.testing.assert_close(weights, torch.ones(1, 6))


# Row sums of d over valid tokens: 0.3 + 0.4 = 0.7 (w = 2.01 > 2), -0.2 - 0.3 + 0.1 = -0.4
# (w = 0.67), -0.5 - 0.25 = -0.75 (w = 0.47 < 1/2). Padding holds 5.0, which would change every sum.
SEQUENCE_DELTAS = [[0.3, 0.4, 5.0], [-0.2, -0.3, 0.1], [-0.5, -0.25, 5.0]]
SEQUENCE_MASK = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 1, 0]])


def test_sequence_level_truncated_importance_sampling():
    old, engine = logprob_pair(SEQUENCE_DELTAS)
    weights, keep = correction_weights(old, engine, SEQUENCE_MASK, mode="tis", level="sequence", cap=2.0)
    expected = torch.tensor([[2.0, 2.0, 1.0], [math.exp(-0.4)] * 3, [math.exp(-0.75)] * 2 + [1.0]])
    torch.testing.assert_close(weights, expected)
    assert keep.tolist() == SEQUENCE_MASK.bool().tolist()
    log_weights = log_importance_weights(old, engine, SEQUENCE_MASK, level="sequence")
    torch.testing.assert_close(log_weights[:, 0], torch.tensor([0.7, -0.4, -0.75]))


def test_sequence_level_masking_drops_whole_responses():
    old, engine = logprob_pair(SEQUENCE_DELTAS)
    weights, keep = correction_weights(old, engine, SEQUENCE_MASK, mode="mask", level="sequence", cap=2.0)
    assert keep.tolist() == [[False, False, False], [True, True, True], [False, False, False]]
    torch.testing.assert_close(weights, torch.ones(3, 3))
    # A cap of 2.05 takes the first response (w = 2.01) in and leaves the third (w = 0.47 < 1/2.05 = 0.49) out.
    _, keep = correction_weights(old, engine, SEQUENCE_MASK, mode="mask", level="sequence", cap=2.05)
    assert keep.tolist() == [[True, True, False], [True, True, True], [False, False, False]]


def test_none_and_constant_weights():
    old, engine = logprob_pair([[1.0, -1.0, 0.0]])
    old.requires_grad_()
    mask = torch.tensor([[1, 1, 0]])
    weights, keep = correction_weights(old, engine, mask, mode="none")
    torch.testing.assert_close(weights, torch.ones(1, 3))
    assert keep.tolist() == [[True, True, False]]
    weights, _ = correction_weights(old, engine, mask, mode="tis", level="token", cap=2.0)
    assert not weights.requires_grad
    torch.testing.assert_close(weights, torch.tensor([[2.0, math.exp(-1.0), 1.0]]))


def test_bad_settings_are_named():
    old, engine = logprob_pair([[0.0]])
    mask = torch.ones(1, 1)
    with pytest.raises(ValueError, match="unknown rollout correction 'clip'.*none, tis, mask"):
        correction_weights(old, engine, mask, mode="clip")
    with pytest.raises(ValueError, match="unknown rollout-correction level 'batch'.*token, sequence"):
        correction_weights(old, engine, mask, mode="tis", level="batch")
    with pytest.raises(ValueError, match="cap must be > 1"):
        correction_weights(old, engine, mask, mode="mask", cap=1.0)


PROMPTS = [[{"role": "user", "content": "Compute 47+38."}], [{"role": "user", "content": "Solve 3x+7=22."}]]


def engine_and_trainer_logprobs(policy_dir, trainer_model, dtype: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample with an engine in ``dtype``; return (trainer's float32 log-probs, engine's, response mask)."""
    engine = build_engine("transformers", policy_dir, dtype=dtype)
    groups = engine.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=32, seed=0))
    batch = collate([c for group in groups for c in group], engine.tokenizer.pad_token_id, with_engine_logprobs=True)
    with torch.no_grad():
        old, _ = sequence_logprobs(trainer_model, batch["input_ids"], batch["attention_mask"], batch["response_mask"])
    return old, batch["engine_logprobs"], batch["response_mask"]


def test_a_bfloat16_engine_mismatches_a_float32_trainer_slightly():
    policy_dir = ensure_base_policy("tiny")
    trainer_model = AutoModelForCausalLM.from_pretrained(policy_dir).eval()

    old, engine, mask = engine_and_trainer_logprobs(policy_dir, trainer_model, "bfloat16")
    metrics = mismatch_metrics(old, engine, mask)
    response = mask.bool()
    delta = torch.where(response, old - engine, 0.0)
    # The metrics are these by hand, whatever the CPU's bf16 rounding made of the engine's numbers;
    # that the gap is not zero (nor another policy's) holds for any rounding of the weights to bf16.
    assert metrics["mismatch/abs_logprob_diff_mean"] == pytest.approx(float(delta.abs()[response].mean()), rel=1e-5)
    assert metrics["mismatch/abs_logprob_diff_max"] == pytest.approx(float(delta.abs()[response].max()), rel=1e-5)
    assert metrics["mismatch/kl_k3"] == pytest.approx(float((torch.exp(delta) - 1 - delta)[response].mean()), rel=1e-4, abs=1e-12)
    assert 0 < metrics["mismatch/abs_logprob_diff_mean"] < 0.1
    for level, log_ratio in (("token", delta), ("sequence", delta.sum(dim=1, keepdim=True).expand_as(delta))):
        weights, keep = correction_weights(old, engine, mask, mode="tis", level=level, cap=2.0)
        torch.testing.assert_close(weights[response], torch.exp(log_ratio).clamp(max=2.0)[response], rtol=1e-6, atol=0)
        assert (weights <= 2.0).all() and keep.equal(response)

    old, engine, mask = engine_and_trainer_logprobs(policy_dir, trainer_model, "float32")
    metrics = mismatch_metrics(old, engine, mask)
    assert metrics["mismatch/abs_logprob_diff_max"] < 1e-4
    assert metrics["mismatch/kl_k3"] < 1e-8
