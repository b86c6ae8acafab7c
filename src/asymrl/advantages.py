"""Advantage estimators: small pure functions over a reward tensor, in a registry.

Every estimator maps rewards of shape ``(num_prompts, G)`` (one row per prompt, one column per
rollout of its group) to advantages of the same shape. The method this project implements is that of
Gu, Han, Bian and Zhou, "Asymmetric Advantage Modulation Calibrates Entropy Dynamics in RLVR"
(2026, arXiv 2604.04894; v1 titled "Rethinking Exploration in RLVR: From Entropy Regularization to
Refinement via Bidirectional Entropy Modulation"):

* the power family: with group accuracy ``p = k/G`` (``k`` correct rollouts of ``G``), a correct
  rollout gets ``A+_a(p) = ((1-p)/p)^a`` and a wrong one ``A-_a(p) = -(p/(1-p))^a``; ``a = 1/2`` is
  GRPO (population std, no epsilon), ``a = 0`` is REINFORCE with rewards mapped to +1 / -1, and
  AsymGRPO gives each channel its own exponent (``a+ = 0.9``, ``a- = 0.4``);
* the flipped curves of its adversarial controls (EntDecrease / EntIncrease), extended linearly at
  the end where the reflected curve is singular;
* the baselines of its Table 1: Dr.GRPO, Pass@K training and the per-token entropy advantage.

For binary rewards, each of those is a pair of lookup tables indexed by the number of correct
rollouts ``k`` in the group: ``pos[k]`` for the correct rollouts, ``neg[k]`` for the wrong ones. The
tables are built in float64 from integer counts, so nothing is ever divided by zero; a uniform group
(``k = 0`` or ``k = G``) takes the value its formula gives at that end (0 for ``a > 0``, +1 / -1 for
``a = 0``).

Other published estimators (each docstring cites its paper and the equation it implements):
``rloo``, ``reinforce_pp_baseline``, ``psr`` / ``nsr`` / ``w_reinforce``, ``qae``, ``a_grae``,
``asymre``, ``opo`` and ``gpg``.

PSR / NSR are not Pos-Only / Neg-Only. Gu et al.'s Pos-Only modulates the positive channel with
GRPO's curve ``sqrt((1-p)/p)`` and keeps REINFORCE's -1 on every wrong rollout (Neg-Only the mirror
image): both channels still train. Zhu et al.'s PSR trains on correct rollouts only (+1) and NSR on
wrong ones only (-1): the other channel is dropped entirely (advantage 0), and neither depends on the
group's accuracy. W-REINFORCE keeps both channels at +lambda / -1.

Context parameters. Some estimators need more than their own rows of rewards: the whole step's batch
(a batch-wide normalisation or a batch-wide accuracy), the RL step, or response lengths. They take
them as keyword-only parameters named in ``CONTEXT_PARAMETERS``, which the trainer supplies and a
config cannot set (the registry leaves them out of ``parameters``); ``context_parameters(name)`` says
which an estimator takes and ``context_for(name, ...)`` picks them out of what the trainer has:

* ``batch_rewards``: ``(all_prompts, G)``, the rewards of the whole step over every rank (gathered by
  the trainer; ``rewards`` stays this rank's rows). For one process, ``batch_rewards = rewards``.
  Computing each rank's rows with the full ``batch_rewards`` concatenates to the one-process result.
* ``step``: the 0-based RL step; ``total_steps``: the number of RL steps of the run.
* ``response_lengths``: ``(num_prompts, G)``, the response token counts of this rank's rows.

Every estimator here is stateless: none carries anything from one step to the next.

Use::

    from asymrl import advantages
    adv = advantages.compute("asymgrpo", rewards, alpha_pos=0.9, alpha_neg=0.4)
    adv = advantages.compute("reinforce_pp_baseline", rewards, batch_rewards=all_ranks_rewards)

    @advantages.register("my_estimator")
    def my_estimator(rewards: torch.Tensor, scale: float = 1.0) -> torch.Tensor: ...

A config chooses one by ``algorithm.estimator`` and sets its keyword parameters by
``algorithm.estimator_kwargs`` (``algorithm.estimator_kwargs.scale=0.25``), checked against the
signature and converted by each parameter's annotation when the config is built: register an
estimator before building a config (``parse_args`` / ``build_config``) that names it.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable, Literal

import torch

from asymrl.registry import Registry

Estimator = Callable[..., torch.Tensor]

# Keyword-only parameters the trainer supplies (never config knobs): see the module docstring.
CONTEXT_PARAMETERS = ("batch_rewards", "step", "total_steps", "response_lengths")

# name -> fn(rewards, **params); its parameters are what follows ``rewards`` in its signature, less
# the context parameters.
ESTIMATORS: Registry[Estimator] = Registry("advantage estimator", leading=1, fixed=CONTEXT_PARAMETERS)
register = ESTIMATORS.register
available = ESTIMATORS.available
get = ESTIMATORS.get
parameters = ESTIMATORS.parameters
parameter_types = ESTIMATORS.parameter_types


def context_parameters(name: str) -> set[str]:
    """The context parameters (of ``CONTEXT_PARAMETERS``) that estimator ``name`` takes."""
    return {p for p in inspect.signature(get(name)).parameters if p in CONTEXT_PARAMETERS}


def context_for(name: str, **available_context) -> dict:
    """The context values estimator ``name`` takes, picked from ``available_context`` (the trainer
    passes all it has: ``batch_rewards=..., step=..., total_steps=..., response_lengths=...``);
    raises ``TypeError`` naming any it takes that is missing or None."""
    unknown = set(available_context) - set(CONTEXT_PARAMETERS)
    if unknown:
        raise TypeError(f"{sorted(unknown)} are not context parameters; they are {list(CONTEXT_PARAMETERS)}")
    signature = inspect.signature(get(name)).parameters
    wanted = context_parameters(name)
    missing = sorted(p for p in wanted if available_context.get(p) is None and signature[p].default is inspect.Parameter.empty)
    if missing:
        raise TypeError(f"estimator {name!r} needs context {missing} from the trainer")
    return {p: available_context[p] for p in wanted if available_context.get(p) is not None}


def compute(name: str, rewards: torch.Tensor, **params) -> torch.Tensor:
    """Advantages of shape ``(num_prompts, G)`` from rewards of that shape, by estimator ``name``.

    ``params`` are the estimator's keyword parameters and, for an estimator that takes them, its
    context values (``batch_rewards``, ``step``, ``total_steps``, ``response_lengths``).
    """
    estimator = get(name)
    context = context_parameters(name)
    unknown = set(params) - set(parameters(name)) - context
    if unknown:
        raise TypeError(
            f"estimator {name!r} takes no parameter(s) {sorted(unknown)}; "
            f"it takes {sorted(parameters(name)) or 'none'}"
            + (f" and the context {sorted(context)}" if context else "")
        )
    missing = sorted(p for p in context if p not in params and
                     inspect.signature(estimator).parameters[p].default is inspect.Parameter.empty)
    if missing:
        raise TypeError(f"estimator {name!r} needs context {missing}, which the trainer supplies (see "
                        f"advantages.CONTEXT_PARAMETERS; for one process, batch_rewards = rewards)")
    if rewards.dim() != 2:
        raise ValueError(
            f"rewards must have shape (num_prompts, G), got a tensor of shape {tuple(rewards.shape)}"
        )
    if rewards.shape[1] < 2:
        raise ValueError(f"group size G must be at least 2, got {rewards.shape[1]}")
    batch = params.get("batch_rewards")
    if batch is not None and (batch.dim() != 2 or batch.shape[1] != rewards.shape[1] or batch.shape[0] < 1):
        raise ValueError(f"batch_rewards must have shape (all_prompts, G = {rewards.shape[1]}), got "
                         f"{tuple(batch.shape)}")
    lengths = params.get("response_lengths")
    if lengths is not None and tuple(lengths.shape) != tuple(rewards.shape):
        raise ValueError(f"response_lengths must have the shape of rewards {tuple(rewards.shape)}, got "
                         f"{tuple(lengths.shape)}")
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
    """``A+_a(k/G) = ((G-k)/k)^a`` for k = 0..G, the positive channel of Gu et al.'s (2026) power
    family; k = 0 has no correct rollout (0).

    At k = G the ratio is 0, so the value is 0 for a > 0 and 1 for a = 0 (REINFORCE's +1).
    """
    k = torch.arange(group_size + 1, dtype=torch.float64)
    ratio = (group_size - k) / k.clamp(min=1)
    return torch.where(k > 0, ratio.pow(alpha), torch.zeros_like(ratio))


def power_neg_table(group_size: int, alpha: float) -> torch.Tensor:
    """``A-_a(k/G) = -(k/(G-k))^a`` for k = 0..G, the negative channel of Gu et al.'s (2026) power
    family; k = G has no wrong rollout (0).

    At k = 0 the ratio is 0, so the value is 0 for a > 0 and -1 for a = 0 (REINFORCE's -1).
    """
    k = torch.arange(group_size + 1, dtype=torch.float64)
    ratio = k / (group_size - k).clamp(min=1)
    return torch.where(k < group_size, -ratio.pow(alpha), torch.zeros_like(ratio))


def extend_linearly(values: torch.Tensor, at: int, first: int, second: int) -> torch.Tensor:
    """Set ``values[at] = 2 * values[first] - values[second]``: the flipped curves' linear extension
    to the grid end where the reflected curve is singular (Gu et al. 2026)."""
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
    """AsymGRPO (Gu et al. 2026, arXiv 2604.04894): correct rollouts get ``((1-p)/p)^alpha_pos``, wrong ones
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

    ``std="population", eps=0`` is the analytic ``a = 1/2`` curve of Gu et al.'s power family
    (``A+ = sqrt((1-p)/p)``, ``A- = -sqrt(p/(1-p))``);
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
    """EntDecrease (Gu et al. 2026, an adversarial control): the positive channel reflected around p = 1/2,
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
    """EntIncrease (Gu et al. 2026, an adversarial control): the negative channel reflected around p = 1/2,
    ``A-(p) = -((1-p)/p)^alpha`` on ``[1/G, (G-1)/G]``, extended linearly to p = 0 from the first two
    grid points (``-(2 sqrt(7) - sqrt(3))`` at G = 8). The positive channel is GRPO's."""
    group_size = _flip_group_size(rewards, "ent_increase")
    flipped = power_neg_table(group_size, alpha).flip(0)
    flipped[group_size] = 0.0  # k = G: no wrong rollout to score
    neg = extend_linearly(flipped, at=0, first=1, second=2)
    return from_channel_tables(rewards, power_pos_table(group_size, alpha), neg)


def passk_tables(group_size: int, k: int, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass@K training advantages (Chen et al. 2025, arXiv 2508.10751; a baseline of Gu et al.'s
    Table 1) for c = 0..G correct, n = G, N_neg = n - c.

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
# Other published estimators
# --------------------------------------------------------------------------------------------------

Spread = Literal["population", "sample", "none"]


def _group_scaled(centred: torch.Tensor, rewards: torch.Tensor, std: str, eps: float, name: str) -> torch.Tensor:
    """``centred / (std of each group's rewards + eps)`` (``std="none"``: ``centred`` as it is); a
    group whose rewards are all equal gets 0 (its centred values are 0 for every estimator here)."""
    if std == "none":
        return centred
    if std not in ("population", "sample"):
        raise ValueError(f"{name} std must be 'population', 'sample' or 'none', got {std!r}")
    spread = rewards.std(dim=1, keepdim=True, correction=1 if std == "sample" else 0)
    return torch.where(spread > 0, centred / (spread + eps), torch.zeros_like(centred))


@register("rloo")
def rloo(rewards: torch.Tensor) -> torch.Tensor:
    """RLOO (Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for
    Learning from Human Feedback in LLMs", arXiv 2402.14740, their REINFORCE Leave-One-Out estimator
    with k = G samples): each rollout's baseline is the mean reward of the other ``G - 1`` rollouts
    of its group, ``A_i = r_i - 1/(G-1) sum_{j != i} r_j = G/(G-1) (r_i - mean(r))``.

    Binary rewards with ``k`` correct: ``(G-k)/(G-1)`` for a correct rollout, ``-k/(G-1)`` for a wrong
    one. Real-valued rewards are allowed.
    """
    group_size = rewards.shape[1]
    return (rewards - rewards.mean(dim=1, keepdim=True)) * (group_size / (group_size - 1))


@register("reinforce_pp_baseline")
def reinforce_pp_baseline(rewards: torch.Tensor, std: Literal["population", "sample"] = "population",
                          eps: float = 1e-8, *, batch_rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE++-baseline (Hu et al. 2025, "REINFORCE++: Stabilizing Critic-Free Policy Optimization
    with Global Advantage Normalization", arXiv 2501.03262, "REINFORCE++ w/ Baseline"): subtract the
    group mean, then normalise by the mean and std of those centred rewards over the WHOLE batch,

        A'_i = r_i - mean(group of i),    A_i = (A'_i - mean_batch(A')) / std_batch(A').

    The batch statistics come from ``batch_rewards`` (every group of the step, over every rank), so
    groups are coupled; each group's ``A'`` sums to zero, so the batch mean is 0 up to rounding.
    ``std="population"`` with the variance floored at ``eps`` (``1 / sqrt(max(var, eps))``) is the
    authors' OpenRLHF implementation; verl uses the Bessel (``"sample"``) variance plus 1e-8. Both
    of those weight each rollout by its token count in the batch statistics (they whiten per token);
    here each rollout counts once, as in the paper's formula over the batch. Real-valued rewards are
    allowed.
    """
    if std not in ("population", "sample"):
        raise ValueError(f"reinforce_pp_baseline std must be 'population' or 'sample', got {std!r}")
    batch_centred = batch_rewards - batch_rewards.mean(dim=1, keepdim=True)
    if std == "sample" and batch_centred.numel() < 2:
        raise ValueError("reinforce_pp_baseline with std='sample' needs at least 2 rollouts in the batch")
    batch_mean = batch_centred.mean()
    variance = batch_centred.var(correction=1 if std == "sample" else 0)
    scale = variance.clamp(min=eps).rsqrt() if eps > 0 else torch.where(variance > 0, variance.rsqrt(), 1.0)
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    return ((centred - batch_mean) * scale).to(rewards.dtype)


@register("psr")
def psr(rewards: torch.Tensor) -> torch.Tensor:
    """PSR, positive sample reinforcement (Zhu et al. 2025, "The Surprising Effectiveness of Negative
    Reinforcement in LLM Reasoning", arXiv 2506.01347): REINFORCE on correct rollouts only, +1 for a
    correct rollout and 0 for a wrong one (the wrong channel is dropped, whatever the group's accuracy).

    The authors' code removes the wrong rollouts from the batch before the update; here they stay with
    advantage 0, so under a token-mean loss the same gradient direction is scaled by the correct
    rollouts' share of the tokens. Not Pos-Only (see the module docstring).
    """
    check_binary(rewards, "psr")
    return (rewards > 0.5).to(rewards.dtype)


@register("nsr")
def nsr(rewards: torch.Tensor) -> torch.Tensor:
    """NSR, negative sample reinforcement (Zhu et al. 2025, arXiv 2506.01347): REINFORCE on wrong
    rollouts only, -1 for a wrong rollout and 0 for a correct one (the authors' code: reward - 1 on
    the wrong rollouts, whose 0/1 reward is 0; it removes the correct rollouts from the batch, which
    here stay with advantage 0: same direction, scaled by the wrong rollouts' token share under a
    token-mean loss). Not Neg-Only (see the module docstring)."""
    check_binary(rewards, "nsr")
    return (rewards > 0.5).to(rewards.dtype) - 1


@register("w_reinforce")
def w_reinforce(rewards: torch.Tensor, lam: float = 0.1) -> torch.Tensor:
    """Weighted-REINFORCE (Zhu et al. 2025, arXiv 2506.01347): the REINFORCE objective with the
    positive term down-weighted, ``lam * L_PSR + L_NSR``: ``+lam`` for a correct rollout and -1 for a
    wrong one, every group alike. ``lam = 0.1`` is the authors' recommended value (their code's
    ``positive_advantage_weight``); ``lam = 1`` is ``reinforce``."""
    check_binary(rewards, "w_reinforce")
    if lam < 0:
        raise ValueError(f"w_reinforce lam must be >= 0, got {lam}")
    return torch.where(rewards > 0.5, torch.full_like(rewards, lam), torch.full_like(rewards, -1.0))


def empirical_quantile(rewards: torch.Tensor, level: float,
                       method: Literal["inverted_cdf", "linear"] = "inverted_cdf") -> torch.Tensor:
    """Each group's ``level``-quantile of its rewards, shape ``(num_prompts, 1)``.

    ``"inverted_cdf"``: ``inf {x : F(x) >= level}`` with ``F`` the group's empirical CDF, the sorted
    rewards' element ``ceil(level G) - 1``; ``"linear"``: ``torch.quantile``'s interpolation between
    the sorted rewards at position ``level (G - 1)``.
    """
    if not 0 < level < 1:
        raise ValueError(f"quantile level must lie in (0, 1), got {level}")
    if method == "linear":
        return torch.quantile(rewards, level, dim=1, keepdim=True, interpolation="linear")
    if method != "inverted_cdf":
        raise ValueError(f"quantile method must be 'inverted_cdf' or 'linear', got {method!r}")
    group_size = rewards.shape[1]
    index = max(math.ceil(round(level * group_size, 9)) - 1, 0)  # round: 0.3 * 10 is 3.0000000000000004
    return rewards.sort(dim=1).values[:, index:index + 1]


@register("qae")
def qae(rewards: torch.Tensor, quantile_k: float = 0.4, std: Spread = "sample", eps: float = 1e-6,
        method: Literal["inverted_cdf", "linear"] = "inverted_cdf") -> torch.Tensor:
    """Quantile Advantage Estimation (Wu et al. 2025, "Quantile Advantage Estimation: Stabilizing RLVR
    for LLM Reasoning", arXiv 2509.22611): GRPO with the group's K-quantile as the baseline,

        b_K = inf {x : F(x) >= K},    A_i = (r_i - b_K) / (std(r) + eps),

    ``F`` the group's empirical CDF. For binary rewards (their Eq. 4) ``b_K = 0`` when
    ``p <= 1 - K`` and 1 otherwise: on hard prompts only the rare successes get an advantage
    ``(1 - 0) / std``, on easy prompts only the remaining failures ``(0 - 1) / std``; every other
    rollout gets 0. ``K = 0.4`` is the authors' default (0.6 if entropy collapses early); the std is
    verl's GRPO/DAPO one their recipe runs on (Bessel, ``eps = 1e-6``). ``method="linear"`` uses
    ``torch.quantile``'s interpolation as the authors' released code does: it agrees with the
    definition above except where ``K (G-1)`` falls between a group's last 0 and first 1 (at G = 8,
    K = 0.4: k = 5 correct gives the baseline 0.8, not 1). Real-valued rewards are allowed.
    """
    baseline = empirical_quantile(rewards, quantile_k, method)
    return _group_scaled(rewards - baseline, rewards, std, eps, "qae")


@register("a_grae")
def a_grae(rewards: torch.Tensor, alpha: float = 1.0, std: Spread = "sample", eps: float = 1e-6, *,
           batch_rewards: torch.Tensor) -> torch.Tensor:
    """A-GRAE, asymmetric group-relative advantage estimation (Yu et al. 2026, "Unveiling Implicit
    Advantage Symmetry: Why GRPO Struggles with Exploration and Difficulty Adaptation", arXiv
    2602.05548). From GRPO's ``A_i = (r_i - p) / (std + eps)`` (``p`` the group's mean reward, its
    accuracy for binary rewards) and the batch's mean reward ``m``:

        A_easy = A / (2 (1 - sqrt(p) + eps)),   A_hard = A / (2 (sqrt(p) + eps)),
        A'     = (1 - m) A_easy + m A_hard,     then  A' <- A' min(1, m / alpha)  where A' > 0.

    The curriculum: while the policy solves little (``m`` small) the weight is on ``A_easy``, which
    grows with ``p``; as ``m`` rises it moves to ``A_hard``, which grows as ``p`` falls. The asymmetry:
    every positive advantage is scaled by ``min(1, m / alpha)``, suppressing the correct rollouts'
    signal while the batch accuracy is below ``alpha`` (1 for math, 0.5 for their geometry and medical
    sets). It is stateless: ``m`` is ``batch_rewards.mean()`` (the mean of the group means, over every
    rank), nothing is carried across steps.

    Best reading: the paper's text was not available here; the formula is the authors' released code
    (GRPO with Bessel std and ``eps = 1e-6``; ``std="none"`` is their Dr.GRPO-based variant). That
    code enables it when a step-interpolated weight equals 2.0, which it does only at step 0, so as
    released it trains plain GRPO; this estimator applies the formula at every step. Rewards must
    lie in [0, 1] (``sqrt(p)``).
    """
    if torch.any((rewards < 0) | (rewards > 1)) or torch.any((batch_rewards < 0) | (batch_rewards > 1)):
        raise ValueError("a_grae needs rewards in [0, 1] (it takes the square root of a group's mean reward)")
    if alpha <= 0:
        raise ValueError(f"a_grae alpha must be > 0, got {alpha}")
    mean = rewards.mean(dim=1, keepdim=True)
    base = _group_scaled(rewards - mean, rewards, std, eps, "a_grae")
    root = mean.sqrt()
    batch_accuracy = batch_rewards.mean()
    easy = 0.5 * base / (1 - root + eps)
    hard = 0.5 * base / (root + eps)
    mixed = (1 - batch_accuracy) * easy + batch_accuracy * hard
    suppression = torch.clamp(batch_accuracy / alpha, max=1.0)
    return torch.where(mixed > 0, mixed * suppression, mixed).to(rewards.dtype)


@register("asymre")
def asymre(rewards: torch.Tensor, delta_v: float = -0.1,
           baseline: Literal["mean", "leave_one_out"] = "mean") -> torch.Tensor:
    """Asymmetric REINFORCE, AsymRE (Arnal et al. 2025, "Asymmetric REINFORCE for off-Policy
    Reinforcement Learning: Balancing positive and negative rewards", arXiv 2506.20520): REINFORCE
    with the advantage ``A = r - V`` and the baseline shifted, ``V = V_hat + delta_v``. Their analysis
    guarantees improvement when ``V`` stays below the behaviour policy's expected reward; a slightly
    negative ``delta_v`` puts more weight on successes than on failures (``-0.1``: a correct rollout
    gets ``1 - p + 0.1``, a wrong one ``-p + 0.1``; a uniform group gets +0.1 on every rollout).

    Best reading: ``V_hat`` is the group's mean reward (``baseline="mean"``, as in Trinity-RFT's
    implementation, whose default ``delta_v = -0.1`` this follows) or the mean of the other rollouts
    (``"leave_one_out"``); the paper's exact LLM baseline and default shift were not available here,
    so both are parameters. Real-valued rewards are allowed.
    """
    if baseline == "mean":
        value = rewards.mean(dim=1, keepdim=True)
    elif baseline == "leave_one_out":
        group_size = rewards.shape[1]
        value = (rewards.sum(dim=1, keepdim=True) - rewards) / (group_size - 1)
    else:
        raise ValueError(f"asymre baseline must be 'mean' or 'leave_one_out', got {baseline!r}")
    return rewards - (value + delta_v)


@register("opo")
def opo(rewards: torch.Tensor, *, response_lengths: torch.Tensor) -> torch.Tensor:
    """OPO (Hao et al. 2025, "On-Policy RL with Optimal Reward Baseline", arXiv 2505.23585): the
    group's length-weighted mean reward as the baseline,

        b = sum_i l_i r_i / sum_i l_i,    A_i = r_i - b,

    ``l_i`` the response token counts (the optimal baseline with the squared gradient norm taken
    proportional to length), as in verl's ``opo`` estimator. With equal lengths it is Dr.GRPO. A group
    whose lengths are all 0 falls back to the plain mean. Real-valued rewards are allowed.
    """
    lengths = response_lengths.to(rewards.dtype)
    if torch.any(lengths < 0):
        raise ValueError("opo response_lengths must be >= 0")
    total = lengths.sum(dim=1, keepdim=True)
    weighted = (lengths * rewards).sum(dim=1, keepdim=True) / total.clamp(min=1)
    baseline = torch.where(total > 0, weighted, rewards.mean(dim=1, keepdim=True))
    return rewards - baseline


@register("gpg")
def gpg(rewards: torch.Tensor, std: Spread = "none", eps: float = 0.0, *,
        batch_rewards: torch.Tensor) -> torch.Tensor:
    """GPG, Group Policy Gradient (Chu et al. 2025, "GPG: A Simple and Strong Reinforcement Learning
    Baseline for Model Reasoning", arXiv 2504.02546): the group-mean-centred reward scaled by the
    batch's valid-sample correction,

        A_i = alpha (r_i - mean(group of i)) / F_norm,    alpha = B / (B - M),

    ``B`` the rollouts of the whole batch (``batch_rewards``, every rank) and ``M`` those in groups
    whose rewards are all equal (zero advantage, "invalid"); ``F_norm = 1`` by default
    (``std="sample"`` / ``"population"`` divide by the group std ``+ eps``). The authors' code
    divides the loss by ``(B - M) / B + 1e-5``, the same factor (up to that 1e-5) for a loss linear
    in the advantage. GPG also drops PPO's ratio and clipping (a plain ``-log pi * A`` loss); that is
    the policy loss's choice, not the estimator's. verl's ``gpg`` counts non-zero rewards instead
    of informative groups for ``M``; this follows the paper and the authors' code. When every group
    of the batch is uniform, ``alpha = 1`` (all advantages are 0).
    """
    informative = informative_groups(batch_rewards)
    valid = int(informative.sum())
    alpha = informative.numel() / valid if valid > 0 else 1.0
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    return _group_scaled(centred, rewards, std, eps, "gpg") * alpha


# --------------------------------------------------------------------------------------------------
# Per-token shaping
# --------------------------------------------------------------------------------------------------


def entropy_advantage(
    advantages: torch.Tensor, entropy: torch.Tensor, alpha: float = 0.4, kappa: float = 2.0
) -> torch.Tensor:
    """Entropy advantage (Cheng et al. 2025, arXiv 2506.14758; a baseline of Gu et al.'s Table 1), per token:
    ``A_t + min(alpha * H_t, |A_t| / kappa)`` with the entropy detached (a bonus, not a gradient path).

    ``advantages`` and ``entropy`` broadcast to the per-token shape ``(batch, tokens)``.
    """
    if kappa <= 0:
        raise ValueError(f"kappa must be > 0, got {kappa}")
    bonus = torch.minimum(alpha * entropy.detach(), advantages.abs() / kappa)
    return advantages + bonus


def accuracy_grid(group_size: int) -> torch.Tensor:
    """Binary rewards ``(G + 1, G)`` in float64: row ``k`` is a group whose first ``k`` rollouts are
    correct, so the rows run over every group accuracy ``p = k/G``, k = 0..G."""
    return (torch.arange(group_size)[None, :] < torch.arange(group_size + 1)[:, None]).double()


def channel_curves(name: str, group_size: int, context: dict | None = None,
                   **params) -> tuple[list[float | None], list[float | None]]:
    """``(A+, A-)`` of estimator ``name`` at every grid point ``p = k/G``, k = 0..G (for plots).

    ``A+[k]`` is the advantage of a correct rollout in a group with ``k`` correct ones (None at
    k = 0, where there is none), ``A-[k]`` that of a wrong one (None at k = G).

    The groups are the rows of ``accuracy_grid(G)``. An estimator that takes context gets it from
    ``context``, else this stated default: ``batch_rewards`` = the grid itself (a batch of one group
    at every accuracy, batch accuracy 1/2), ``response_lengths`` = 1 for every rollout (equal lengths),
    ``step = 0``, ``total_steps = 1``.
    """
    rewards = accuracy_grid(group_size)
    defaults = {"batch_rewards": rewards, "response_lengths": torch.ones_like(rewards), "step": 0, "total_steps": 1}
    given = {**defaults, **(context or {})}
    adv = compute(name, rewards, **params, **{p: given[p] for p in context_parameters(name)})
    pos = [float(adv[k, 0]) if k > 0 else None for k in range(group_size + 1)]
    neg = [float(adv[k, -1]) if k < group_size else None for k in range(group_size + 1)]
    return pos, neg
