"""The paper's diagnostics (Gu et al. 2026; docs/method.md sec. 7) as pure functions in a registry, and
the run's metric log.

Each step the trainer collects its per-rollout quantities as ONE named mapping (``rewards``,
``advantage``, ``entropy_sum``, ``response_tokens``, ``mean_logprob``, ``truncated``,
``prompt_tokens``, ``group_distinct_correct``; ``mean_logprob_after`` when ``log.logprob_increment``
is on; ``overlong_penalty`` when ``algorithm.overlong_buffer`` is set; the engine-mismatch and rollout-correction sums of ``asymrl.rollout_correction`` when they
apply), each of shape
``(num_prompts, G)`` once gathered over ranks (``gather_named``: one collective). Every registered
diagnostic maps that mapping to plain floats keyed by metric name; all of them reach metrics.jsonl and
TensorBoard, and the ``Summary`` columns a diagnostic declares reach the Table 1 report::

    @metrics.diagnostic("longest_response", summaries=[Summary("longest_mean", "response/longest", "longest")])
    def longest_response(rollouts, step, config):
        return {"response/longest": float(rollouts["response_tokens"].max())}

``MetricsLog`` writes every step's metrics to ``metrics.jsonl`` (one JSON object a line, flushed at
once so a crash loses nothing), the source of truth, then to the experiment trackers of
``log.trackers`` (TensorBoard, wandb, MLflow, ...) through accelerate's tracker API.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection, Mapping, Sequence

import torch

from asymrl import rollout_correction
from asymrl.pass_at_k import pass_at_k_curve
from asymrl.registry import Registry

if TYPE_CHECKING:
    from asymrl.config import Config

Rollouts = Mapping[str, torch.Tensor]  # name -> per-rollout values, (num_prompts, G)
DiagnosticFn = Callable[[Rollouts, int, "Config"], dict[str, float]]


@dataclass(frozen=True)
class Summary:
    """A run-level statistic of one logged metric: a column of the Table 1 report's diagnostics
    (``table1.run_statistics``), the mean over every training step, or over the first or the last ones."""

    name: str  # its key in results.json, e.g. entropy_mean
    metric: str  # the metrics.jsonl key it summarises, e.g. entropy/all
    title: str  # its column title in report.md
    final: bool = False  # mean over the last steps only
    first: bool = False  # mean over the first steps only


@dataclass(frozen=True)
class Diagnostic:
    fn: DiagnosticFn
    summaries: tuple[Summary, ...]


# name -> Diagnostic, run in registration order.
DIAGNOSTICS: Registry[Diagnostic] = Registry("diagnostic")


def diagnostic(name: str, summaries: Sequence[Summary] = ()) -> Callable[[DiagnosticFn], DiagnosticFn]:
    """Decorator adding ``fn(rollouts, step, config) -> {metric: value}`` to the diagnostics every
    step logs, with the run-level ``summaries`` of its metrics that the Table 1 report shows."""

    def decorator(fn: DiagnosticFn) -> DiagnosticFn:
        taken = {s.name for s in all_summaries()} & {s.name for s in summaries}
        if taken:
            raise ValueError(f"diagnostic {name!r}: summaries {sorted(taken)} are already declared")
        DIAGNOSTICS.register(name)(Diagnostic(fn, tuple(summaries)))
        return fn

    return decorator


def all_summaries() -> list[Summary]:
    """Every registered diagnostic's summaries, in registration order (the report's columns)."""
    return [summary for _, entry in DIAGNOSTICS.items() for summary in entry.summaries]


def compute_diagnostics(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    """Every registered diagnostic of one step's gathered rollouts, merged into one dict."""
    out: dict[str, float] = {}
    for _, entry in DIAGNOSTICS.items():
        out.update(entry.fn(rollouts, step, config))
    return out


def mean_response_logprob(logprobs: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Each rollout's length-normalised log-prob, ``(rows,)``: the mean over its response tokens
    (0 for an empty response); the log-prob increment compares it before and after an update."""
    return (logprobs * response_mask).sum(1) / response_mask.sum(dim=1).clamp_min(1)


def gather_named(tensors: Mapping[str, torch.Tensor], gather: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-rollout tensors of this rank (one value per rollout under each name), concatenated over
    ranks in ONE collective: the values are stacked as columns in sorted name order, ``gather``
    concatenates the ``(rollouts, names)`` matrix over ranks, and the columns are split back by name,
    each in its own dtype. Every rank must hold the same names and the same number of rollouts."""
    names = sorted(tensors)
    common = functools.reduce(torch.promote_types, (tensors[name].dtype for name in names))
    stacked = torch.stack([tensors[name].reshape(-1).to(common) for name in names], dim=1)
    everything = gather(stacked)
    return {name: everything[:, column].to(tensors[name].dtype) for column, name in enumerate(names)}


def combine_rank_metrics(per_rank: Sequence[Mapping[str, float]], summed: Collection[str] = ()) -> dict[str, float]:
    """One metrics dict from every rank's own: each key of the sorted union is the mean over the
    ranks that hold it (the sum for ``summed`` keys)."""
    out = {}
    for key in sorted(set().union(*per_rank)):
        values = [float(metrics[key]) for metrics in per_rank if key in metrics]
        out[key] = sum(values) if key in summed else sum(values) / len(values)
    return out


def reduce_rank_metrics(local: Mapping[str, float], summed: Collection[str] = ()) -> dict[str, float]:
    """This rank's scalar metrics combined with every other rank's (``combine_rank_metrics``) after
    ONE ``all_gather_object`` of the whole dict, so ranks holding different keys cannot hang it as
    one collective per key would. Without a process group (one process) ``local`` alone."""
    per_rank: list = [dict(local)]
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        per_rank = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(per_rank, dict(local))
    return combine_rank_metrics(per_rank, summed)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` over the positions where ``mask`` is 1 (0 where the mask is empty)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp_min(1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp_min(1)


def group_outcomes(rewards: torch.Tensor) -> dict[str, float]:
    """Reward, accuracy and the fractions of "all solved" (p = 1), "none solved" (p = 0) and mixed
    groups (docs/method.md sec. 7)."""
    correct = rewards > 0.5
    accuracy = correct.float().mean(dim=1)
    return {
        "reward/mean": float(rewards.float().mean()),
        "reward/accuracy": float(correct.float().mean()),
        "groups/all_solved_frac": float((accuracy == 1).float().mean()),
        "groups/none_solved_frac": float((accuracy == 0).float().mean()),
        "groups/mixed_frac": float(((accuracy > 0) & (accuracy < 1)).float().mean()),
    }


@diagnostic("group_outcomes", summaries=[
    Summary("none_solved_mean", "groups/none_solved_frac", "none solved"),
    Summary("all_solved_mean", "groups/all_solved_frac", "all solved"),
    Summary("reward_final", "reward/accuracy", "reward final", final=True),
])
def _group_outcomes(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    return group_outcomes(rollouts["rewards"])


def entropy_by_outcome(rollout_entropy: torch.Tensor, rewards: torch.Tensor, response_tokens: torch.Tensor) -> dict[str, float]:
    """Mean token entropy over all / correct / wrong rollouts (docs/method.md sec. 7), token-weighted.

    ``rollout_entropy`` is each rollout's summed token entropy, ``response_tokens`` its token count.
    """
    correct = rewards > 0.5
    out = {}
    for name, keep in (("all", torch.ones_like(correct)), ("correct", correct), ("wrong", ~correct)):
        tokens = response_tokens[keep].sum()
        out[f"entropy/{name}"] = float(rollout_entropy[keep].sum() / tokens) if tokens > 0 else math.nan
    return out


@diagnostic("entropy_by_outcome", summaries=[
    Summary("entropy_mean", "entropy/all", "entropy"),
    Summary("entropy_first", "entropy/all", "entropy first", first=True),
    Summary("entropy_final", "entropy/all", "entropy final", final=True),
])
def _entropy_by_outcome(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    return entropy_by_outcome(rollouts["entropy_sum"], rollouts["rewards"], rollouts["response_tokens"])


def advantage_statistics(advantages: torch.Tensor, rewards: torch.Tensor) -> dict[str, float]:
    """Mean / min / max of the advantage per channel, and the fractions of zero-advantage rollouts
    and of groups whose every rollout has a zero advantage."""
    correct = rewards > 0.5
    out = {"advantage/zero_frac": float((advantages == 0).float().mean()),
           "groups/zero_advantage_frac": float((advantages == 0).all(dim=1).float().mean())}
    for name, keep in (("pos", correct), ("neg", ~correct)):
        values = advantages[keep].float()
        if values.numel():
            out[f"advantage/{name}_mean"] = float(values.mean())
            out[f"advantage/{name}_min"] = float(values.min())
            out[f"advantage/{name}_max"] = float(values.max())
    return out


@diagnostic("advantage_statistics")
def _advantage_statistics(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    return advantage_statistics(rollouts["advantage"], rollouts["rewards"])


def covariance_by_accuracy(mean_logprob: torch.Tensor, advantages: torch.Tensor, rewards: torch.Tensor) -> dict[str, float]:
    """Appendix B covariance, averaged over groups of equal accuracy p.

    Per group ``Cov = mean_i (lbar_i - mean lbar)(A_i - mean A)`` with ``lbar_i`` the mean token
    log-prob of rollout i; then the mean of Cov over the groups that share the same ``p = k/G``.
    Keys are ``cov/p=0.375`` etc.
    """
    centred_logprob = mean_logprob - mean_logprob.mean(dim=1, keepdim=True)
    centred_advantage = advantages - advantages.mean(dim=1, keepdim=True)
    per_group = (centred_logprob * centred_advantage).mean(dim=1)
    correct_counts = (rewards > 0.5).sum(dim=1)
    group_size = rewards.shape[1]
    return {
        f"cov/p={int(k) / group_size:.3f}": float(per_group[correct_counts == k].mean())
        for k in correct_counts.unique()
    }


@diagnostic("covariance_by_accuracy")
def _covariance_by_accuracy(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    return covariance_by_accuracy(rollouts["mean_logprob"], rollouts["advantage"], rollouts["rewards"])


def entropy_by_accuracy(rollout_entropy: torch.Tensor, response_tokens: torch.Tensor, rewards: torch.Tensor) -> dict[str, float]:
    """Mean token entropy of the rollouts of groups of equal accuracy ``p = k/G``, token-weighted:
    where does entropy sit, in groups the policy finds hard or easy? Keys ``entropy_by_p/p=0.375`` etc."""
    correct_counts = (rewards > 0.5).sum(dim=1)
    group_size = rewards.shape[1]
    out = {}
    for k in correct_counts.unique():
        keep = correct_counts == k
        tokens = response_tokens[keep].sum()
        if tokens > 0:
            out[f"entropy_by_p/p={int(k) / group_size:.3f}"] = float(rollout_entropy[keep].sum() / tokens)
    return out


@diagnostic("entropy_by_accuracy")
def _entropy_by_accuracy(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    return entropy_by_accuracy(rollouts["entropy_sum"], rollouts["response_tokens"], rollouts["rewards"])


@diagnostic("overlong_penalty")
def _overlong_penalty(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    if "overlong_penalty" not in rollouts:  # algorithm.overlong_buffer is off
        return {}
    penalty = rollouts["overlong_penalty"]
    return {"overlong/penalty_mean": float(penalty.mean()), "overlong/penalised_frac": float((penalty < 0).float().mean())}


def logprob_increment(before: torch.Tensor, after: torch.Tensor, rewards: torch.Tensor) -> dict[str, float]:
    """Mean over correct rollouts of (length-normalised log-prob after the update - before)
    (docs/method.md sec. 7), and the same over wrong rollouts for contrast."""
    increment = after - before
    correct = rewards > 0.5
    out = {}
    for name, keep in (("correct", correct), ("wrong", ~correct)):
        if keep.any():
            out[f"logp_increment/{name}"] = float(increment[keep].mean())
    return out


@diagnostic("logprob_increment", summaries=[Summary("logp_increment_correct_mean", "logp_increment/correct", "logp incr. correct")])
def _logprob_increment(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    if "mean_logprob_after" not in rollouts:  # log.logprob_increment is off
        return {}
    return logprob_increment(rollouts["mean_logprob"], rollouts["mean_logprob_after"], rollouts["rewards"])


def length_statistics(response_tokens: torch.Tensor, truncated: torch.Tensor) -> dict[str, float]:
    """Response length mean / max and the fraction cut off at the maximum length."""
    lengths = response_tokens.float()
    return {
        "response/length_mean": float(lengths.mean()),
        "response/length_max": float(lengths.max()),
        "response/truncated_frac": float(truncated.float().mean()),
    }


@diagnostic("length_statistics")
def _length_statistics(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    return length_statistics(rollouts["response_tokens"], rollouts["truncated"] > 0.5)


def group_pass_at_k(rewards: torch.Tensor) -> dict[str, float]:
    """pass@k of the G rollouts of each group (unbiased estimator, ``asymrl.pass_at_k``), averaged over
    groups, for k = 1, 2, 4, ..., G: ``pass_at_k/1`` is the accuracy, ``pass_at_k/G`` one minus the
    none-solved fraction, and the ks between say how far more samples reach."""
    return {f"pass_at_k/{k}": value for k, value in pass_at_k_curve(rewards > 0.5).items()}


@diagnostic("group_pass_at_k")
def _group_pass_at_k(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    return group_pass_at_k(rollouts["rewards"])


def distinct_correct(responses: Sequence[str], correct: Sequence[bool]) -> int:
    """How many different responses (white space folded) are among the correct ones of a group: the
    diversity of solution paths, which the entropy over correct rollouts should reflect."""
    return len({" ".join(response.split()) for response, right in zip(responses, correct) if right})


def diversity(group_distinct_correct: torch.Tensor, rewards: torch.Tensor) -> dict[str, float]:
    """``diversity/distinct_correct``: mean over the groups with a correct rollout of their number of
    distinct correct responses (``group_distinct_correct``: that number, repeated on each rollout)."""
    solved = (rewards > 0.5).any(dim=1)
    if not solved.any():
        return {}
    return {"diversity/distinct_correct": float(group_distinct_correct[solved, 0].float().mean())}


@diagnostic("diversity", summaries=[Summary("distinct_correct_mean", "diversity/distinct_correct", "distinct correct")])
def _diversity(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    if "group_distinct_correct" not in rollouts:  # rollouts given without their texts
        return {}
    return diversity(rollouts["group_distinct_correct"], rollouts["rewards"])


@diagnostic("rollout_mismatch")
def _rollout_mismatch(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    """Engine vs trainer log-probs (``asymrl.rollout_correction``), when the engine reported them."""
    if "mismatch_abs_sum" not in rollouts:
        return {}
    return rollout_correction.summarize_mismatch(rollouts, rollouts["response_tokens"])


@diagnostic("rollout_correction_weights")
def _rollout_correction_weights(rollouts: Rollouts, step: int, config: Config) -> dict[str, float]:
    """What ``algorithm.rollout_correction`` did to the policy gradient, when it is on."""
    if "correction_weight_sum" not in rollouts:
        return {}
    return rollout_correction.summarize_weights(rollouts, rollouts["response_tokens"])


def tracker_key(key: str) -> str:
    """A metric name every tracker accepts: MLflow refuses characters outside ``[\\w./\\- :]``
    (``cov/p=0.375`` becomes ``cov/p_0.375``); metrics.jsonl keeps the original names."""
    return re.sub(r"[^\w./\- :]", "_", key)


def flat_hyperparameters(tree: dict, prefix: str = "") -> dict[str, bool | int | float | str]:
    """A nested config as ``{dotted key: scalar}`` (lists and None as text), as trackers store it."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flat_hyperparameters(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return flat


class MetricsLog:
    """Appends each step's metrics to ``<run_dir>/metrics.jsonl``, then logs them to the trackers the
    ``accelerator`` was built with (``build_accelerator(trackers=...)``); main process only.

    ``start`` opens the trackers (after ``truncate_after`` on a resume): TensorBoard is told to
    purge the events past the resumed step, so neither sink holds two values for a step.
    """

    def __init__(self, run_dir: Path, accelerator=None, *, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.run_dir = Path(run_dir)
        self.accelerator = accelerator if enabled else None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def start(self, project: str, config: dict | None = None, resumed_at: int | None = None) -> None:
        """Open the trackers as ``project`` (wandb project, MLflow experiment, TensorBoard subfolder)
        with ``config`` as hyperparameters; ``resumed_at``: the step a resumed run continues after."""
        if not self.enabled:
            return
        if resumed_at is not None:
            self.truncate_after(resumed_at)
        if self.accelerator is None or not self.accelerator.log_with:
            return
        init_kwargs = {
            "wandb": {"dir": str(self.run_dir), "name": self.run_dir.name},
            "mlflow": {"run_name": self.run_dir.name},
            # TensorBoard hides every event at or past purge_step written before this start.
            "tensorboard": {} if resumed_at is None else {"purge_step": resumed_at + 1},
        }
        hyperparameters = None if config is None else flat_hyperparameters(config)
        self.accelerator.init_trackers(project, config=hyperparameters, init_kwargs=init_kwargs)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.accelerator is not None:
            numbers = {tracker_key(k): v for k, v in metrics.items()
                       if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))}
            self.accelerator.log(numbers, step=step)

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (after a resume from that step, they will be written again)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def close(self) -> None:
        """Finish the trackers (wandb and MLflow end their runs; TensorBoard closes its file)."""
        if self.accelerator is not None:
            for tracker in self.accelerator.trackers:
                tracker.finish()


def read_metrics(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file, in order."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
