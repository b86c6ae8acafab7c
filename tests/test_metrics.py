"""The paper's diagnostics (docs/method.md, the diagnostics) on hand-made steps, and the metric log."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from helpers import tensorboard_scalars

from asymrl import metrics
from asymrl.checkpoint import checkpoint_dir, complete_checkpoints, resolve_resume
from asymrl.update import build_accelerator


def test_group_outcomes():
    rewards = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = metrics.group_outcomes(rewards)
    assert out["groups/all_solved_frac"] == 0.25
    assert out["groups/none_solved_frac"] == 0.5
    assert out["groups/mixed_frac"] == 0.25
    assert out["reward/accuracy"] == pytest.approx(5 / 16)


def test_entropy_by_outcome_is_token_weighted():
    rewards = torch.tensor([[1.0, 0.0]])
    summed_entropy = torch.tensor([[2.0, 9.0]])  # rollout 0: 2 tokens of entropy 1; rollout 1: 3 tokens of 3
    tokens = torch.tensor([[2.0, 3.0]])
    out = metrics.entropy_by_outcome(summed_entropy, rewards, tokens)
    assert out == {"entropy/all": pytest.approx(11 / 5), "entropy/correct": 1.0, "entropy/wrong": 3.0}
    out = metrics.entropy_by_outcome(summed_entropy, torch.tensor([[0.0, 0.0]]), tokens)
    assert math.isnan(out["entropy/correct"])


def test_covariance_by_accuracy_hand_computed():
    # Two groups with p = 1/2 and one with p = 1/4 (G = 4).
    rewards = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0], [3.0, -1.0, -1.0, -1.0]])
    mean_logprob = torch.tensor([[-1.0, -1.0, -3.0, -3.0], [-2.0, -2.0, -2.0, -2.0], [-1.0, -2.0, -2.0, -2.0]])
    out = metrics.covariance_by_accuracy(mean_logprob, advantages, rewards)
    # group 0: lbar centred (1,1,-1,-1), A centred (1,1,-1,-1) -> cov 1; group 1: cov 0 -> p=0.5 mean 0.5
    # group 2: lbar centred (0.75,-0.25,-0.25,-0.25), A (3,-1,-1,-1) -> (2.25+0.25*3)/4 = 0.75
    assert out == {"cov/p=0.500": pytest.approx(0.5), "cov/p=0.250": pytest.approx(0.75)}


def test_logprob_increment_and_advantage_statistics():
    rewards = torch.tensor([[1.0, 0.0, 1.0]])
    before = torch.tensor([[-2.0, -1.0, -3.0]])
    after = torch.tensor([[-1.5, -1.2, -2.0]])
    out = metrics.logprob_increment(before, after, rewards)
    assert out == {"logp_increment/correct": pytest.approx(0.75), "logp_increment/wrong": pytest.approx(-0.2)}
    stats = metrics.advantage_statistics(torch.tensor([[0.5, -1.0, 0.0]]), rewards)
    assert stats["advantage/pos_max"] == 0.5 and stats["advantage/pos_min"] == 0.0
    assert stats["advantage/neg_mean"] == -1.0 and stats["advantage/zero_frac"] == pytest.approx(1 / 3)


def test_metrics_log_writes_jsonl_then_tensorboard_and_a_resume_truncates_both(tmp_path):
    def metrics_log() -> metrics.MetricsLog:
        return metrics.MetricsLog(tmp_path, build_accelerator(1, 1, 1.0, trackers=["tensorboard"], run_dir=tmp_path))

    first = metrics_log()
    first.start("toy", {"train": {"lr": 1e-3, "adam_betas": [0.9, 0.999]}, "model": {"lora_rank": None}})
    for step in range(1, 5):
        first.log(step, {"reward/accuracy": step / 10, "entropy/correct": math.nan, "cov/p=0.500": 0.5})
    first.close()
    # The run died after step 4; it resumes from its step-2 checkpoint and logs step 3 again.
    resumed = metrics_log()
    resumed.start("toy", resumed_at=2)
    resumed.log(3, {"reward/accuracy": 0.33})
    resumed.close()
    records = metrics.read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    assert records[-1]["reward/accuracy"] == 0.33 and records[0]["entropy/correct"] is None
    events = tmp_path / "tensorboard" / "toy"
    steps, values = zip(*tensorboard_scalars(events, "reward/accuracy"))
    assert steps == (1, 2, 3) and values == pytest.approx((0.1, 0.2, 0.33))
    # MLflow refuses "=" in a metric name: trackers get "cov/p_0.500", metrics.jsonl keeps "cov/p=0.500".
    assert tensorboard_scalars(events, "cov/p_0.500") == [(1, 0.5), (2, 0.5)]
    assert records[0]["cov/p=0.500"] == 0.5


def test_resume_finds_only_complete_checkpoints(tmp_path):
    assert resolve_resume("auto", tmp_path) is None
    for step in (2, 4):
        checkpoint_dir(tmp_path, step).mkdir(parents=True)
        (checkpoint_dir(tmp_path, step) / "trainer_state.json").write_text("{}")
    checkpoint_dir(tmp_path, 6).with_name("step_000006.partial").mkdir()  # a crash mid-save
    checkpoint_dir(tmp_path, 8).mkdir()  # no state file: incomplete
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step_000002", "step_000004"]
    assert resolve_resume("auto", tmp_path).name == "step_000004"
    assert resolve_resume("never", tmp_path) is None
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        resolve_resume(str(checkpoint_dir(tmp_path, 8)), tmp_path)


def test_gather_named_is_one_collective_split_back_by_name():
    calls = []

    def two_ranks(matrix):  # a stand-in for the gather over two ranks: this rank's rows, then the other's
        calls.append(matrix.shape)
        return torch.cat([matrix, matrix + 100])

    local = {"rewards": torch.tensor([1.0, 0.0, 1.0]), "advantage": torch.tensor([0.5, -1.0, 0.25], dtype=torch.float64),
             "response_tokens": torch.tensor([3.0, 4.0, 5.0])}
    gathered = metrics.gather_named(local, two_ranks)
    assert calls == [(3, 3)]  # one collective for every name
    assert gathered["rewards"].tolist() == [1.0, 0.0, 1.0, 101.0, 100.0, 101.0]
    assert gathered["advantage"].tolist() == [0.5, -1.0, 0.25, 100.5, 99.0, 100.25] and gathered["advantage"].dtype == torch.float64
    assert gathered["response_tokens"].dtype == torch.float32
    assert {k: v.tolist() for k, v in metrics.gather_named(local, lambda m: m).items()} == {k: v.tolist() for k, v in local.items()}


# Two ranks whose actor metrics differ in their keys (rank 1 alone holds kl_ref).
RANK_METRICS = [{"actor/pg_loss": 1.0, "actor/clip_frac": 0.2, "reward/verifier_timeouts": 1.0},
                {"actor/pg_loss": 3.0, "reward/verifier_timeouts": 2.0, "actor/kl_ref": 0.5}]
COMBINED = {"actor/clip_frac": 0.2, "actor/kl_ref": 0.5, "actor/pg_loss": 2.0, "reward/verifier_timeouts": 3.0}


def test_combine_rank_metrics_over_ranks_holding_different_keys():
    out = metrics.combine_rank_metrics(RANK_METRICS, summed={"reward/verifier_timeouts"})
    assert list(out) == ["actor/clip_frac", "actor/kl_ref", "actor/pg_loss", "reward/verifier_timeouts"] and out == COMBINED
    # One process, no process group: its own metrics.
    assert metrics.reduce_rank_metrics(RANK_METRICS[0]) == dict(sorted(RANK_METRICS[0].items()))


def _reduce_on_rank(rank: int, out_dir: str) -> None:
    import json
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    # The ranks meet through a file in the test's own folder: no port is chosen here (one found free,
    # released and then bound again could be taken in between by another process).
    store = Path(out_dir) / "rendezvous"
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    combined = metrics.reduce_rank_metrics(RANK_METRICS[rank], summed={"reward/verifier_timeouts"})
    torch.distributed.destroy_process_group()
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(combined))


@pytest.mark.distributed
def test_reduce_rank_metrics_over_two_gloo_processes_with_different_keys(tmp_path):
    import json

    torch.multiprocessing.spawn(_reduce_on_rank, args=(str(tmp_path),), nprocs=2, join=True)
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == COMBINED


def test_registered_diagnostics_over_named_rollouts():
    from asymrl.config import Config

    rewards = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    rollouts = {
        "rewards": rewards, "advantage": torch.tensor([[0.5, -1.0, 0.5], [0.0, 0.0, 0.0]]),
        "entropy_sum": torch.tensor([[2.0, 9.0, 1.0], [3.0, 3.0, 3.0]]), "response_tokens": torch.tensor([[2.0, 3.0, 1.0], [3.0, 3.0, 3.0]]),
        "mean_logprob": torch.tensor([[-2.0, -1.0, -3.0], [-1.0, -1.0, -1.0]]), "truncated": torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
        "prompt_tokens": torch.full((2, 3), 7.0), "group_distinct_correct": torch.tensor([[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]),
    }
    config = Config()
    config.log.covariance_steps = 5
    out = metrics.compute_diagnostics(rollouts, 0, config)
    expected = {**metrics.group_outcomes(rewards),
                **metrics.entropy_by_outcome(rollouts["entropy_sum"], rewards, rollouts["response_tokens"]),
                **metrics.advantage_statistics(rollouts["advantage"], rewards),
                **metrics.covariance_by_accuracy(rollouts["mean_logprob"], rollouts["advantage"], rewards),
                **metrics.entropy_by_accuracy(rollouts["entropy_sum"], rollouts["response_tokens"], rewards),
                **metrics.length_statistics(rollouts["response_tokens"], rollouts["truncated"] > 0.5),
                **metrics.group_pass_at_k(rewards), "diversity/distinct_correct": 2.0}
    assert out == expected
    assert out["groups/zero_advantage_frac"] == 0.5 and out["response/truncated_frac"] == pytest.approx(1 / 6)
    # The increment needs the log-probs after the update; covariance and entropy by accuracy: every step.
    after = metrics.compute_diagnostics({**rollouts, "mean_logprob_after": rollouts["mean_logprob"] + 0.5}, 50, config)
    assert after["logp_increment/correct"] == pytest.approx(0.5) and "cov/p=0.667" in after and "entropy_by_p/p=0.000" in after
    assert [name for name, _ in metrics.DIAGNOSTICS.items()][:2] == ["group_outcomes", "entropy_by_outcome"]
    assert [s.name for s in metrics.all_summaries()] == ["none_solved_mean", "all_solved_mean", "reward_final", "entropy_mean",
                                                         "entropy_first", "entropy_final", "logp_increment_correct_mean",
                                                         "distinct_correct_mean"]
    with pytest.raises(ValueError, match="'group_outcomes' is already registered"):
        metrics.diagnostic("group_outcomes")(lambda rollouts, step, config: {})


def test_group_pass_at_k_and_diversity_by_hand():
    from asymrl.metrics import distinct_correct, diversity, group_pass_at_k

    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    # pass@2 per group: 1 - C(3,2)/C(4,2) = 1/2, 0, 1; pass@4: 1, 0, 1.
    assert group_pass_at_k(rewards) == pytest.approx({"pass_at_k/1": (0.25 + 0 + 0.75) / 3, "pass_at_k/2": 0.5, "pass_at_k/4": 2 / 3})
    assert distinct_correct(["1>2>3", "1>4>3", " 1>2>3 ", "junk"], [True, True, True, False]) == 2
    assert distinct_correct(["a", "b"], [False, False]) == 0
    per_group = torch.tensor([1.0, 0.0, 3.0]).repeat_interleave(4).view(3, 4)
    # Groups with a correct rollout: 1 and 3 distinct correct responses; the unsolved group is left out.
    assert diversity(per_group, rewards) == {"diversity/distinct_correct": 2.0}
    assert diversity(per_group, torch.zeros(3, 4)) == {}


def test_entropy_by_accuracy_by_hand():
    from asymrl.metrics import entropy_by_accuracy

    rewards = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    entropy_sum = torch.tensor([[2.0, 4.0], [1.0, 1.0], [6.0, 0.0]])
    tokens = torch.tensor([[2.0, 2.0], [1.0, 3.0], [4.0, 2.0]])
    # p = 0.5: (2 + 4 + 6 + 0) / (2 + 2 + 4 + 2) = 1.2; p = 0: 2 / 4
    assert entropy_by_accuracy(entropy_sum, tokens, rewards) == pytest.approx({"entropy_by_p/p=0.500": 1.2, "entropy_by_p/p=0.000": 0.5})
