"""Peak memory and time of per-token log-probs + entropy: chunked (asymrl) vs. full logits.

    python benchmarks/logprobs.py                      # CPU, small sizes
    python benchmarks/logprobs.py --device cuda --tokens 32768 --vocab 151936 --hidden 896 --dtype bfloat16

Forward and backward through an LM head of ``vocab x hidden`` on ``tokens`` hidden states (the
Qwen2.5-0.5B head is 151,936 x 896). Writes ``benchmarks/results/logprobs_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from asymrl.logprobs import chunked_logprobs_and_entropy, logprobs_and_entropy_from_logits
from common import provenance  # benchmarks/common.py, beside this script


def run(method: str, hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor, chunk_size: int) -> dict:
    device = hidden.device
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        torch.cuda.synchronize()
    rows = hidden.detach().clone().requires_grad_()
    start = time.perf_counter()
    try:
        if method == "chunked":
            logp, entropy = chunked_logprobs_and_entropy(rows, head, targets, chunk_size=chunk_size)
        else:
            logp, entropy = logprobs_and_entropy_from_logits(head(rows), targets)
        (logp.sum() + 0.01 * entropy.sum()).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
    except torch.OutOfMemoryError:
        return {"method": method, "status": "out of memory"}
    seconds = time.perf_counter() - start
    result = {"method": method, "status": "ok", "seconds": round(seconds, 4), "logp_sum": float(logp.detach().sum())}
    if device.type == "cuda":
        result["peak_extra_gib"] = round((torch.cuda.max_memory_allocated() - base) / 2**30, 3)
    head.zero_grad(set_to_none=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    head = torch.nn.Linear(args.hidden, args.vocab, bias=False).to(args.device, dtype)
    hidden = torch.randn(args.tokens, args.hidden, device=args.device, dtype=dtype)
    targets = torch.randint(0, args.vocab, (args.tokens,), device=args.device)
    results = []
    for method in ("chunked", "full"):
        runs = [run(method, hidden, head, targets, args.chunk_size) for _ in range(args.repeats)]
        best = min((r for r in runs if r["status"] == "ok"), key=lambda r: r["seconds"], default=runs[-1])
        results.append(best)
        print(best)
    record = {
        "benchmark": "logprobs",
        "provenance": provenance(shlex.join(["python", *sys.argv])),
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__,
        "config": vars(args) | {"out": None},
        "full_logits_float32_gib": round(args.tokens * args.vocab * 4 / 2**30, 2),
        "results": results,
    }
    out = args.out or Path(__file__).parent / "results" / f"logprobs_{args.device.split(':')[0]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
