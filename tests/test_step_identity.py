"""The step as named shaping stages changed no number: a short run of every switch, trained by the
code before that refactor (commit BEFORE, checked out beside this one) and by this code on the same
machine, writes the same metrics.jsonl, every metric but the phase times bit for bit.

Slow (two short runs per switch, ~8 minutes) and needs the repository's history; run it with
``pytest -m slow tests/test_step_identity.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "7402e26"  # the last commit before shaping.py: Trainer.step threaded every switch by hand

SHORT = ["--config", "configs/toy_asymgrpo.yaml", "train.total_steps=3", "train.prompts_per_step=8", "train.mini_batch_prompts=4",
         "train.micro_batch_size=16", "eval.every_steps=0", "eval.at_start=false", "eval.max_problems=24", "eval.sampled_n=0",
         "train.save_every=0", "train.max_wall_s=null", "log.trackers=[]", "log.progress_bar=false", "train.resume=never"]
SWITCHES = {
    "none": [],
    "entropy_advantage": ["algorithm.entropy_adv_alpha=0.4"],
    "rollout_correction_tis": ["rollout.engine_dtype=bfloat16", "algorithm.rollout_correction=tis"],
    "rollout_correction_mask_sequence": ["rollout.engine_dtype=bfloat16", "algorithm.rollout_correction=mask",
                                         "algorithm.rollout_correction_level=sequence", "algorithm.rollout_correction_cap=1.05"],
    "top_entropy": ["algorithm.top_entropy_quantile=0.2"],
    "overlong": ["algorithm.overlong_buffer=16", "rollout.max_new_tokens=40"],
    "mask_truncated": ["algorithm.mask_truncated=true", "rollout.max_new_tokens=40"],
    "all_shaping": ["algorithm.overlong_buffer=16", "rollout.max_new_tokens=40", "algorithm.entropy_adv_alpha=0.4",
                    "algorithm.top_entropy_quantile=0.5", "algorithm.mask_truncated=true"],
    "sign_gradient": ["log.sign_grad_norm_every=1"],
    "increment_every_2": ["log.logprob_increment_every=2"],
    "dynamic_sampling": ["algorithm.dynamic_sampling=true"],
    "entropy_target": ["algorithm.alpha_schedule=entropy_target", "algorithm.target_entropy=0.5"],
    "kl_penalty": ["algorithm.kl_coef=0.05"],
    "token_budget_packed": ["train.max_tokens_per_micro_batch=1024", "train.packing=true"],
}


@pytest.fixture(scope="module")
def before_tree(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("before") / "tree"
    result = subprocess.run(["git", "worktree", "add", "--detach", str(tree), BEFORE], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"commit {BEFORE} cannot be checked out here ({result.stderr.strip()[:200]})")
    yield tree
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)


def run(tree: Path, out: Path, overrides: list[str]) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tree / "src"), "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, "train.py", *SHORT, f"train.output_dir={out}", *overrides], cwd=tree, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def untimed(records: list[dict]) -> list[dict]:
    return [{key: value for key, value in record.items() if not key.startswith("time/")} for record in records]


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory) -> list[dict]:
    return untimed(run(ROOT, tmp_path_factory.mktemp("plain"), []))


@pytest.mark.slow
@pytest.mark.parametrize("switch", list(SWITCHES))
def test_the_same_metrics_before_and_after_the_stages(before_tree, plain_run, tmp_path, switch):
    before = untimed(run(before_tree, tmp_path / "before", SWITCHES[switch]))
    after = untimed(run(ROOT, tmp_path / "after", SWITCHES[switch]))
    assert [r["step"] for r in after] == [1, 2, 3]
    assert after == before
    assert (after == plain_run) == (switch == "none")  # each switch does something
