"""Advantage estimators: small pure functions over a reward tensor, in a registry.

Every estimator maps rewards of shape ``(num_prompts, G)`` (one row per prompt, one column per
rollout of its group) to advantages of the same shape. Equations are those of ``PAPER.md``:

* section 2 -- the power family ``A+_a(p) = ((1-p)/p)^a``, ``A-_a(p) = -(p/(1-p))^a`` with group
  accuracy ``p = k/G``; ``a = 1/2`` is GRPO, ``a = 0`` is REINFORCE, AsymGRPO decouples the channels;
* section 3 -- the flipped curves (EntDecrease / EntIncrease) with their boundary extension;
* section 4 -- Dr.GRPO, Pass@K training, and the per-token entropy advantage.

For binary rewards, every estimator here is a pair of lookup tables indexed by the number of correct
rollouts ``k`` in the group: ``pos[k]`` for the correct rollouts, ``neg[k]`` for the wrong ones. The
tables are built in float64 from integer counts, so nothing is ever divided by zero; a uniform group
(``k = 0`` or ``k = G``) takes the value its formula gives at that end (PAPER.md section 2).

Use::

    from asymrl import advantages
    adv = advantages.compute("asymgrpo", rewards, alpha_pos=0.9, alpha_neg=0.4)

    @advantages.register("my_estimator")
    def my_estimator(rewards: torch.Tensor, scale: float = 1.0) -> torch.Tensor: ...

A config chooses one by ``algorithm.estimator`` and sets its keyword parameters by
``algorithm.estimator_kwargs`` (``algorithm.estimator_kwargs.scale=0.25``), checked against the
signature and converted by each parameter's annotation when the config is built: register an
estimator before building a config (``parse_args`` / ``build_config``) that names it.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from asymrl.registry import Registry

Estimator = Callable[..., torch.Tensor]

# name -> fn(rewards, **params); its parameters are what follows ``rewards`` in its signature.
ESTIMATORS: Registry[Estimator] = Registry("advantage estimator", leading=1)
register = ESTIMATORS.register
available = ESTIMATORS.available
get = ESTIMATORS.get
parameters = ESTIMATORS.parameters
parameter_types = ESTIMATORS.parameter_types


def compute(name: str, rewards: torch.Tensor, **params) -> torch.Tensor:
    """Advantages of shape ``(num_prompts, G)`` from rewards of that shape, by estimator ``name``."""
    estimator = get(name)
    unknown = set(params) - set(parameters(name))
    if unknown:
        raise TypeError(
            f"estimator {name!r} takes no parameter(s) {sorted(unknown)}; "
            f"it takes {sorted(parameters(name)) or 'none'}"
        )
    if rewards.dim() != 2:
        raise ValueError(
            f"rewards must have shape (num_prompts, G), got a tensor of shape {tuple(rewards.shape)}"
        )
    if rewards.shape[1] < 2:
        raise ValueError(f"group size G must be at least 2, got {rewards.shape[1]}")
    return estimator(rewards, **params)


# --------------------------------------------------------------------------------------------------
# Binary-reward building blocks
# --------------------------------------------------------------------------------------------------


def informative_groups(rewards: torch.Tensor) -> torch.Tensor:
    """Per group of ``rewards`` ``(prompts, G)``: do its rewards vary? The groups DAPO's dynamic
    sampling keeps (a uniform group has zero advantage under GRPO-like estimators; note that the
    flipped EntDecrease / EntIncrease curves do give uniform groups an advantage)."""
    return rewards.amax(dim=1) > rewards.amin(dim=1)


def check_binary(rewards: torch.Tensor, estimator: str) -> None:
    """Raise ``ValueError`` unless every reward is exactly 0 or 1."""
    if not torch.all((rewards == 0) | (rewards == 1)):
        bad = rewards[(rewards != 0) & (rewards != 1)].flatten()[:5].tolist()
        raise ValueError(
            f"estimator {estimator!r} is defined for binary rewards in {{0, 1}}; got values such as "
            f"{bad}. Use 'grpo' or 'dr_grpo' for real-valued rewards."
        )


def from_channel_tables(
    rewards: torch.Tensor, pos_table: torch.Tensor, neg_table: torch.Tensor
) -> torch.Tensor:
    """Look up each rollout's advantage by its group's correct count ``k`` and its own reward.

    ``pos_table[k]`` is the advantage of a correct rollout in a group with ``k`` correct rollouts,
    ``neg_table[k]`` that of a wrong one (both of length ``G + 1``).
    """
    k = rewards.sum(dim=1).round().long()
    pos = pos_table.to(rewards.device)[k].unsqueeze(1)
    neg = neg_table.to(rewards.device)[k].unsqueeze(1)
    return torch.where(rewards > 0.5, pos, neg).to(rewards.dtype)


def power_pos_table(group_size: int, alpha: float) -> torch.Tensor:
    """``A+_a(k/G) = ((G-k)/k)^a`` for k = 0..G (PAPER.md sec. 2); k = 0 has no correct rollout (0).

    At k = G the ratio is 0, so the value is 0 for a > 0 and 1 for a = 0 (REINFORCE's +1).
    """
    k = torch.arange(group_size + 1, dtype=torch.float64)
    ratio = (group_size - k) / k.clamp(min=1)
    return torch.where(k > 0, ratio.pow(alpha), torch.zeros_like(ratio))


def power_neg_table(group_size: int, alpha: float) -> torch.Tensor:
    """``A-_a(k/G) = -(k/(G-k))^a`` for k = 0..G (PAPER.md sec. 2); k = G has no wrong rollout (0).

    At k = 0 the ratio is 0, so the value is 0 for a > 0 and -1 for a = 0 (REINFORCE's -1).
    """
    k = torch.arange(group_size + 1, dtype=torch.float64)
    ratio = k / (group_size - k).clamp(min=1)
    return torch.where(k < group_size, -ratio.pow(alpha), torch.zeros_like(ratio))


def extend_linearly(values: torch.Tensor, at: int, first: int, second: int) -> torch.Tensor:
    """Set ``values[at] = 2 * values[first] - values[second]`` (PAPER.md sec. 3 boundary rule)."""
    values = values.clone()
    values[at] = 2 * values[first] - values[second]
    return values


def group_accuracy(rewards: torch.Tensor) -> torch.Tensor:
    """Fraction ``p = k/G`` of correct rollouts in each group, shape ``(num_prompts,)``."""
    return (rewards > 0.5).float().mean(dim=1)


# --------------------------------------------------------------------------------------------------
# The estimators of Table 1
# --------------------------------------------------------------------------------------------------


@register("asymgrpo")
def asymgrpo(rewards: torch.Tensor, alpha_pos: float = 0.9, alpha_neg: float = 0.4) -> torch.Tensor:
    """AsymGRPO (PAPER.md sec. 2): correct rollouts get ``((1-p)/p)^alpha_pos``, wrong ones
    ``-(p/(1-p))^alpha_neg``. ``(1/2, 1/2)`` is GRPO, ``(0, 0)`` is REINFORCE."""
    check_binary(rewards, "asymgrpo")
    if alpha_pos < 0 or alpha_neg < 0:
        raise ValueError(f"alpha_pos and alpha_neg must be >= 0, got {alpha_pos}, {alpha_neg}")
    group_size = rewards.shape[1]
    return from_channel_tables(
        rewards, power_pos_table(group_size, alpha_pos), power_neg_table(group_size, alpha_neg)
    )


@register("reinforce")
def reinforce(rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE with rewards mapped to +1 (correct) / -1 (wrong): the ``a = 0`` member."""
    check_binary(rewards, "reinforce")
    return rewards * 2 - 1


@register("pos_only")
def pos_only(rewards: torch.Tensor, alpha_pos: float = 0.5) -> torch.Tensor:
    """Pos-Only modulation (Table 1): GRPO's curve on correct rollouts, -1 on wrong ones."""
    return asymgrpo(rewards, alpha_pos=alpha_pos, alpha_neg=0.0)


@register("neg_only")
def neg_only(rewards: torch.Tensor, alpha_neg: float = 0.5) -> torch.Tensor:
    """Neg-Only modulation (Table 1): +1 on correct rollouts, GRPO's curve on wrong ones."""
    return asymgrpo(rewards, alpha_pos=0.0, alpha_neg=alpha_neg)


@register("grpo")
def grpo(rewards: torch.Tensor, std: str = "population", eps: float = 0.0) -> torch.Tensor:
    """GRPO: rewards standardised within each group, ``(r - mean) / (std + eps)``.

    ``std="population", eps=0`` is the analytic ``a = 1/2`` curve of PAPER.md sec. 2;
    ``std="sample", eps=1e-6`` reproduces verl (Bessel std: ``sqrt((G-1)/G)`` times that curve).
    A group whose rewards are all equal gets advantage 0. Real-valued rewards are allowed.
    """
    if std not in ("population", "sample"):
        raise ValueError(f"grpo std must be 'population' or 'sample', got {std!r}")
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    spread = rewards.std(dim=1, keepdim=True, correction=1 if std == "sample" else 0)
    # A uniform group has spread 0 and centred 0: define its advantage as 0, not 0/0.
    return torch.where(spread > 0, centred / (spread + eps), torch.zeros_like(centred))


@register("dr_grpo")
def dr_grpo(rewards: torch.Tensor) -> torch.Tensor:
    """Dr.GRPO (Liu et al. 2025): mean-centred rewards, no division by the std."""
    return rewards - rewards.mean(dim=1, keepdim=True)


def _flip_group_size(rewards: torch.Tensor, name: str) -> int:
    check_binary(rewards, name)
    group_size = rewards.shape[1]
    if group_size < 3:
        raise ValueError(f"{name} needs G >= 3 for its boundary extension, got G = {group_size}")
    return group_size


@register("ent_decrease")
def ent_decrease(rewards: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """EntDecrease (PAPER.md sec. 3): the positive channel reflected around p = 1/2,
    ``A+(p) = (p/(1-p))^alpha`` on ``[1/G, (G-1)/G]``, extended linearly to p = 1 from the last two
    grid points (``2 sqrt(7) - sqrt(3)`` at G = 8). The negative channel is GRPO's."""
    group_size = _flip_group_size(rewards, "ent_decrease")
    # A_flip(k) = A(G - k): the unflipped positive table read backwards.
    flipped = power_pos_table(group_size, alpha).flip(0)
    flipped[0] = 0.0  # k = 0: no correct rollout to score
    pos = extend_linearly(flipped, at=group_size, first=group_size - 1, second=group_size - 2)
    return from_channel_tables(rewards, pos, power_neg_table(group_size, alpha))


@register("ent_increase")
def ent_increase(rewards: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """EntIncrease (PAPER.md sec. 3): the negative channel reflected around p = 1/2,
    ``A-(p) = -((1-p)/p)^alpha`` on ``[1/G, (G-1)/G]``, extended linearly to p = 0 from the first two
    grid points (``-(2 sqrt(7) - sqrt(3))`` at G = 8). The positive channel is GRPO's."""
    group_size = _flip_group_size(rewards, "ent_increase")
    flipped = power_neg_table(group_size, alpha).flip(0)
    flipped[group_size] = 0.0  # k = G: no wrong rollout to score
    neg = extend_linearly(flipped, at=0, first=1, second=2)
    return from_channel_tables(rewards, power_pos_table(group_size, alpha), neg)


def passk_tables(group_size: int, k: int, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass@K training advantages (Chen et al. 2025, PAPER.md sec. 4) for c = 0..G correct.

    ``R = 1 - C(N_neg, k) / C(n, k)``, ``s = sqrt(R (1 - R))``,
    ``A_pos = (1 - R) / (s + eps)``, ``A_neg = (1 - R - C(N_neg - 1, k - 1) / C(n - 1, k - 1)) / (s + eps)``.
    """
    n = group_size
    pos, neg = [], []
    for correct in range(n + 1):
        wrong = n - correct
        group_reward = 1.0 - math.comb(wrong, k) / math.comb(n, k)
        spread = math.sqrt(group_reward * (1.0 - group_reward))
        pos.append((1.0 - group_reward) / (spread + eps) if correct > 0 else 0.0)
        if wrong > 0:
            all_wrong_given_wrong = math.comb(wrong - 1, k - 1) / math.comb(n - 1, k - 1)
            neg.append((1.0 - group_reward - all_wrong_given_wrong) / (spread + eps))
        else:
            neg.append(0.0)
    return torch.tensor(pos, dtype=torch.float64), torch.tensor(neg, dtype=torch.float64)


@register("passk")
def passk(rewards: torch.Tensor, k: int = 4, eps: float = 1e-6) -> torch.Tensor:
    """Pass@K training (Chen et al. 2025): the analytic advantage of the group's pass@k reward."""
    check_binary(rewards, "passk")
    group_size = rewards.shape[1]
    if not 1 <= k <= group_size:
        raise ValueError(f"passk needs 1 <= k <= G, got k = {k} with G = {group_size}")
    return from_channel_tables(rewards, *passk_tables(group_size, k, eps))


# --------------------------------------------------------------------------------------------------
# Per-token shaping
# --------------------------------------------------------------------------------------------------


def entropy_advantage(
    advantages: torch.Tensor, entropy: torch.Tensor, alpha: float = 0.4, kappa: float = 2.0
) -> torch.Tensor:
    """Entropy advantage (Cheng et al. 2025, PAPER.md sec. 4), per token:
    ``A_t + min(alpha * H_t, |A_t| / kappa)`` with the entropy detached (a bonus, not a gradient path).

    ``advantages`` and ``entropy`` broadcast to the per-token shape ``(batch, tokens)``.
    """
    if kappa <= 0:
        raise ValueError(f"kappa must be > 0, got {kappa}")
    bonus = torch.minimum(alpha * entropy.detach(), advantages.abs() / kappa)
    return advantages + bonus


def channel_curves(name: str, group_size: int, **params) -> tuple[list[float | None], list[float | None]]:
    """``(A+, A-)`` of estimator ``name`` at every grid point ``p = k/G``, k = 0..G (for plots).

    ``A+[k]`` is the advantage of a correct rollout in a group with ``k`` correct ones (None at
    k = 0, where there is none), ``A-[k]`` that of a wrong one (None at k = G).
    """
    rewards = (torch.arange(group_size)[None, :] < torch.arange(group_size + 1)[:, None]).double()
    adv = compute(name, rewards, **params)
    pos = [float(adv[k, 0]) if k > 0 else None for k in range(group_size + 1)]
    neg = [float(adv[k, -1]) if k < group_size else None for k in range(group_size + 1)]
    return pos, neg
