"""Where a testbed step's time goes, and what the cheap switches buy: the collapse scale's GRPO run
(asymrl.reproduce SCALE=collapse: 8 prompts x 8 rollouts, two optimizer steps per RL step, one thread)
timed phase by phase in this process, variants side by side and repeated in alternation.

    OMP_NUM_THREADS=1 python benchmarks/testbed_step.py [--steps 40] [--repeats 2]

Also the model's arithmetic: one update micro-batch's forward + backward (32 rows x 40 tokens) against
a plain matrix product of its widest shape, in GFLOP/s, to tell compute from per-call overhead; and
the validation pass and the test evaluation's batches. Writes ``benchmarks/results/testbed_step_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from asymrl.side_by_side import STUDIES
from common import provenance, results_dir  # benchmarks/common.py, beside this script

VARIANTS = {
    "default": {},
    "segments_1": {"rollout.transformers.segments": 1},
    "packing": {"train.packing": True},
    # the entropy controls' GRPO w/ 22 prompts a step: what a larger batch costs a step, for the
    # power per CPU-second of prompts per step against seeds (docs/collapse_regime.md, "Power")
    "prompts_22": STUDIES["entropy_controls"].row_overrides["grpo_22_prompts"],
}


def trainer_for(out: Path, overrides: dict):
    from asymrl import reproduce
    from asymrl.config import build_config
    from asymrl.trainer import Trainer

    values = reproduce.row_values("grpo", reproduce.SCALES["collapse"], 0, out)
    values.update({"log.trackers": [], "train.save_every": 0, "eval.at_start": False, "train.resume": "never", **overrides})
    return Trainer(build_config(values))


def time_steps(overrides: dict, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        trainer = trainer_for(Path(scratch), overrides)
        phases = []
        started = None
        for step in range(steps + 2):  # two warm-up steps
            if step == 2:
                started = time.perf_counter()
            metrics = trainer.step(step, trainer.sampler.next_batch())
            if step >= 2:
                phases.append({k.removeprefix("time/"): v for k, v in metrics.items() if k.startswith("time/") and not k.endswith("_per_s")})
        wall = (time.perf_counter() - started) / steps
        validation = time.perf_counter()
        trainer.validate()
        validation = time.perf_counter() - validation
        trainer.reward.close()
        trainer.engine.close()
    keys = sorted(set().union(*phases))
    return {"wall_per_step_s": round(wall, 4), "phases_median_s": {k: round(statistics.median(p.get(k, 0.0) for p in phases), 4) for k in keys},
            "validation_500_greedy_s": round(validation, 3)}


def arithmetic() -> dict:
    """GFLOP/s of one update micro-batch's forward + backward and of a matrix product of its shape."""
    from transformers import AutoModelForCausalLM

    from asymrl.logprobs import sequence_logprobs
    from asymrl.toy.build import ensure_base_policy

    model = AutoModelForCausalLM.from_pretrained(ensure_base_policy("paths"))
    parameters = sum(p.numel() for p in model.parameters())
    ids = torch.randint(3, model.config.vocab_size, (32, 40))
    ones = torch.ones_like(ids)
    response = ones.clone()
    response[:, :13] = 0

    def step() -> None:
        logprobs, entropy = sequence_logprobs(model, ids, ones, response)
        (logprobs.sum() + entropy.sum()).backward()

    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(10):
        step()
    seconds = (time.perf_counter() - started) / 10
    a, w = torch.randn(32 * 40, model.config.hidden_size), torch.randn(model.config.intermediate_size, model.config.hidden_size)
    for _ in range(5):
        a @ w.T
    started = time.perf_counter()
    for _ in range(200):
        a @ w.T
    matmul = (time.perf_counter() - started) / 200
    return {"parameters": parameters, "update_micro_batch_fwd_bwd_s": round(seconds, 4),
            "update_gflop_per_s": round(6 * parameters * 32 * 40 / seconds / 1e9, 1),
            "matmul_gflop_per_s": round(2 * a.shape[0] * w.shape[0] * w.shape[1] / matmul / 1e9, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):  # alternated, so drift hits every variant alike
        for name, overrides in VARIANTS.items():
            runs[name].append(time_steps(overrides, args.steps))
            print(name, runs[name][-1]["wall_per_step_s"], flush=True)
    wall = {name: statistics.median(r["wall_per_step_s"] for r in results) for name, results in runs.items()}
    result = {**provenance(f"OMP_NUM_THREADS={torch.get_num_threads()} python benchmarks/testbed_step.py --steps {args.steps} --repeats {args.repeats}"),
              "variants": VARIANTS, "runs": runs, "median_wall_per_step_s": wall,
              "speedup_over_default": {name: round(wall["default"] / value, 3) for name, value in wall.items()},
              "arithmetic": arithmetic()}
    path = results_dir() / "testbed_step_cpu.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["speedup_over_default"]), json.dumps(result["arithmetic"]), "->", path)


if __name__ == "__main__":
    main()
