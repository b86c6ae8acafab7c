"""One RLVR step of the trainer under ``accelerate launch`` (two processes, DeepSpeed ZeRO-3 on
CPU), with each rank's rollout engine asked for greedy answers before and after the step; the
consolidated model is saved for the parent test to compare against. Launched by
tests/test_rollout.py::test_engines_follow_a_zero3_update_on_every_rank.

    accelerate launch --config_file launch/cpu_zero3.yaml tests/engine_sync_worker.py OUT_DIR BACKEND [key=value ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from asymrl.config import parse_args
from asymrl.rollout import SamplingParams
from asymrl.toy.task import generate_problems
from asymrl.trainer import Trainer
from asymrl.update import release_process_group

PROBES = [p["problem"] for p in generate_problems(seed=11, n=12, split="validation")]
GREEDY = SamplingParams(n=1, temperature=0.0, max_new_tokens=48)


def greedy(trainer: Trainer, prompts: list[str]) -> list[list[int]]:
    return [group[0].response_ids for group in trainer.engine.generate(prompts, GREEDY)]


def main(out_dir: str, backend: str, *overrides: str) -> None:
    out = Path(out_dir)
    config = parse_args([f"rollout.backend={backend}", f"train.output_dir={out / 'run'}", *overrides])
    trainer = Trainer(config)
    rank = trainer.accelerator.process_index
    prompts = [trainer._prompt({"problem": p}) for p in PROBES]  # rendered as the trainer renders them
    before = greedy(trainer, prompts)
    metrics = trainer.step(0, trainer.sampler.next_batch())   # ends with the gathered weight push
    after = greedy(trainer, prompts)
    trainer.updater.save_pretrained(out / "consolidated", trainer.tokenizer)
    (out / f"rank{rank}.json").write_text(json.dumps({
        "world": trainer.accelerator.num_processes, "distributed_type": str(trainer.accelerator.distributed_type),
        "prompts": prompts, "before": before, "after": after, "optimizer_steps": metrics["actor/optimizer_steps"],
    }))
    trainer.engine.close()
    release_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
