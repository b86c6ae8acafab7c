"""The paper's diagnostics (PAPER.md section 6) as pure functions, and the run's metric log.

Diagnostics take per-rollout tensors of one step (rewards ``(num_prompts, G)``, per-rollout mean
entropies and mean log-probs of the same shape) and return plain floats keyed by metric name, so
the trainer can log them without any knowledge of how they are computed.

``MetricsLog`` writes every step's metrics to ``metrics.jsonl`` (one JSON object a line, flushed at
once so a crash loses nothing), the source of truth, then to the experiment trackers of
``log.trackers`` (TensorBoard, wandb, MLflow, ...) through accelerate's tracker API.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` over the positions where ``mask`` is 1 (0 where the mask is empty)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp_min(1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp_min(1)


def group_outcomes(rewards: torch.Tensor) -> dict[str, float]:
    """Reward, accuracy and the fractions of "all solved" (p = 1), "none solved" (p = 0) and mixed
    groups (PAPER.md sec. 6)."""
    correct = rewards > 0.5
    accuracy = correct.float().mean(dim=1)
    return {
        "reward/mean": float(rewards.float().mean()),
        "reward/accuracy": float(correct.float().mean()),
        "groups/all_solved_frac": float((accuracy == 1).float().mean()),
        "groups/none_solved_frac": float((accuracy == 0).float().mean()),
        "groups/mixed_frac": float(((accuracy > 0) & (accuracy < 1)).float().mean()),
    }


def entropy_by_outcome(rollout_entropy: torch.Tensor, rewards: torch.Tensor, response_tokens: torch.Tensor) -> dict[str, float]:
    """Mean token entropy over all / correct / wrong rollouts (PAPER.md sec. 6), token-weighted.

    ``rollout_entropy`` is each rollout's summed token entropy, ``response_tokens`` its token count.
    """
    correct = rewards > 0.5
    out = {}
    for name, keep in (("all", torch.ones_like(correct)), ("correct", correct), ("wrong", ~correct)):
        tokens = response_tokens[keep].sum()
        out[f"entropy/{name}"] = float(rollout_entropy[keep].sum() / tokens) if tokens > 0 else math.nan
    return out


def advantage_statistics(advantages: torch.Tensor, rewards: torch.Tensor) -> dict[str, float]:
    """Mean / min / max of the advantage per channel, and the fraction of zero-advantage rollouts."""
    correct = rewards > 0.5
    out = {"advantage/zero_frac": float((advantages == 0).float().mean())}
    for name, keep in (("pos", correct), ("neg", ~correct)):
        values = advantages[keep].float()
        if values.numel():
            out[f"advantage/{name}_mean"] = float(values.mean())
            out[f"advantage/{name}_min"] = float(values.min())
            out[f"advantage/{name}_max"] = float(values.max())
    return out


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


def logprob_increment(before: torch.Tensor, after: torch.Tensor, rewards: torch.Tensor) -> dict[str, float]:
    """Mean over correct rollouts of (length-normalised log-prob after the update - before)
    (PAPER.md sec. 6), and the same over wrong rollouts for contrast."""
    increment = after - before
    correct = rewards > 0.5
    out = {}
    for name, keep in (("correct", correct), ("wrong", ~correct)):
        if keep.any():
            out[f"logp_increment/{name}"] = float(increment[keep].mean())
    return out


def length_statistics(response_tokens: torch.Tensor, truncated: torch.Tensor) -> dict[str, float]:
    """Response length mean / max and the fraction cut off at the maximum length."""
    lengths = response_tokens.float()
    return {
        "response/length_mean": float(lengths.mean()),
        "response/length_max": float(lengths.max()),
        "response/truncated_frac": float(truncated.float().mean()),
    }


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
