"""asymrl beside the trainer users would pick instead, TRL's GRPOTrainer, on the same job, one after
the other in one invocation.

    python benchmarks/peer_trl.py                    # 10 RL steps each, 2 CPU threads
    python benchmarks/peer_trl.py --steps 40         # a longer run

The job (both trainers): the embedded tiny policy (toy:tiny) on the arithmetic task, 32 prompts x 8
rollouts per RL step at T = 1, 64 new tokens, two optimizer steps per RL step (mini-batches of 16
prompts, micro-batches of 64 rollouts), GRPO advantages with the sample standard deviation, the
token-mean (DAPO) loss with clip 0.2, no KL, lr 1e-4 constant, gradient clip 1.0, the same reward
(asymrl's math verifier, called in-process by TRL, in asymrl's worker pool by asymrl).

asymrl runs twice: with its default diagnostics and with ``log.logprob_increment=false`` (the one
extra forward pass it makes that TRL does not). What else differs, by design: asymrl takes the first
mini-batch's old log-probs from the update's own forward (``train.old_logprobs_from_update``; TRL
runs its no-grad pass over all 256 rollouts), samples through ``sdpa_gqa`` (``asymrl.attention``: no
copy of the grouped key / value heads) and decides most rewards in-process, sending SymPy cases to
its worker pool (TRL calls the reward in-process). TRL runs in fp32 without recomputation, like asymrl
(its GRPOConfig defaults, bf16 autocast and gradient checkpointing, are turned off). TRL is installed into its own environment,
``.cache/peer_trl`` (created on first use: a venv that sees this project's packages through a .pth
file, plus ``trl`` without dependencies), never into the default install.

Measured per trainer: seconds per RL step (mean over the steps after the first), generated and
trained tokens per second, the peak RSS of its process, and greedy accuracy on the first
``--eval-problems`` validation problems before and after (the same evaluation for both: asymrl's
engine and verifier on each trainer's final weights). Writes ``benchmarks/results/peer_trl_cpu.json``
and appends a one-line summary to ``benchmarks/results/peer_trl_cpu_history.jsonl`` (both with the
command, commit, date and machine: ``common.provenance``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import provenance  # benchmarks/common.py, beside this script

REPO = Path(__file__).resolve().parents[1]
TRL_VERSION = "1.16.0"
TRL_ENV = REPO / ".cache" / "peer_trl"
PROMPTS, GROUP, MINI_BATCH_PROMPTS, MICRO_ROWS, NEW_TOKENS, LR = 32, 8, 16, 64, 64, 1e-4


def trl_python() -> Path:
    """The separate environment's interpreter (created once): TRL without touching the default install."""
    python = TRL_ENV / "bin" / "python"
    if not (python.exists() and subprocess.run([python, "-c", f"import trl; assert trl.__version__ == '{TRL_VERSION}'"]).returncode == 0):
        subprocess.run([sys.executable, "-m", "venv", str(TRL_ENV)], check=True)
        ours = subprocess.run([sys.executable, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True, check=True).stdout.strip()
        theirs = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True, check=True).stdout.strip()
        # torch, transformers, ... of this project, and asymrl itself (a .pth in `ours` is not read from here)
        Path(theirs, "asymrl_env.pth").write_text(f"{ours}\n{REPO / 'src'}\n")
        subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", f"trl=={TRL_VERSION}"], check=True)
    return python


def run_asymrl(out_dir: Path, steps: int, increment: bool, seed: int) -> dict:
    """The job through asymrl's train.py; its timings from metrics.jsonl."""
    command = [sys.executable, str(REPO / "train.py"), "--config", str(REPO / "configs" / "toy_asymgrpo.yaml"),
               "algorithm.estimator=grpo", "algorithm.grpo_std=sample", f"train.total_steps={steps}", f"train.seed={seed}",
               f"train.prompts_per_step={PROMPTS}", f"train.mini_batch_prompts={MINI_BATCH_PROMPTS}", f"train.micro_batch_size={MICRO_ROWS}",
               f"rollout.max_new_tokens={NEW_TOKENS}", f"train.lr={LR}", "train.max_wall_s=null", "train.save_every=0",
               "eval.every_steps=0", "eval.at_start=false", "log.trackers=[]", "log.progress_bar=false",
               f"log.logprob_increment={str(increment).lower()}", f"train.output_dir={out_dir}"]
    started = time.time()
    rss_file = out_dir.parent / f"{out_dir.name}.rss"
    # GNU time reports the trainer process's peak RSS (its reward workers are other processes).
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *command], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - started
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    steps_records = [r for r in records if "time/step" in r][1:]  # the first step warms up
    mean = lambda key: sum(r[key] for r in steps_records) / len(steps_records)  # noqa: E731
    return {"seconds_per_step": round(mean("time/step"), 3),
            "phases_s": {key.removeprefix("time/"): round(mean(key), 3) for key in steps_records[0]
                         if key.startswith("time/") and not key.endswith("_per_s") and key != "time/step"},
            "generated_tokens_per_s": round(mean("time/generate_tokens_per_s")),
            "train_tokens_per_s": round(mean("time/train_tokens_per_s")),
            "wall_s": round(wall, 1), "peak_rss_gib": round(int(rss_file.read_text().split()[-1]) / 2**20, 3),
            "model": str(out_dir / "best")}


def trl_worker(out_dir: Path, steps: int, seed: int) -> None:
    """Runs inside the TRL environment: the same job through GRPOTrainer, timed per optimizer step."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from asymrl.data import load_problems
    from asymrl.prompts import render_prompt
    from asymrl.reward.registry import math_reward
    from asymrl.toy.build import resolve_model_dir

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model_dir = resolve_model_dir("toy:tiny")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    problems, _ = load_problems("toy", "train")
    rows = [{"prompt": render_prompt(p["problem"], tokenizer, "{problem}"), "answer": p["answer"]} for p in problems]

    def reward(completions, answer, **_):
        return [math_reward(text, {"answer": reference}) for text, reference in zip(completions, answer)]

    optimizer_steps_per_rl_step = PROMPTS // MINI_BATCH_PROMPTS
    accumulation = MINI_BATCH_PROMPTS * GROUP // MICRO_ROWS
    config = GRPOConfig(
        output_dir=str(out_dir / "trl"), per_device_train_batch_size=MICRO_ROWS, gradient_accumulation_steps=accumulation,
        steps_per_generation=accumulation * optimizer_steps_per_rl_step, num_generations=GROUP, max_completion_length=NEW_TOKENS,
        temperature=1.0, top_p=1.0, top_k=0, beta=0.0, loss_type="dapo", epsilon=0.2, scale_rewards="group",
        learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0, weight_decay=0.0,
        max_steps=steps * optimizer_steps_per_rl_step, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        # GRPOConfig defaults to bf16 autocast and gradient checkpointing; asymrl trains in fp32 without
        # recomputation here, and bf16 on a CPU without bf16 instructions is several times slower.
        bf16=False, gradient_checkpointing=False, seed=seed, disable_dropout=True, dataloader_num_workers=0,
    )
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), reward_funcs=reward, args=config,
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer, callbacks=[Stamp()])
    started = time.perf_counter()
    trainer.train()
    # One RL step = optimizer_steps_per_rl_step optimizer steps; the first RL step warms up.
    rl_ends = [started] + stamps[optimizer_steps_per_rl_step - 1 :: optimizer_steps_per_rl_step]
    per_step = [b - a for a, b in zip(rl_ends, rl_ends[1:])][1:]
    history = [h for h in trainer.state.log_history if "completions/mean_length" in h]
    mean_length = sum(h["completions/mean_length"] for h in history) / max(len(history), 1)
    trainer.save_model(str(out_dir / "final"))
    tokenizer.save_pretrained(str(out_dir / "final"))
    result = {"seconds_per_step": round(sum(per_step) / len(per_step), 3), "mean_completion_tokens": round(mean_length, 1),
              "generated_tokens_per_s": round(PROMPTS * GROUP * mean_length / (sum(per_step) / len(per_step))),
              "model": str(out_dir / "final"), "trl": __import__("trl").__version__,
              "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}  # KiB on Linux
    (out_dir / "trl_result.json").write_text(json.dumps(result))


def greedy_accuracy(model: str, problems: int) -> float:
    """Greedy accuracy on the first validation problems, through asymrl's engine and verifier."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "asymrl.evaluate", "--checkpoint", model, "--benchmarks", "toy:validation",
                        "--samples", "toy:validation=1", "--temperature", "0", "--max-new-tokens", str(NEW_TOKENS),
                        "--backend", "transformers", "--dtype", "float32", "--device", "cpu", "--prompt-template", "{problem}",
                        "--limit", str(problems), "--out", out], cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return json.loads(Path(out, "summary.json").read_text())["benchmarks"]["toy:validation"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="RL steps of each trainer (the first is warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-problems", type=int, default=300)
    parser.add_argument("--trl-worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trl_worker is not None:
        return trl_worker(args.trl_worker, args.steps, args.seed)

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    os.environ.update(env)
    record = {"benchmark": "asymrl vs TRL GRPOTrainer, same job", "steps": args.steps, "threads": args.threads,
              "job": {"prompts": PROMPTS, "group": GROUP, "mini_batch_prompts": MINI_BATCH_PROMPTS, "micro_rows": MICRO_ROWS,
                      "max_new_tokens": NEW_TOKENS, "lr": LR, "estimator": "grpo (sample std)", "loss": "token-mean, clip 0.2, no KL"},
              "command": f"python benchmarks/peer_trl.py --steps {args.steps} --threads {args.threads}"}
    record["provenance"] = provenance(record["command"])
    record["accuracy_before"] = greedy_accuracy("toy:tiny", args.eval_problems)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for name, increment in (("asymrl", True), ("asymrl_no_increment", False)):
            result = run_asymrl(scratch / name, args.steps, increment, args.seed)
            result["accuracy_after"] = greedy_accuracy(result.pop("model"), args.eval_problems)
            record[name] = result
        (scratch / "trl").mkdir()
        subprocess.run([str(trl_python()), str(Path(__file__).resolve()), "--trl-worker", str(scratch / "trl"),
                        "--steps", str(args.steps), "--seed", str(args.seed)], cwd=REPO, env=env, check=True)
        trl = json.loads((scratch / "trl" / "trl_result.json").read_text())
        trl["accuracy_after"] = greedy_accuracy(trl.pop("model"), args.eval_problems)
        record["trl"] = trl
    for name in ("asymrl", "asymrl_no_increment"):
        record[f"{name}_speedup_over_trl"] = round(record["trl"]["seconds_per_step"] / record[name]["seconds_per_step"], 3)
    out = REPO / "benchmarks" / "results" / "peer_trl_cpu.json"
    out.write_text(json.dumps(record, indent=2))
    # One line per invocation beside the latest full record: the spread between runs is the noise.
    origin = record["provenance"]
    summary = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": origin["commit"],
               "uncommitted_changes": origin["uncommitted_changes"], "machine": origin["machine"], "steps": args.steps,
               **{f"{name}_s_per_step": record[name]["seconds_per_step"] for name in ("asymrl", "asymrl_no_increment", "trl")},
               **{key: value for key, value in record.items() if key.endswith("speedup_over_trl")}}
    with open(out.with_name("peer_trl_cpu_history.jsonl"), "a") as history:
        history.write(json.dumps(summary) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k.endswith("speedup_over_trl")}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
