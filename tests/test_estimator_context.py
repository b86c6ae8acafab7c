"""Estimators that read the whole step (``batch_rewards``): the trainer gathers it over ranks, so two
processes give each rollout the advantage one process gives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "estimator_context_worker.py"


def run(out: Path, estimator: str, processes: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    launch = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "accelerate.commands.launch", "--main_process_port", "0", "--config_file", str(ROOT / "launch" / "cpu_ddp2.yaml")]
    result = subprocess.run([*launch, str(WORKER), str(out), estimator], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.distributed
@pytest.mark.parametrize("estimator", ["reinforce_pp_baseline", "gpg", "a_grae"])
def test_two_processes_give_the_one_process_advantages(tmp_path, estimator):
    import torch

    from asymrl import advantages

    assert "batch_rewards" in advantages.context_parameters(estimator)
    single, double = run(tmp_path / "one.json", estimator, 1), run(tmp_path / "two.json", estimator, 2)
    assert (single["world"], double["world"]) == (1, 2)
    torch.testing.assert_close(torch.tensor(double["advantages"]), torch.tensor(single["advantages"]), rtol=0, atol=1e-6)
    # What a rank would give from its own half alone (no gather) differs: the test can see a missing gather.
    rewards = torch.tensor(single["rewards"])
    halves = [rewards[:3], rewards[3:]]
    ungathered = torch.cat([advantages.compute(estimator, half, batch_rewards=half) for half in halves])
    assert not torch.allclose(ungathered, torch.tensor(single["advantages"]), atol=1e-4)
