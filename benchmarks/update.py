"""Throughput and peak memory of the policy update (asymrl.update.PolicyUpdater) on random rollouts.

    python benchmarks/update.py                                   # CPU, tiny model, every row full length
    python benchmarks/update.py --lengths long-tailed             # + token-budget micro-batches, side by side
    python benchmarks/update.py --device cuda --shape qwen2.5-1.5b --dtype bfloat16 --rows 32 --seq 4096 --micro 4 --lengths long-tailed

Measures the old-log-prob pass (no grad) and one PPO pass (clipped surrogate, token-mean, gradient
checkpointing, AdamW) over ``rows`` rollouts of up to ``seq`` tokens (prompt = the first seq/8).
Random weights: the cost of a step does not depend on what the model knows.

``--lengths full``: every row at ``seq`` tokens (the best case for padding). ``--lengths long-tailed``:
RL-like response lengths (70% of rows at 5-30% of the maximum, 20% at 30-100%, 10% at the maximum,
seeded), and every batching mode in ``--modes`` is timed on the same rows in one invocation:
``fixed`` (``micro`` rows per micro-batch, in arrival order, padded to the longest) and
``token_budget`` (length-sorted micro-batches within ``micro x seq`` padded tokens: the same peak
activation size as ``fixed``), and ``packed`` / ``token_budget_packed`` (the same micro-batches with
their sequences packed several to a row, position ids restarting per sequence: ``train.packing``). Throughput counts real (unpadded) tokens; the ratio of the modes is
the figure to compare (absolute CPU times drift 2x between runs).
Writes ``benchmarks/results/update_<shape>_<device>[_long-tailed].json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from asymrl.loss import PolicyLossConfig
from asymrl.update import PolicyUpdater, RolloutBatch, UpdateConfig, build_accelerator, cpu_thread_setup
from common import SHAPES, matmul_parameters, provenance, results_dir  # benchmarks/common.py, beside this script



def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def long_tailed_lengths(rows: int, seq: int, seed: int = 0) -> list[int]:
    """Sequence lengths of RL rollouts: 70% at 5-30% of ``seq``, 20% at 30-100%, 10% at ``seq``."""
    generator = torch.Generator().manual_seed(seed)
    lengths = []
    for row in range(rows):
        share = (row * 10) // rows  # deciles: 0-6 short, 7-8 medium, 9 full
        low, high = (0.05, 0.30) if share < 7 else (0.30, 1.0) if share < 9 else (1.0, 1.0)
        fraction = low + (high - low) * float(torch.rand((), generator=generator))
        lengths.append(max(seq // 8 + 1, round(fraction * seq)))
    order = torch.randperm(rows, generator=generator).tolist()  # arrival order is not sorted
    return [lengths[i] for i in order]


def time_mode(updater: PolicyUpdater, batch: RolloutBatch, advantages: torch.Tensor, rows: int, repeats: int, device) -> dict:
    """Best-of-repeats seconds of the old-log-prob pass and the update (first repeat = warm-up)."""
    timings = {"logprob_s": [], "update_s": []}
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        old_logprobs, _ = updater.logprobs(batch)
        synchronize(device)
        timings["logprob_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        metrics = updater.update(batch, advantages, old_logprobs, rows)
        synchronize(device)
        timings["update_s"].append(time.perf_counter() - start)
        print({k: round(v[-1], 3) for k, v in timings.items()}, "grad_norm", round(metrics["actor/grad_norm"], 3))
    best = {k: min(v[1:] if len(v) > 1 else v) for k, v in timings.items()}
    return {"best": best, "seconds": {k: [round(x, 4) for x in v] for k, v in timings.items()},
            **updater.take_padding_statistics()}


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
    parser.add_argument("--lengths", default="full", choices=["full", "long-tailed"])
    parser.add_argument("--modes", default="fixed,token_budget,packed,token_budget_packed",
                        help="batching modes timed side by side (long-tailed lengths)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak (e.g. 790: bf16 measured on the H200): "
                        "report the update's model-FLOPs utilisation, 6 x matmul parameters x real tokens, recomputation not counted")
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
    lengths = [args.seq] * args.rows if args.lengths == "full" else long_tailed_lengths(args.rows, args.seq)
    positions = torch.arange(args.seq)[None]
    attention_mask = (positions < torch.tensor(lengths)[:, None]).long()
    input_ids = torch.randint(0, config.vocab_size, (args.rows, args.seq)) * attention_mask
    response_mask = attention_mask * (positions >= prompt).long()
    batch = RolloutBatch(input_ids, attention_mask, response_mask)
    advantages = torch.randn(args.rows, 1) * response_mask
    tokens = sum(lengths)
    flop_parameters = matmul_parameters(model)

    modes = ["fixed"] if args.lengths == "full" else [m for m in args.modes.split(",") if m]
    results = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for mode in modes:
        # Same model, optimizer and rows; only the micro-batching differs.
        updater.config.max_tokens_per_micro_batch = args.micro * args.seq if mode.startswith("token_budget") else None
        updater.config.packing = mode.endswith("packed")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        timed = time_mode(updater, batch, advantages, args.rows, args.repeats, device)
        results[mode] = {
            "logprob_tokens_per_s": round(tokens / timed["best"]["logprob_s"]),
            "update_tokens_per_s": round(tokens / timed["best"]["update_s"]),
            "padded_frac": round(timed["batching/padded_frac"], 4),
            "seconds": timed["seconds"],
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
            "update_model_tflops_per_s": round(6 * flop_parameters * tokens / timed["best"]["update_s"] / 1e12, 3),
        }
        if args.peak_tflops:
            results[mode]["update_mfu"] = round(results[mode]["update_model_tflops_per_s"] / args.peak_tflops, 4)
    record = {
        "benchmark": "update",
        "provenance": provenance(shlex.join(["python", *sys.argv])),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "shape": args.shape,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "config": vars(args),
        "lengths": lengths,
        "tokens_per_step": tokens,
        **results["fixed" if "fixed" in results else modes[0]],
        "modes": results,
    }
    if "fixed" in results:  # every mode as a ratio over fixed-count padded micro-batches, measured side by side
        fixed = results["fixed"]
        record["speedup_over_fixed"] = {mode: {
            "update": round(result["update_tokens_per_s"] / fixed["update_tokens_per_s"], 3),
            "logprob": round(result["logprob_tokens_per_s"] / fixed["logprob_tokens_per_s"], 3),
        } for mode, result in results.items() if mode != "fixed"}
    suffix = "" if args.lengths == "full" else f"_{args.lengths}"
    out = results_dir() / f"update_{args.shape}_{device.type}{suffix}.json"
    out.write_text(json.dumps(record, indent=2))
    print(json.dumps({k: record.get(k) for k in ("update_tokens_per_s", "peak_memory_gib", "speedup_over_fixed")}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
