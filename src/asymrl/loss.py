"""The policy loss: PPO clipped surrogate, clip-higher, dual-clip, entropy bonus, and aggregation;
the entropy controls that act through the loss (Clip-Cov, KL-Cov, GSPO, the 80/20 token selection).

The paper's update (Gu et al. 2026, arXiv 2604.04894; docs/method.md sec. 1): with
``rho_t = exp(logp_new - logp_old)`` the per-token loss is
``l_t = -min(rho_t A_t, clip(rho_t, 1 - eps_low, 1 + eps_high) A_t)``, token-mean aggregated; its
baselines add the entropy bonus (``loss -= coef * H``) and Dr.GRPO's constant normaliser (sec. 5).

The per-token surrogate is pluggable: a registry of *policy-loss variants* (``ppo`` = the clipped
surrogate above; ``clip_cov``, ``kl_cov``, ``gspo`` below), chosen by ``algorithm.policy_loss`` with
``algorithm.policy_loss_kwargs``. A variant
is ``fn(logprobs, old_logprobs, advantages, mask, *, eps_low, eps_high, dual_clip, **params) ->
(per-token loss, {name: per-token bool mask of where a bound is active})``; entropy bonus, KL penalty
and aggregation are applied to whatever it returns.

Aggregation across micro-batches and ranks: the trainer splits a mini-batch into micro-batches (and
ranks) and sums their gradients. To make that sum equal the gradient of the whole mini-batch, each
micro-batch divides by the *mini-batch-wide* count (``num_tokens`` / ``num_sequences``), which the
trainer computes once before the micro-batch loop. Left unset, the counts of the given batch are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal

import torch

from asymrl.registry import Registry

LossAggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
LOSS_AGGREGATIONS: tuple[str, ...] = LossAggregation.__args__


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "token-mean",
    *,
    num_tokens: float | torch.Tensor | None = None,
    num_sequences: float | torch.Tensor | None = None,
    constant: float | None = None,
) -> torch.Tensor:
    """Reduce a ``(batch, tokens)`` loss to a scalar over the valid tokens of ``mask``.

    * ``token-mean`` (DAPO, the paper's aggregation): sum over valid tokens / ``num_tokens``.
    * ``seq-mean-token-mean``: mean over each sequence's tokens, summed / ``num_sequences``.
    * ``seq-mean-token-sum-norm`` (Dr.GRPO): sum over valid tokens / (``constant`` x ``num_sequences``),
      where ``constant`` is the maximum response length.
    """
    mask = mask.to(per_token.dtype)
    if mode == "token-mean":
        denominator = mask.sum() if num_tokens is None else num_tokens
        return (per_token * mask).sum() / torch.clamp_min(torch.as_tensor(denominator), 1)
    sequences = mask.shape[0] if num_sequences is None else num_sequences
    sequences = torch.clamp_min(torch.as_tensor(sequences, dtype=per_token.dtype), 1)
    if mode == "seq-mean-token-mean":
        per_sequence = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)
        return per_sequence.sum() / sequences
    if mode == "seq-mean-token-sum-norm":
        if constant is None or constant <= 0:
            raise ValueError("seq-mean-token-sum-norm needs a positive constant (max response length)")
        return (per_token * mask).sum() / (constant * sequences)
    raise ValueError(f"unknown loss aggregation {mode!r}; choose one of {', '.join(LOSS_AGGREGATIONS)}")


def clipped_surrogate(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    dual_clip: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token PPO loss ``-min(rho A, clip(rho, 1-eps_low, 1+eps_high) A)`` (Schulman et al. 2017;
    docs/method.md sec. 1).

    ``dual_clip = c > 1`` (Ye et al. 2020) also bounds the loss of negative-advantage tokens by
    ``-c A``, so a token whose ratio exploded cannot dominate. Returns the per-token loss and
    per-token boolean masks of where each bound is active, named by the metric of their fraction.
    """
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    loss = torch.maximum(unclipped, clipped)
    active = {
        # The clip bound binds where the clipped term is the larger (the loss's gradient is cut).
        "clip_frac_low": (clipped > unclipped) & (advantages < 0),
        "clip_frac_high": (clipped > unclipped) & (advantages > 0),
    }
    if dual_clip is not None:
        if dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
        bound = -advantages * dual_clip
        active["dual_clip_frac"] = (loss > bound) & (advantages < 0)
        loss = torch.where(advantages < 0, torch.minimum(loss, bound), loss)
    return loss, active


PolicyLossVariant = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]
# name -> variant; every variant receives these arguments, anything else in its signature is a
# parameter set by algorithm.policy_loss_kwargs.
POLICY_LOSSES: Registry[PolicyLossVariant] = Registry(
    "policy loss", fixed=("logprobs", "old_logprobs", "advantages", "mask", "eps_low", "eps_high", "dual_clip"))
register_policy_loss = POLICY_LOSSES.register


@register_policy_loss("ppo")
def ppo_loss(logprobs, old_logprobs, advantages, mask, *, eps_low=0.2, eps_high=0.2, dual_clip=None):
    """The clipped surrogate of docs/method.md sec. 1 (with clip-higher and optional dual-clip)."""
    return clipped_surrogate(logprobs, old_logprobs, advantages, eps_low, eps_high, dual_clip)


def token_covariance(logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each valid token's term of the covariance between log-prob and advantage (Cui et al. 2025,
    arXiv 2505.22617, eq. 11): ``(logp_t - mean logp) (A_t - mean A)``, means over the valid tokens of
    the batch given; ``-inf`` on padding. Detached: it selects tokens, it is not differentiated."""
    valid = mask.bool()
    logprobs, advantages = logprobs.detach(), advantages.detach()
    count = valid.sum().clamp_min(1)
    centred_logp = logprobs - (logprobs * valid).sum() / count
    centred_adv = advantages - (advantages * valid).sum() / count
    return torch.where(valid, centred_logp * centred_adv, torch.full_like(logprobs, -math.inf))


@register_policy_loss("clip_cov")
def clip_cov_loss(logprobs, old_logprobs, advantages, mask, *, eps_low=0.2, eps_high=0.2, dual_clip=None,
                  clip_ratio: float = 2e-4, cov_low: float = 1.0, cov_high: float = 5.0):
    """Clip-Cov (Cui et al. 2025, sec. 4.2): the clipped surrogate, with the gradient of a random
    ``clip_ratio`` share of the valid tokens cut, drawn among those whose covariance term
    (:func:`token_covariance`) lies in ``(cov_low, cov_high)`` and not already clipped. Those tokens
    drive entropy down the most; detaching them slows the collapse. Defaults: the paper's (r = 2e-4,
    omega_low = 1, omega_high = 5). The draw uses torch's global generator (seeded by train.seed)."""
    loss, active = clipped_surrogate(logprobs, old_logprobs, advantages, eps_low, eps_high, dual_clip)
    covariance = token_covariance(logprobs, advantages, mask)
    clipped = active["clip_frac_low"] | active["clip_frac_high"]
    candidates = torch.nonzero((covariance > cov_low) & (covariance < cov_high) & ~clipped)
    budget = max(int(clip_ratio * int(mask.sum())), 1)
    chosen = candidates[torch.randperm(len(candidates))[:budget]]
    cut = torch.zeros_like(mask, dtype=torch.bool)
    cut[chosen[:, 0], chosen[:, 1]] = True
    # The loss's value is kept, its gradient cut: loss.detach() on the chosen tokens.
    return torch.where(cut, loss.detach(), loss), {**active, "cov_cut_frac": cut}


@register_policy_loss("kl_cov")
def kl_cov_loss(logprobs, old_logprobs, advantages, mask, *, eps_low=0.2, eps_high=0.2, dual_clip=None,
                kl_ratio: float = 2e-3, kl_coef: float = 1.0):
    """KL-Cov (Cui et al. 2025, sec. 4.2): the unclipped policy gradient ``-A rho`` on every token,
    plus ``kl_coef |logp - logp_old|`` on the top ``kl_ratio`` share of valid tokens by covariance
    (:func:`token_covariance`), which holds exactly those tokens near the old policy. As the paper,
    no ratio clipping (``eps_low`` / ``eps_high`` / ``dual_clip`` unused). Defaults: the paper's
    (k = 2e-3, its value for Qwen2.5-7B; beta = 1)."""
    ratio = torch.exp(logprobs - old_logprobs)
    loss = -advantages * ratio
    covariance = token_covariance(logprobs, advantages, mask)
    valid = int(mask.sum())
    top = torch.zeros_like(mask, dtype=torch.bool)
    if valid:
        chosen = torch.topk(covariance.flatten(), max(int(kl_ratio * valid), 1)).indices
        top.view(-1)[chosen] = True
    loss = torch.where(top, loss + kl_coef * (logprobs - old_logprobs).abs(), loss)
    return loss, {"cov_kl_frac": top}


@register_policy_loss("gspo")
def gspo_loss(logprobs, old_logprobs, advantages, mask, *, eps_low=0.2, eps_high=0.2, dual_clip=None,
              seq_eps_low: float = 3e-4, seq_eps_high: float = 4e-4):
    """GSPO (Zheng et al. 2025, arXiv 2507.18071, eq. 7 and its token form eq. 13): the ratio is the
    sequence's, ``s_i = exp(mean_t (logp_t - logp_old_t))`` over its valid tokens, used per token as
    ``s_i,t = sg[s_i] pi_t / sg[pi_t]`` (same value, each token's own gradient), clipped to
    ``[1 - seq_eps_low, 1 + seq_eps_high]``: ``-min(s A, clip(s) A)``. The bounds are GSPO's own
    (the paper's 3e-4 / 4e-4): a sequence-level ratio lives on another scale than a token's, so
    ``algorithm.eps_low`` / ``eps_high`` are not used. The paper aggregates with
    ``algorithm.loss_agg=seq-mean-token-mean``."""
    valid = mask.to(logprobs.dtype)
    log_ratio = (logprobs - old_logprobs) * valid
    sequence_log_ratio = log_ratio.sum(dim=1, keepdim=True) / valid.sum(dim=1, keepdim=True).clamp_min(1)
    token_log_ratio = sequence_log_ratio.detach() + logprobs - logprobs.detach()
    ratio = torch.exp(token_log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - seq_eps_low, 1.0 + seq_eps_high)
    loss = torch.maximum(unclipped, clipped)
    binds = clipped > unclipped
    return loss, {"clip_frac_low": binds & (advantages < 0), "clip_frac_high": binds & (advantages > 0)}


def high_entropy_token_mask(entropy: torch.Tensor, mask: torch.Tensor, quantile: float) -> torch.Tensor:
    """The 80/20 rule (Wang et al. 2025, arXiv 2506.01939): 1 on the valid tokens whose entropy is in
    the top ``quantile`` share of the valid tokens given (the "forking" tokens), 0 elsewhere. Ties at
    the threshold are kept."""
    valid = mask.bool()
    if not valid.any():
        return torch.zeros_like(entropy)
    threshold = torch.quantile(entropy[valid].float(), 1.0 - quantile)
    return ((entropy >= threshold) & valid).to(entropy.dtype)


def approx_kl(logprobs: torch.Tensor, old_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(old || new) from tokens sampled by the old policy (>= 0).

    With ``r = p_new / p_old = exp(-d)``, ``d = old - new``, Schulman's k3 is ``r - 1 - log r =
    exp(-d) - 1 + d``: unbiased under the old policy's samples. That is ``kl_penalty`` with the old
    policy in the sampling role and the new one as the reference.
    """
    return kl_penalty(old_logprobs, logprobs, "k3")


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from sampled tokens (Schulman's k1 / k2 / k3):
    ``k1 = d``, ``k2 = d^2 / 2``, ``k3 = exp(-d) - 1 + d`` with ``d = logp - ref_logp``."""
    delta = logprobs - ref_logprobs
    if kind == "k1":
        return delta
    if kind == "k2":
        return 0.5 * delta.square()
    if kind == "k3":
        return torch.expm1(-delta) + delta
    raise ValueError(f"unknown KL estimator {kind!r}; choose k1, k2 or k3")


@dataclass
class PolicyLossConfig:
    """The knobs of :func:`policy_loss` (every Table 1 variant is a setting of these)."""

    variant: str = "ppo"  # a registered policy-loss variant
    variant_params: dict = field(default_factory=dict)  # its parameters beyond the clip bounds
    eps_low: float = 0.2
    eps_high: float = 0.2
    dual_clip: float | None = None
    entropy_coef: float = 0.0
    aggregation: str = "token-mean"
    aggregation_constant: float | None = None
    kl_coef: float = 0.0  # KL penalty to a reference policy; the paper uses none
    kl_estimator: str = "k3"


def sign_split_metrics(ratio: torch.Tensor, advantages: torch.Tensor, valid: torch.Tensor,
                       active: dict[str, torch.Tensor]) -> dict[str, float]:
    """The update seen per channel: over the tokens of positive (``pos``) and of negative (``neg``)
    advantage, the mean ratio and the share where any bound of the variant binds (``clip_frac``).
    A channel with no token this batch is left out (NaN would bias the average over micro-batches)."""
    bound = torch.zeros_like(valid)
    for where in active.values():
        bound = bound | where
    out = {}
    for name, channel in (("pos", valid & (advantages > 0)), ("neg", valid & (advantages < 0))):
        count = int(channel.sum())
        if count:
            out[f"sign/ratio_mean_{name}"] = float((ratio.float() * channel).sum() / count)
            out[f"sign/clip_frac_{name}"] = float((bound & channel).sum() / count)
    return out


def sign_channel_losses(logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                        reduce: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    """The policy-gradient loss at ratio 1 split by the sign of each token's advantage (the positive
    and negative channels of docs/method.md sec. 2): ``pos = reduce(-A_t log pi(y_t) [A_t > 0])``,
    ``neg`` likewise over ``A_t < 0``.
    At ratio 1 no bound of the clipped surrogate binds, so the two gradients sum to the PPO loss's
    gradient, ``-sum_t A_t grad log pi(y_t) / N``; ``reduce(per_token, mask)`` is the run's aggregation."""
    advantages = advantages.expand_as(logprobs)
    # The other channel's advantages are zeroed, not masked out: the normaliser (token counts per
    # sequence and per batch) stays the whole loss's, so the two losses sum to it exactly.
    return {name: reduce(-advantages * channel * logprobs, mask)
            for name, channel in (("pos", advantages > 0), ("neg", advantages < 0))}


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: PolicyLossConfig | None = None,
    *,
    entropy: torch.Tensor | None = None,
    ref_logprobs: torch.Tensor | None = None,
    num_tokens: float | torch.Tensor | None = None,
    num_sequences: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of one (micro-)batch and its metrics.

    All tensors are ``(batch, tokens)``; ``advantages`` may also be ``(batch, 1)`` (one value per
    rollout, docs/method.md sec. 1). ``entropy`` (with gradient) is needed when ``entropy_coef != 0``,
    ``ref_logprobs`` (a frozen reference policy's) when ``kl_coef != 0``.
    Metrics are token means over this batch's valid tokens: the variant's active-bound fractions
    (``ppo``: ``clip_frac_low``, ``clip_frac_high``, ``dual_clip_frac``), ``approx_kl``, ``entropy``,
    and ``pg_loss``.
    """
    config = config or PolicyLossConfig()
    advantages = advantages.expand_as(logprobs)
    per_token, active = POLICY_LOSSES.get(config.variant)(
        logprobs, old_logprobs, advantages, mask, eps_low=config.eps_low, eps_high=config.eps_high,
        dual_clip=config.dual_clip, **config.variant_params,
    )

    def reduce(values: torch.Tensor) -> torch.Tensor:
        return aggregate(
            values,
            mask,
            config.aggregation,
            num_tokens=num_tokens,
            num_sequences=num_sequences,
            constant=config.aggregation_constant,
        )

    pg_loss = reduce(per_token)
    loss = pg_loss
    if config.entropy_coef != 0.0:
        if entropy is None:
            raise ValueError("entropy_coef != 0 needs the per-token entropy")
        loss = loss - config.entropy_coef * reduce(entropy)
    kl = None
    if config.kl_coef != 0.0:
        if ref_logprobs is None:
            raise ValueError("kl_coef != 0 needs the reference policy's log-probs")
        kl = kl_penalty(logprobs, ref_logprobs, config.kl_estimator)
        loss = loss + config.kl_coef * reduce(kl)

    with torch.no_grad():
        valid = mask.bool()
        count = valid.sum().clamp_min(1)

        def token_mean(values: torch.Tensor) -> float:
            return float((values.float() * valid).sum() / count)

        metrics = {
            "pg_loss": float(pg_loss.detach()),
            **{name: token_mean(where) for name, where in active.items()},
            "approx_kl": token_mean(approx_kl(logprobs, old_logprobs)),
            **sign_split_metrics(torch.exp(logprobs - old_logprobs), advantages, valid, active),
        }
        if entropy is not None:
            metrics["entropy"] = token_mean(entropy)
        if kl is not None:
            metrics["kl_ref"] = token_mean(kl)
    return loss, metrics
