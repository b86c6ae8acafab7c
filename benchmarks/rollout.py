"""Generation throughput of the rollout engines (transformers, vLLM) on an embedded preset.

    python benchmarks/rollout.py                       # tiny preset, CPU, both engines where available
    python benchmarks/rollout.py --preset small --device cuda --backends transformers

Samples ``--prompts`` validation prompts x ``--n`` completions at temperature 1, ``--repeats`` times,
and reports generated tokens per second (best repeat after a warm-up). Writes
``benchmarks/results/rollout_<preset>_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time

import torch

from asymrl.data import load_problems
from asymrl.prompts import render_prompt
from asymrl.rollout import SamplingParams, TransformersOptions, build_engine, vllm_available
from asymrl.toy.build import ensure_base_policy
from common import provenance, results_dir  # benchmarks/common.py, beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--backends", default="transformers,transformers+static,vllm",
                        help="transformers+static: the static KV cache (rollout.transformers.static_cache; compiled decode on GPUs)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    policy = ensure_base_policy(args.preset)
    problems, _ = load_problems("toy:validation")
    results = []
    for backend in args.backends.split(","):
        name, static_cache = backend.removesuffix("+static"), backend.endswith("+static")
        if name == "vllm" and not vllm_available():
            results.append({"backend": "vllm", "status": "vllm not installed"})
            continue
        options = {"transformers": TransformersOptions(static_cache=static_cache)}
        engine = build_engine(name, policy, options, dtype=args.dtype, device=args.device, max_model_len=160)
        prompts = [render_prompt(p["problem"], engine.tokenizer, "{problem}") for p in problems[: args.prompts]]
        params = SamplingParams(n=args.n, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)
        engine.generate(prompts[:4], params)  # warm-up
        rates = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            groups = engine.generate(prompts, params)
            seconds = time.perf_counter() - started
            tokens = sum(len(c.response_ids) for g in groups for c in g)
            rates.append(tokens / seconds)
        results.append({"backend": backend, "tokens_per_s": round(max(rates)), "all_tokens_per_s": [round(r) for r in rates],
                        "completions": args.prompts * args.n, "mean_response_tokens": round(tokens / (args.prompts * args.n), 1)})
        print(results[-1])
        engine.close()
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    out = results_dir() / f"rollout_{args.preset}_{args.device.split(':')[0]}.json"
    out.write_text(json.dumps({"benchmark": "rollout", "provenance": provenance(shlex.join(["python", *sys.argv])), "preset": args.preset, "device": device, "threads": torch.get_num_threads(),
                               "config": vars(args), "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
