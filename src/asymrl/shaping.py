"""Per-token advantage shaping: the ordered stages between the estimator and the PPO update.

The estimator gives each rollout one advantage (``asymrl.advantages``); the step copies it to every
response token and hands the named per-token tensors to the stages the config switches on, in the
order below. Each stage is a small pure function ``fn(tensors, config) -> Shaped`` of named tensors
(``advantage``, ``response_mask``, ``entropy``, ...; the module's ``TENSORS``):

============================  =======================================================  ===================================
stage                         what it does                                             switched on by
============================  =======================================================  ===================================
``overlong``                  DAPO's soft overlong punishment, a term added to the     ``algorithm.overlong_buffer``
                              rollout's advantage (correctness alone drives the
                              estimator; ``asymrl.overlong``)
``entropy_advantage``         ``A_t + min(alpha H_t, |A_t| / kappa)`` (Cheng et al.)   ``algorithm.entropy_adv_alpha``
``rollout_correction``        truncated importance weights or a mask for the engine-   ``algorithm.rollout_correction``
                              vs-trainer gap (``asymrl.rollout_correction``)
``top_entropy``               the 80/20 rule: only the step's highest-entropy tokens   ``algorithm.top_entropy_quantile``
                              keep their advantage (Wang et al. 2025)
``mask_truncated``            DAPO's overlong filtering: truncated responses leave     ``algorithm.mask_truncated``
                              the loss and its normaliser
============================  =======================================================  ===================================

Weighting the advantage weights the token's policy-gradient loss: the clipped surrogate (dual-clip
included) is positively homogeneous in the advantage, ``L(w A) = w L(A)`` for ``w >= 0``; the entropy
and KL terms are untouched. Stages that zero a token's advantage leave it in the loss's normaliser
(as verl's rollout_rs does); only ``mask_truncated`` changes the normaliser (``loss_mask``).

Adding a control is one stage plus its config key::

    @shaping.register("my_control", enabled=lambda config: config.algorithm.my_switch is not None)
    def my_control(tensors, config):
        return Shaped(advantage=tensors["advantage"] * ...)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

import torch

from asymrl.advantages import entropy_advantage
from asymrl.loss import high_entropy_token_mask
from asymrl.overlong import soft_overlong_penalty, untruncated_response_mask
from asymrl.registry import Registry
from asymrl.rollout_correction import correction_weights, weight_per_rollout

if TYPE_CHECKING:
    from asymrl.config import Config

# The named tensors a stage may read (rows = this rank's rollouts, seq = padded length):
TENSORS = {
    "advantage": "(rows, seq) the per-token advantage so far (0 outside the response)",
    "rollout_advantage": "(rows,) each rollout's advantage as the diagnostics see it (the estimator's, plus overlong)",
    "response_mask": "(rows, seq) 1.0 on response tokens",
    "loss_mask": "(rows, seq) the tokens of the loss and its normaliser (long, as the batch's)",
    "entropy": "(rows, seq) the sampling policy's token entropies (the old policy's pass)",
    "old_logprobs": "(rows, seq) the trainer's log-probs of the sampled tokens at the sampling policy",
    "engine_logprobs": "(rows, seq) the engine's log-probs of the same tokens (absent when it reports none)",
    "response_lengths": "(rows,) generated tokens per rollout, EOS included",
    "truncated": "(rows,) True where a response was cut at rollout.max_new_tokens",
}


@dataclass
class Shaped:
    """What a stage returns: the tensors it replaces (by name) and per-rollout diagnostics, ``(rows,)``
    each, which join the step's per-rollout mapping (``asymrl.metrics``)."""

    advantage: torch.Tensor | None = None
    rollout_advantage: torch.Tensor | None = None
    loss_mask: torch.Tensor | None = None
    diagnostics: dict[str, torch.Tensor] = field(default_factory=dict)


StageFn = Callable[[Mapping[str, torch.Tensor], "Config"], Shaped]


@dataclass(frozen=True)
class Stage:
    name: str
    fn: StageFn
    enabled: Callable[["Config"], bool]
    # It reads the sampling policy's log-probs or entropies, or changes which tokens the update's
    # forward computes them for: then they come from a separate pass before the update, not from the
    # update's first forward (train.old_logprobs_from_update).
    needs_old_pass: bool = False


# Applied in registration order (the table above); a config switches each on.
STAGES: Registry[Stage] = Registry("shaping stage")
available = STAGES.available


def register(name: str, enabled: Callable[["Config"], bool], needs_old_pass: bool = False) -> Callable[[StageFn], StageFn]:
    """Decorator adding a stage, applied after those registered before it when ``enabled(config)``."""

    def decorator(fn: StageFn) -> StageFn:
        STAGES.register(name)(Stage(name, fn, enabled, needs_old_pass))
        return fn

    return decorator


def stages_for(config: "Config") -> list[Stage]:
    """The stages a config switches on, in order."""
    return [stage for _, stage in STAGES.items() if stage.enabled(config)]


def apply(stages: list[Stage], tensors: dict[str, torch.Tensor], config: "Config") -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Run ``stages`` in order over ``tensors`` (``TENSORS``); returns the shaped tensors and the
    stages' per-rollout diagnostics."""
    tensors, diagnostics = dict(tensors), {}
    for stage in stages:
        shaped = stage.fn(tensors, config)
        for name in ("advantage", "rollout_advantage", "loss_mask"):
            if getattr(shaped, name) is not None:
                tensors[name] = getattr(shaped, name)
        diagnostics.update(shaped.diagnostics)
    return tensors, diagnostics


@register("overlong", enabled=lambda config: config.algorithm.overlong_buffer is not None)
def overlong(tensors: Mapping[str, torch.Tensor], config: "Config") -> Shaped:
    """``A_i <- A_i + overlong_penalty * R_length(|y_i|)`` (DAPO eq. 13 as a separate term,
    ``asymrl.overlong``), copied to the response tokens: first, so that later stages see it."""
    algorithm = config.algorithm
    penalty = soft_overlong_penalty(tensors["response_lengths"], config.rollout.max_new_tokens, algorithm.overlong_buffer)
    rollout_advantage = tensors["rollout_advantage"] + algorithm.overlong_penalty * penalty
    return Shaped(advantage=rollout_advantage.reshape(-1, 1) * tensors["response_mask"], rollout_advantage=rollout_advantage,
                  diagnostics={"overlong_penalty": penalty})


@register("entropy_advantage", enabled=lambda config: config.algorithm.entropy_adv_alpha is not None, needs_old_pass=True)
def entropy_advantage_stage(tensors: Mapping[str, torch.Tensor], config: "Config") -> Shaped:
    """Cheng et al. 2025 (arXiv 2506.14758): ``A_t + min(alpha H_t, |A_t| / kappa)`` on response tokens."""
    algorithm = config.algorithm
    shaped = entropy_advantage(tensors["advantage"], tensors["entropy"], algorithm.entropy_adv_alpha, algorithm.entropy_adv_kappa)
    return Shaped(advantage=shaped * tensors["response_mask"])


@register("rollout_correction", enabled=lambda config: config.algorithm.rollout_correction != "none", needs_old_pass=True)
def rollout_correction(tensors: Mapping[str, torch.Tensor], config: "Config") -> Shaped:
    """Each token's advantage times ``min(pi_old / pi_engine, cap)`` (tis) or dropped where the ratio
    leaves ``[1/cap, cap]`` (mask), per token or per response (``asymrl.rollout_correction``)."""
    from asymrl.config import ConfigError

    algorithm = config.algorithm
    if "engine_logprobs" not in tensors:
        raise ConfigError(f"algorithm.rollout_correction={algorithm.rollout_correction}: the rollout engine "
                          f"{config.rollout.backend!r} reports no log-probs of its samples")
    mask = tensors["response_mask"]
    weights, keep = correction_weights(tensors["old_logprobs"], tensors["engine_logprobs"], mask, algorithm.rollout_correction,
                                       algorithm.rollout_correction_level, algorithm.rollout_correction_cap)
    return Shaped(advantage=tensors["advantage"] * weights * keep, diagnostics=weight_per_rollout(weights, keep, mask))


@register("top_entropy", enabled=lambda config: config.algorithm.top_entropy_quantile is not None, needs_old_pass=True)
def top_entropy(tensors: Mapping[str, torch.Tensor], config: "Config") -> Shaped:
    """The 80/20 rule (Wang et al. 2025, arXiv 2506.01939): only this rank's highest-entropy share of
    response tokens, by the entropy the policy sampled them with, keeps its advantage."""
    keep = high_entropy_token_mask(tensors["entropy"], tensors["response_mask"], config.algorithm.top_entropy_quantile)
    return Shaped(advantage=tensors["advantage"] * keep)


# needs_old_pass: the update's forward computes log-probs only where the loss mask is 1, and the
# diagnostics read the truncated rows' too.
@register("mask_truncated", enabled=lambda config: config.algorithm.mask_truncated, needs_old_pass=True)
def mask_truncated(tensors: Mapping[str, torch.Tensor], config: "Config") -> Shaped:
    """DAPO's overlong filtering: truncated responses carry no loss and leave its normaliser."""
    return Shaped(loss_mask=untruncated_response_mask(tensors["loss_mask"], tensors["truncated"]))
