"""Generation memory and speed of the transformers engine at a large vocabulary (random weights).

    python benchmarks/generation.py                                    # CPU: tiny body, Qwen's 151,936 vocabulary
    python benchmarks/generation.py --device cuda --shape qwen2.5-0.5b --dtype bfloat16 --rows 64 --new-tokens 1024

Builds a random model of ``--shape`` (``benchmarks/common.py``) with the toy tokenizer, then samples
``--rows`` completions of ``--new-tokens`` tokens at temperature 1 through ``asymrl``'s transformers
engine, recording the sampled tokens' log-probs as training does. Reports generated tokens/s and the
peak memory generation added above the weights (CUDA: allocated; CPU: resident), beside what the
stacked per-step logits that the engine does not keep would take (rows x new tokens x vocabulary
float32). Writes ``benchmarks/results/generation_<shape>_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shlex
import sys
import tempfile
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from asymrl.rollout import SamplingParams, build_engine
from asymrl.toy.tokenizer import build_tokenizer
from asymrl.update import cpu_thread_setup
from common import SHAPES, provenance, results_dir  # benchmarks/common.py, beside this script


def resident_bytes() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="tiny-qwen-vocab", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    args = parser.parse_args()

    cpu_thread_setup()
    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    config = Qwen2Config(max_position_embeddings=args.prompt_tokens + args.new_tokens + 16, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **SHAPES[args.shape])
    cuda = args.device.startswith("cuda")
    with tempfile.TemporaryDirectory() as model_dir:
        Qwen2ForCausalLM(config).to(getattr(torch, args.dtype)).save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        engine = build_engine("transformers", model_dir, dtype=args.dtype, device=args.device,
                              max_model_len=args.prompt_tokens + args.new_tokens + 16)
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(10, 100, (args.prompt_tokens,), generator=generator).tolist() for _ in range(args.rows)]
    engine.generate(prompts[:2], SamplingParams(n=1, temperature=1.0, max_new_tokens=4, seed=0))  # warm-up
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if cuda else resident_bytes()
    start = time.perf_counter()
    groups = engine.generate(prompts, SamplingParams(n=1, temperature=1.0, max_new_tokens=args.new_tokens, seed=0))
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    # CPU: ru_maxrss is the process's peak, so the figure over-states, never under-states, generation's share.
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    generated = sum(len(group[0].response_ids) for group in groups)
    record = {
        "benchmark": "generation",
        "provenance": provenance(shlex.join(["python", *sys.argv])),
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
        "torch": torch.__version__,
        "shape": args.shape,
        "parameters_m": round(sum(p.numel() for p in engine.model.parameters()) / 1e6, 1),
        "config": vars(args),
        "generated_tokens": generated,
        "tokens_per_s": round(generated / seconds),
        "seconds": round(seconds, 3),
        "peak_added_gib": round((peak - before) / 2**30, 3),
        "memory_measure": "torch.cuda.max_memory_allocated" if cuda else "peak resident set (ru_maxrss) - resident before",
        "stacked_logits_would_be_gib": round(args.rows * args.new_tokens * config.vocab_size * 4 / 2**30, 2),
        "logprobs_recorded": all(len(group[0].response_logprobs) == len(group[0].response_ids) for group in groups),
    }
    engine.close()
    out = results_dir() / f"generation_{args.shape}_{'cuda' if cuda else 'cpu'}.json"
    out.write_text(json.dumps(record, indent=2))
    print(json.dumps({k: record[k] for k in ("tokens_per_s", "peak_added_gib", "stacked_logits_would_be_gib")}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
