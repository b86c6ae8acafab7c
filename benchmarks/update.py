"""Throughput and peak memory of the policy update (asymrl.update.PolicyUpdater) on random rollouts.

    python benchmarks/update.py                                   # CPU, tiny model
    python benchmarks/update.py --device cuda --shape qwen2.5-0.5b --dtype bfloat16 --rows 32 --seq 2048 --micro 4

Measures the old-log-prob pass (no grad) and one PPO pass (clipped surrogate, token-mean, gradient
checkpointing, AdamW) over ``rows`` rollouts of ``seq`` tokens, the last 7/8 of each a response.
Random weights: the cost of a step does not depend on what the model knows.
Writes ``benchmarks/results/update_<shape>_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from asymrl.loss import PolicyLossConfig
from asymrl.update import PolicyUpdater, RolloutBatch, UpdateConfig, build_accelerator, cpu_thread_setup

SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=128),
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rows", type=int, default=16, help="rollouts in the mini-batch (one optimizer step)")
    parser.add_argument("--seq", type=int, default=128, help="tokens per rollout")
    parser.add_argument("--micro", type=int, default=4, help="rollouts per micro-batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    args = parser.parse_args()

    cpu_thread_setup()
    torch.manual_seed(0)
    config = Qwen2Config(max_position_embeddings=max(4096, args.seq), attn_implementation="sdpa", **SHAPES[args.shape])
    model = Qwen2ForCausalLM(config).to(getattr(torch, args.dtype))
    accelerator = build_accelerator(args.rows // args.micro, args.micro, grad_clip=1.0)
    updater = PolicyUpdater(accelerator, model, UpdateConfig(
        lr=1e-6, micro_batch_size=args.micro, gradient_checkpointing=not args.no_gradient_checkpointing,
        loss=PolicyLossConfig(eps_low=0.2, eps_high=0.28),
    ))
    device = accelerator.device
    prompt = args.seq // 8
    input_ids = torch.randint(0, config.vocab_size, (args.rows, args.seq))
    attention_mask = torch.ones_like(input_ids)
    response_mask = torch.zeros_like(input_ids)
    response_mask[:, prompt:] = 1
    batch = RolloutBatch(input_ids, attention_mask, response_mask)
    advantages = torch.randn(args.rows, 1) * response_mask
    tokens = args.rows * args.seq

    timings = {"logprob_s": [], "update_s": []}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.repeats):
        synchronize(device)
        start = time.perf_counter()
        old_logprobs, _ = updater.logprobs(batch)
        synchronize(device)
        timings["logprob_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        metrics = updater.update(batch, advantages, old_logprobs, args.rows)
        synchronize(device)
        timings["update_s"].append(time.perf_counter() - start)
        print({k: round(v[-1], 3) for k, v in timings.items()}, "grad_norm", round(metrics["actor/grad_norm"], 3))
    # The first repeat includes warm-up (allocator, kernels): report the best of the rest.
    best = {k: min(v[1:] if len(v) > 1 else v) for k, v in timings.items()}
    record = {
        "benchmark": "update",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "shape": args.shape,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "config": vars(args),
        "tokens_per_step": tokens,
        "logprob_tokens_per_s": round(tokens / best["logprob_s"]),
        "update_tokens_per_s": round(tokens / best["update_s"]),
        "seconds": {k: [round(x, 4) for x in v] for k, v in timings.items()},
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
    }
    out = Path(__file__).parent / "results" / f"update_{args.shape}_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(json.dumps({k: record[k] for k in ("logprob_tokens_per_s", "update_tokens_per_s", "peak_memory_gib")}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
