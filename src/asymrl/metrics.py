"""The paper's diagnostics (PAPER.md section 6) as pure functions, and the run's metric log.

Diagnostics take per-rollout tensors of one step (rewards ``(num_prompts, G)``, per-rollout mean
entropies and mean log-probs of the same shape) and return plain floats keyed by metric name, so
the trainer can log them without any knowledge of how they are computed.

``MetricsLog`` writes every step's metrics to ``metrics.jsonl`` (one JSON object a line, flushed at
once so a crash loses nothing) and to TensorBoard.
"""

from __future__ import annotations

import json
import math
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


class MetricsLog:
    """Appends each step's metrics to ``<run_dir>/metrics.jsonl`` and TensorBoard (main process only)."""

    def __init__(self, run_dir: Path, *, tensorboard: bool = True, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (after a resume from that step, they will be written again)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file, in order."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
