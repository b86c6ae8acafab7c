"""Rollout correction: the engine samples from pi_engine, the trainer recomputes pi_old.

Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL training": the
rollout engine (vLLM, or transformers in a lower precision) and the trainer compute the same
policy's log-probs with different kernels and precisions, so responses drawn from ``pi_engine`` are
trained on as if drawn from ``pi_old``. With, per response token ``y_t``,

    d_t = log pi_old(y_t) - log pi_engine(y_t),        w_t = exp(d_t) = pi_old(y_t) / pi_engine(y_t)

the importance weight ``w_t`` turns the engine's samples into an estimate under ``pi_old``
(``E_engine[w f] = E_old[f]``). Its variance is unbounded, hence the two corrections offered here:

* ``tis``, truncated importance sampling (Yao et al. 2025; verl ``rollout_is``, TRL
  ``vllm_importance_sampling_correction``): the per-token policy-gradient loss is multiplied by
  ``min(w, C)``, which bounds the variance at the cost of a bias where ``w > C``.
* ``mask``, masked importance sampling / rejection (verl ``rollout_rs``, OpenRLHF ``icepop``):
  tokens whose weight leaves ``[1/C, C]`` are dropped from the loss, the rest trained unweighted.

At the ``sequence`` level the weight of a response is the ratio of its probabilities under the two
policies, ``w = prod_t w_t = exp(sum_t d_t)`` over its valid tokens, truncated or tested once and
broadcast to all its tokens; at the ``token`` level each token has its own ``w_t``.

The weights are constants (no gradient): they re-weight the loss, they are not optimised.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

RolloutCorrection = Literal["none", "tis", "mask"]
ROLLOUT_CORRECTIONS: tuple[str, ...] = RolloutCorrection.__args__
CorrectionLevel = Literal["token", "sequence"]
CORRECTION_LEVELS: tuple[str, ...] = CorrectionLevel.__args__


def mismatch_per_rollout(old_logprobs: torch.Tensor, engine_logprobs: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-rollout pieces of the mismatch, ``(batch,)`` each, over the valid tokens of ``mask``: with
    ``d = old - engine`` per token, ``mismatch_abs_sum`` = sum of ``|d|``, ``mismatch_abs_max`` = max
    of ``|d|`` (0 for an empty row), ``mismatch_k3_sum`` = sum of ``exp(d) - 1 - d`` (see
    :func:`mismatch_metrics`). Sums, not means, so that rows from every rank combine exactly."""
    valid = mask.bool()
    delta = torch.where(valid, old_logprobs.detach().float() - engine_logprobs.detach().float(), 0.0)
    return {
        "mismatch_abs_sum": delta.abs().sum(dim=-1),
        "mismatch_abs_max": delta.abs().amax(dim=-1) if delta.shape[-1] else delta.sum(dim=-1),
        "mismatch_k3_sum": (torch.expm1(delta) - delta).sum(dim=-1),
    }


def summarize_mismatch(per_rollout: dict[str, torch.Tensor], response_tokens: torch.Tensor) -> dict[str, float]:
    """The step's mismatch metrics from :func:`mismatch_per_rollout`'s pieces of every rollout and
    their numbers of valid tokens: token means of ``|d|`` and of k3, and the max of ``|d|``."""
    tokens = float(response_tokens.sum())
    if tokens == 0:
        return {"mismatch/abs_logprob_diff_mean": 0.0, "mismatch/abs_logprob_diff_max": 0.0, "mismatch/kl_k3": 0.0}
    return {
        "mismatch/abs_logprob_diff_mean": float(per_rollout["mismatch_abs_sum"].sum()) / tokens,
        "mismatch/abs_logprob_diff_max": float(per_rollout["mismatch_abs_max"].max()),
        "mismatch/kl_k3": float(per_rollout["mismatch_k3_sum"].sum()) / tokens,
    }


def mismatch_metrics(old_logprobs: torch.Tensor, engine_logprobs: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """How far the engine's log-probs are from the trainer's, over the valid tokens of ``mask``.

    All inputs are ``(batch, tokens)``. With ``d = old - engine`` per token:

    * ``mismatch/abs_logprob_diff_mean`` and ``..._max``: mean and max of ``|d|``;
    * ``mismatch/kl_k3``: the token mean of the k3 estimate of ``KL(pi_engine || pi_old)``, the KL of
      the next-token distributions, from the sampled tokens. The samples come from the engine, so
      with ``r = pi_old / pi_engine = exp(d)``: ``KL = E_engine[-log r]`` and ``E_engine[r] = 1``,
      hence ``k3 = r - 1 - log r = exp(d) - 1 - d`` is unbiased, and non-negative on every token
      (``log r <= r - 1``), with a lower variance than ``k1 = -d`` (Schulman 2020, "Approximating
      KL divergence"; ``asymrl.loss.kl_penalty``'s k3 with its ``d`` = ``-d`` here).

    All three are 0.0 when ``mask`` has no valid token.
    """
    return summarize_mismatch(mismatch_per_rollout(old_logprobs, engine_logprobs, mask), mask.float().sum(dim=-1))


def log_importance_weights(old_logprobs: torch.Tensor, engine_logprobs: torch.Tensor, mask: torch.Tensor,
                           level: str = "token") -> torch.Tensor:
    """``log w`` per token, ``(batch, tokens)``: ``d_t`` (``token``) or ``sum_t d_t`` over the row's
    valid tokens, broadcast to the row (``sequence``); padding contributes nothing."""
    delta = torch.where(mask.bool(), old_logprobs.detach().float() - engine_logprobs.detach().float(), 0.0)
    if level == "token":
        return delta
    if level == "sequence":
        return delta.sum(dim=-1, keepdim=True).expand_as(delta)
    raise ValueError(f"unknown rollout-correction level {level!r}; choose one of {', '.join(CORRECTION_LEVELS)}")


def correction_weights(old_logprobs: torch.Tensor, engine_logprobs: torch.Tensor, mask: torch.Tensor,
                       mode: str = "none", level: str = "token", cap: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token loss weights and the tokens to keep, ``(weights, keep_mask)``, both ``(batch, tokens)``.

    * ``none``: weights 1, ``keep_mask = mask``.
    * ``tis``: weights ``min(w, cap)`` (in ``[0, cap]``), ``keep_mask = mask``.
    * ``mask``: weights 1; ``keep_mask`` is ``mask`` less the tokens (``token`` level) or the whole
      responses (``sequence`` level) whose ``w`` is outside ``[1/cap, cap]`` (bounds kept). The lower
      bound is ``1/cap``, symmetric in ``log w`` (the default of verl's ``rollout_rs_threshold_lower``):
      a factor ``cap`` between the two policies is as far off-policy in either direction, and without
      a lower bound the tokens the engine found far likelier than the trainer does would be kept at
      full weight. The test runs in log space (``|log w| <= log cap``): no product of ratios overflows.

    ``w`` is the token's or the sequence's importance weight (module docstring). Weights are 1 on
    padding and ``keep_mask`` is false there. Both are detached: the weights multiply the per-token
    policy-gradient loss as constants, and ``keep_mask`` replaces ``mask`` as the loss mask (whether
    the rejected tokens still count in the loss's normaliser is the caller's choice).
    """
    if mode not in ROLLOUT_CORRECTIONS:
        raise ValueError(f"unknown rollout correction {mode!r}; choose one of {', '.join(ROLLOUT_CORRECTIONS)}")
    if level not in CORRECTION_LEVELS:
        raise ValueError(f"unknown rollout-correction level {level!r}; choose one of {', '.join(CORRECTION_LEVELS)}")
    if not cap > 1.0:
        raise ValueError(f"the rollout-correction cap must be > 1 (the on-policy weight is 1), got {cap}")
    valid = mask.bool()
    ones = torch.ones(valid.shape, dtype=torch.float32, device=valid.device)
    if mode == "none":
        return ones, valid
    log_weights = log_importance_weights(old_logprobs, engine_logprobs, mask, level)
    if mode == "tis":
        # exp may overflow to inf for a far-off sequence; the clamp brings it back to cap exactly.
        return torch.where(valid, torch.exp(log_weights).clamp(max=cap), ones), valid
    return ones, valid & (log_weights.abs() <= math.log(cap))


def weight_per_rollout(weights: torch.Tensor, keep_mask: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-rollout sums, ``(batch,)``, of what :func:`correction_weights` did to the valid tokens:
    ``correction_weight_sum`` = sum of the effective multiplier of the token's policy gradient
    (the weight where kept, 0 where dropped), ``correction_kept_tokens`` = tokens kept."""
    valid = mask.bool()
    kept = (keep_mask.bool() & valid).float()
    return {"correction_weight_sum": (weights.float() * kept).sum(dim=-1), "correction_kept_tokens": kept.sum(dim=-1)}


def summarize_weights(per_rollout: dict[str, torch.Tensor], response_tokens: torch.Tensor) -> dict[str, float]:
    """``correction/weight_mean`` (mean multiplier over the valid tokens, 1.0 when nothing is
    corrected) and ``correction/kept_frac`` (share of valid tokens kept) from
    :func:`weight_per_rollout`'s pieces of every rollout."""
    tokens = float(response_tokens.sum())
    if tokens == 0:
        return {"correction/weight_mean": 1.0, "correction/kept_frac": 1.0}
    return {"correction/weight_mean": float(per_rollout["correction_weight_sum"].sum()) / tokens,
            "correction/kept_frac": float(per_rollout["correction_kept_tokens"].sum()) / tokens}
