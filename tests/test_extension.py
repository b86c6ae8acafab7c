"""Extending asymrl from outside the package: a rollout engine, a diagnostic, an advantage estimator
and a reward registered by this test module, chosen by config, run for two trainer steps on the toy task.

To add another kind of extension: define it below, register it in the ``extensions`` fixture, add its
config keys to ``extension_config`` and assert its effect in ``test_two_steps_with_the_extensions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import reward_functions
import torch
import yaml

from asymrl import advantages, metrics, reward, rollout, table1
from asymrl.config import Config, parse_args
from asymrl.metrics import Summary, read_metrics
from asymrl.rollout import EngineSetup, SamplingParams, TransformersEngine, TransformersOptions
from asymrl.trainer import Trainer

PROMPTS_PER_STEP, GROUP_SIZE = 8, 4


# -- a rollout engine: the transformers engine, recording what it generates -------------------------

@dataclass
class RecordingOptions(TransformersOptions):
    label: str = field(default="", metadata={"help": "a tag the test reads back"})


class RecordingEngine(TransformersEngine):
    Options = RecordingOptions

    def __init__(self, setup: EngineSetup, options: RecordingOptions):
        super().__init__(setup, options)
        self.label = options.label
        self.calls: list[dict] = []

    def generate(self, prompts, params: SamplingParams):
        groups = super().generate(prompts, params)
        self.calls.append({"prompts": len(prompts), "n": params.n,
                           "response_tokens": sum(len(c.response_ids) for group in groups for c in group)})
        return groups


# -- a diagnostic over the named per-rollout tensors, with a column for the Table 1 report ----------

def response_tokens_total(rollouts, step: int, config: Config) -> dict[str, float]:
    return {"extension/response_tokens_total": float(rollouts["response_tokens"].sum())}


# -- an advantage estimator with a parameter, and a reward from an importable module of its own ---

def scaled_reinforce(rewards: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """REINFORCE's +1 / -1, times ``scale``."""
    return (rewards * 2 - 1) * scale


@pytest.fixture
def extensions():
    """Registers this module's extensions as a user's module would (conftest's restore_registries
    removes them after the test, passed or failed, so that no other test sees them)."""
    rollout.register("recording")(RecordingEngine)
    metrics.diagnostic("response_tokens_total", summaries=[
        Summary("response_tokens_total_mean", "extension/response_tokens_total", "response tokens"),
    ])(response_tokens_total)
    advantages.register("scaled_reinforce")(scaled_reinforce)
    reward.register("always_right")(reward_functions.constant)  # workers import it as reward_functions:constant


def extension_config(output_dir, *overrides: str) -> Config:
    """Two quick steps on the toy task (no validation but the final one), with every extension chosen."""
    return parse_args([
        "model.path=toy:tiny", "data.train=toy", "data.validation=toy", "data.prompt_template={problem}", "eval.max_problems=8",
        "rollout.max_new_tokens=32", f"rollout.group_size={GROUP_SIZE}", f"train.prompts_per_step={PROMPTS_PER_STEP}",
        "train.mini_batch_prompts=4", "train.micro_batch_size=8", "train.lr=5e-5", "train.seed=3", "train.total_steps=2",
        "train.save_every=0", "eval.every_steps=0", "eval.at_start=false", "log.trackers=[]", "log.progress_bar=false",
        f"train.output_dir={output_dir}",
        "rollout.backend=recording", "rollout.recording.label=probe",
        "algorithm.estimator=scaled_reinforce", "algorithm.estimator_kwargs.scale=0.25",
        "reward.name=always_right", "reward.kwargs.value=1",
        *overrides,
    ])


def test_two_steps_with_the_extensions(extensions, tmp_path):
    trainer = Trainer(extension_config(tmp_path))
    engine = trainer.engine
    summary = trainer.train()
    assert summary["steps"] == 2

    # The engine was built from its own config section and generated every rollout.
    assert isinstance(engine, RecordingEngine) and engine.label == "probe"
    training_calls = [call for call in engine.calls if call["n"] == GROUP_SIZE]
    assert [call["prompts"] for call in training_calls] == [PROMPTS_PER_STEP, PROMPTS_PER_STEP]
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["rollout"]["recording"]["label"] == "probe"

    # The diagnostic saw the rollouts the engine produced, step by step, and reached the log and the report.
    steps = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "reward/accuracy" in r]
    assert [r["extension/response_tokens_total"] for r in steps] == [float(call["response_tokens"]) for call in training_calls]
    # The reward and the estimator came from the config with their parameters: every rollout scores 1,
    # so every advantage is +1 x 0.25.
    assert all(r["reward/mean"] == 1.0 for r in steps)
    assert all(r["advantage/pos_mean"] == r["advantage/pos_min"] == r["advantage/pos_max"] == 0.25 for r in steps)
    statistics = table1.run_statistics(read_metrics(tmp_path / "metrics.jsonl"))
    assert statistics["response_tokens_total_mean"] == pytest.approx(sum(call["response_tokens"] for call in training_calls) / 2)
