"""Time per phase and tokens/s of full RLVR steps (generate, verify, log-prob, update, weight sync).

    python benchmarks/step.py                                   # tiny preset, CPU
    python benchmarks/step.py --preset small --steps 8 key=value ...   # on a GPU

Runs the real trainer for ``--steps`` steps on the embedded task and averages the per-step timings
after the first (warm-up) step. Writes ``benchmarks/results/step_<preset>_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
from pathlib import Path

import torch

from asymrl.config import build_config
from asymrl.metrics import read_metrics
from asymrl.trainer import Trainer
from common import provenance, results_dir  # benchmarks/common.py, beside this script

PRESET_RUNS = {
    "tiny": {"rollout.max_new_tokens": 64, "train.prompts_per_step": 32, "train.mini_batch_prompts": 16, "train.micro_batch_size": 64},
    "small": {"rollout.max_new_tokens": 256, "train.prompts_per_step": 128, "train.mini_batch_prompts": 64,
              "train.micro_batch_size": 64, "model.dtype": "bfloat16"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESET_RUNS))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--backend", default="transformers")
    parser.add_argument("overrides", nargs="*", help="extra key=value config overrides")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as run_dir:
        values = {
            "model.path": f"toy:{args.preset}", "data.train": "toy", "data.validation": "toy", "data.prompt_template": "{problem}",
            "rollout.backend": args.backend, "train.total_steps": args.steps, "train.save_every": 0, "train.output_dir": run_dir,
            "eval.every_steps": 0, "eval.at_start": False, "log.progress_bar": False, "log.trackers": [],
            **PRESET_RUNS[args.preset], **dict(item.split("=", 1) for item in args.overrides),
        }
        Trainer(build_config(values)).train()
        records = [r for r in read_metrics(Path(run_dir) / "metrics.jsonl") if "time/step" in r][1:]
    keys = sorted({k for r in records for k in r if k.startswith("time/")})
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    result = {
        "benchmark": "step", "provenance": provenance(shlex.join(["python", *sys.argv])), "preset": args.preset, "device": device, "torch": torch.__version__, "backend": args.backend,
        "config": {k: v for k, v in values.items() if k != "train.output_dir"}, "steps_averaged": len(records),
        "mean": {k: round(sum(r[k] for r in records) / len(records), 4) for k in keys},
        "response_length_mean": round(sum(r["response/length_mean"] for r in records) / len(records), 1),
    }
    kind = "cuda" if torch.cuda.is_available() else "cpu"
    out = results_dir() / f"step_{args.preset}_{kind}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["mean"], indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
