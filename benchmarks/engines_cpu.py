"""The rollout engines inside the trainer on a CPU: the toy job (`configs/toy_asymgrpo.yaml`) a few
steps with each engine, one after the other, the phase times of every step read from metrics.jsonl.

    python benchmarks/engines_cpu.py [--steps 4]

Writes ``benchmarks/results/engines_cpu.json``. It is what ``rollout.backend=auto`` rests on: vLLM
only on CUDA devices (``asymrl.rollout.resolve``). The first step of each includes warm-up; the
medians are over the others.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import provenance, results_dir

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("generate", "logprob", "update", "logprob_after", "weight_sync", "step")


def run(backend: str, steps: int, out: Path) -> list[dict]:
    command = [sys.executable, "train.py", "--config", "configs/toy_asymgrpo.yaml", f"rollout.backend={backend}", f"train.total_steps={steps}",
               "eval.at_start=false", "eval.every_steps=0", "eval.max_problems=50", "eval.sampled_n=0", "train.save_every=0",
               "log.trackers=[]", "log.progress_bar=false", "train.resume=never", f"train.output_dir={out}"]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"time/step"' in line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    result = {**provenance(f"python benchmarks/engines_cpu.py --steps {args.steps}"), "steps": args.steps, "engines": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for backend in ("transformers", "vllm"):
            records = run(backend, args.steps, Path(scratch) / backend)
            per_step = {phase: [round(r[f"time/{phase}"], 3) for r in records if f"time/{phase}" in r] for phase in PHASES}
            result["engines"][backend] = {"per_step_s": per_step,
                                          "median_after_first_s": {p: statistics.median(v[1:]) for p, v in per_step.items() if len(v) > 1}}
    medians = {name: engine["median_after_first_s"] for name, engine in result["engines"].items()}
    result["vllm_over_transformers"] = {p: round(medians["vllm"][p] / medians["transformers"][p], 2) for p in ("generate", "update", "step")}
    path = results_dir() / "engines_cpu.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["vllm_over_transformers"]), "->", path)


if __name__ == "__main__":
    main()
