"""transformers' ``sdpa`` against asymrl's ``sdpa_gqa`` (``asymrl.attention``), side by side in one run.

    python benchmarks/attention.py                     # the tiny policy, 256 rows, 64 new tokens, CPU

Loads the embedded tiny policy (grouped-query attention: 4 query heads, 2 key / value heads) and,
alternating the two implementations ``--repeats`` times, samples ``--rows`` completions of
``--new-tokens`` tokens to left-padded prompts of the toy task (a mask at every step), then runs a
masked forward + backward over the same rows padded on the right (an update's micro-batch). Both
sample the same tokens (checked). Reports the median seconds of each and their ratios. Writes
``benchmarks/results/attention_tiny_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import asymrl.attention  # noqa: F401  (registers sdpa_gqa)
from asymrl.data import load_problems
from asymrl.toy.build import resolve_model_dir
from asymrl.update import cpu_thread_setup
from common import provenance, results_dir  # benchmarks/common.py, beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cpu_thread_setup()
    model_dir = resolve_model_dir("toy:tiny")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    problems, _ = load_problems("toy", "train")
    prompts = [problems[i % len(problems)]["problem"] for i in range(args.rows)]
    left = tokenizer(prompts, return_tensors="pt", padding=True)

    def sample() -> tuple[float, torch.Tensor]:
        torch.manual_seed(0)
        started = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**left, do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
                                 max_new_tokens=args.new_tokens, pad_token_id=tokenizer.pad_token_id)
        return time.perf_counter() - started, out

    def forward_backward(sequences: torch.Tensor) -> float:
        # The sampled rows, right-padded as the update sees them (pad tokens masked out).
        attention_mask = (sequences != tokenizer.pad_token_id).long()
        order = torch.argsort(attention_mask, dim=1, descending=True, stable=True)
        input_ids, attention_mask = sequences.gather(1, order), attention_mask.gather(1, order)
        started = time.perf_counter()
        for start in range(0, len(input_ids), 64):
            logits = model(input_ids=input_ids[start:start + 64], attention_mask=attention_mask[start:start + 64]).logits
            logits.float().logsumexp(-1).mean().backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    times = {name: {"sample_s": [], "forward_backward_s": []} for name in ("sdpa", "sdpa_gqa")}
    outputs = {}
    for _ in range(args.repeats):
        for name in times:
            model.set_attn_implementation(name)
            seconds, outputs[name] = sample()
            times[name]["sample_s"].append(seconds)
            times[name]["forward_backward_s"].append(forward_backward(outputs[name]))
    same_tokens = torch.equal(outputs["sdpa"], outputs["sdpa_gqa"])
    median = {name: {key: round(statistics.median(values), 3) for key, values in phases.items()} for name, phases in times.items()}
    command = f"python benchmarks/attention.py --rows {args.rows} --new-tokens {args.new_tokens} --repeats {args.repeats}"
    record = {
        "benchmark": "attention", "provenance": provenance(command), "device": "cpu", "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "model": "toy:tiny (4 query heads, 2 key/value heads)",
        "rows": args.rows, "new_tokens": args.new_tokens, "repeats": args.repeats,
        "command": command,
        "same_sampled_tokens": same_tokens, "median": median, "all": times,
        "sdpa_gqa_speedup": {key: round(median["sdpa"][key] / median["sdpa_gqa"][key], 3) for key in median["sdpa"]},
    }
    out = results_dir() / "attention_tiny_cpu.json"
    out.write_text(json.dumps(record, indent=2))
    print(json.dumps({"same_sampled_tokens": same_tokens, "median": median, "sdpa_gqa_speedup": record["sdpa_gqa_speedup"]}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
