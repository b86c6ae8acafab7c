"""Build the embedded base policy: task splits, tokenizer, and a small Llama warm-started by SFT.

    python -m asymrl.toy.build --preset tiny            # ~6 minutes on 2 CPU cores
    python -m asymrl.toy.build --preset small --device cuda

Deterministic for a given preset, seed and thread count. The result is a standard transformers model
directory (``config.json``, ``model.safetensors``, ``tokenizer.json`` with a chat template,
``generation_config.json``) that ``AutoModelForCausalLM`` and ``vllm.LLM`` load. The tiny preset is
committed (``src/asymrl/toy/assets/tiny``); ``ensure_base_policy`` builds any other into the cache.

SFT is stopped early on purpose: the base policy should solve a fair share of problems, make local
mistakes on the rest, and disagree with itself across samples, so that RL has something to learn.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from asymrl.prompts import render_prompt
from asymrl.toy import cache_root
from asymrl.toy.tokenizer import build_tokenizer

VERSION = "v3"
ASSETS = Path(__file__).parent / "assets"


@dataclass
class Preset:
    """Model shape and SFT schedule of a preset (every knob visible)."""

    hidden_size: int
    layers: int
    heads: int
    kv_heads: int
    intermediate_size: int
    sft_steps: int
    schedule_steps: int  # the cosine schedule's horizon: SFT stops at sft_steps, before it ends
    batch_size: int
    lr: float
    warmup_steps: int = 100
    weight_decay: float = 0.01
    max_positions: int = 160
    level_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    task: str = "toy"  # the task (asymrl.tasks) it is warm-started on: toy (arithmetic, asymrl.toy.task) or paths (asymrl.toy.paths)


PRESETS = {
    # ~1.1M parameters, 4.4 MB in float32: small enough to commit, fast enough for CPU RL.
    # Stopped at 800 of 3,000 scheduled steps: right on most column steps, unsure on some, which
    # leaves most groups of 8 samples mixed (3,000 steps nearly solve levels 1-2 and leave RL little).
    "tiny": Preset(hidden_size=128, layers=4, heads=4, kv_heads=2, intermediate_size=384, sft_steps=800, schedule_steps=3000, batch_size=32, lr=3e-3),
    # ~30M parameters, meant for one GPU. Measured on an H100 (benchmarks/results/toy_small_policy_cuda.json):
    # 55.5% greedy / 49.4% sampled at step 250, 87.2% / 81.2% at 1,500, so it stops at 250.
    "small": Preset(hidden_size=512, layers=8, heads=8, kv_heads=4, intermediate_size=1536, sft_steps=250, schedule_steps=6000, batch_size=128, lr=1e-3),
    # The tiny shape warm-started on the path-finding task (asymrl.toy.paths), stopped at 1,000 of 3,000
    # scheduled steps. Snapshots of one run, pass@1 / pass@8 (T = 1, 300 validation problems, n = 16):
    # step 800 18% / 68%, 1,000 25% / 75%, 1,400 44% / 88%, 2,000 67% / 98%: at 1,000 most groups of 8
    # are mixed and more samples still solve more (benchmarks/results/paths_base_policy.json).
    "paths": Preset(hidden_size=128, layers=4, heads=4, kv_heads=2, intermediate_size=384, sft_steps=1000, schedule_steps=3000, batch_size=32, lr=3e-3, max_positions=64, task="paths"),
}
# Deeper SFT of the same run (the same schedule, stopped later): lower starting entropy, for the
# collapse sweep's SFT-depth knob (python -m asymrl.sweep; built into the cache on first use).
for _steps in (1400, 2000):
    PRESETS[f"paths_sft{_steps}"] = dataclasses.replace(PRESETS["paths"], sft_steps=_steps)


# Presets whose policy is committed (src/asymrl/toy/assets/<preset>); the others are built into the cache.
COMMITTED = ("tiny", "paths")


def task_files(preset_name: str) -> dict[str, Path]:
    """The sft / train / validation / test files of the task a preset is warm-started on."""
    from asymrl import tasks

    return dict(tasks.get(PRESETS[preset_name].task).files())


def ensure_base_policy(preset: str = "tiny") -> Path:
    """The base policy directory: the committed copy if there is one, else built into the cache."""
    committed = ASSETS / preset
    if (committed / "model.safetensors").is_file():
        return committed
    cached = cache_root() / f"{preset}-{VERSION}" / "policy"
    if not (cached / "model.safetensors").is_file():
        print(f"building the '{preset}' base policy into {cached} (once)")
        build(preset, cached)
    return cached


def resolve_model_dir(path: str) -> Path | str:
    """A model path as the trainer and ``asymrl.evaluate`` take it: ``toy:<preset>`` names the embedded
    base policy (built and cached on first use); anything else (a folder, a hub id) is returned as is."""
    if path.startswith("toy:"):
        return ensure_base_policy(path.split(":", 1)[1])
    return path


def model_context(model_dir, trust_remote_code: bool = False) -> int | None:
    """The positions a model was built for (its config's ``max_position_embeddings``; None when it
    states none)."""
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code), "max_position_embeddings", None)


def model_config(preset: Preset, tokenizer) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=preset.hidden_size, intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.layers, num_attention_heads=preset.heads, num_key_value_heads=preset.kv_heads,
        max_position_embeddings=preset.max_positions, tie_word_embeddings=True, rms_norm_eps=1e-5,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def encode_examples(rows: list[dict], tokenizer) -> list[tuple[list[int], int]]:
    """(token ids of prompt + solution + eos, prompt length) per row."""
    encoded = []
    for row in rows:
        prompt = render_prompt(row["problem"], tokenizer, "{problem}")
        prompt_ids = tokenizer(prompt)["input_ids"]
        answer_ids = tokenizer(row["solution"])["input_ids"] + [tokenizer.eos_token_id]
        encoded.append((prompt_ids + answer_ids, len(prompt_ids)))
    return encoded


def make_batch(examples: list[tuple[list[int], int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded input ids, attention mask, and labels that score only the solution tokens."""
    length = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), length), pad_id)
    labels = torch.full((len(examples), length), -100)
    attention = torch.zeros((len(examples), length), dtype=torch.long)
    for row, (ids, prompt_length) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        labels[row, prompt_length : len(ids)] = torch.tensor(ids[prompt_length:])
    return input_ids, attention, labels


def save_policy(model, tokenizer, out_dir: Path, info: dict) -> None:
    """A standard transformers model directory plus ``asymrl_toy.json`` (how it was built)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=96, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "asymrl_toy.json").write_text(json.dumps(info, indent=2))


def build(preset_name: str, out_dir: Path, *, device: str = "cpu", seed: int = 0, max_steps: int | None = None,
          snapshot_steps: tuple[int, ...] = ()) -> Path:
    """Generate the task, train the base policy by SFT, and save it to ``out_dir``; also save a copy
    at each of ``snapshot_steps`` (to ``<out_dir>_step<N>``), to choose how far to warm-start."""
    preset = PRESETS[preset_name]
    torch.manual_seed(seed)
    rng = random.Random(seed)
    data = task_files(preset_name)
    sft_rows = [json.loads(line) for line in data["sft"].read_text().splitlines()]
    tokenizer = build_tokenizer()
    examples = encode_examples(sft_rows, tokenizer)
    model = LlamaForCausalLM(model_config(preset, tokenizer)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=preset.lr, weight_decay=preset.weight_decay, betas=(0.9, 0.98))
    steps = max_steps or preset.sft_steps

    def lr_at(step: int) -> float:
        if step < preset.warmup_steps:
            return (step + 1) / preset.warmup_steps
        progress = (step - preset.warmup_steps) / max(1, preset.schedule_steps - preset.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    model.train()
    started = time.time()
    progress = tqdm(range(steps), desc=f"SFT {preset_name}", dynamic_ncols=True)
    for step in progress:
        batch = [examples[rng.randrange(len(examples))] for _ in range(preset.batch_size)]
        input_ids, attention, labels = (t.to(device) for t in make_batch(batch, tokenizer.pad_token_id))
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % 50 == 0:
            progress.set_postfix(loss=f"{loss.item():.3f}")
        if step + 1 in snapshot_steps and step + 1 < steps:
            save_policy(model, tokenizer, Path(f"{out_dir}_step{step + 1}"), {"preset": preset_name, "sft_steps": step + 1})
    info = {
        **asdict(preset), "preset": preset_name, "version": VERSION, "seed": seed, "sft_steps": steps,
        "final_loss": round(loss.item(), 4), "build_seconds": round(time.time() - started, 1), "threads": torch.get_num_threads(),
    }
    save_policy(model.cpu().eval(), tokenizer, out_dir, info)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m asymrl.toy.build", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--out", type=Path, default=None, help="default: the committed assets folder for tiny, else the cache")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None, help="stop SFT early (smoke tests)")
    parser.add_argument("--snapshots", default="", help="comma-separated SFT steps at which to save extra copies")
    args = parser.parse_args()
    out = args.out or (ASSETS / args.preset if args.preset in COMMITTED else cache_root() / f"{args.preset}-{VERSION}" / "policy")
    snapshots = tuple(int(v) for v in args.snapshots.split(",") if v)
    print(f"wrote {build(args.preset, out, device=args.device, seed=args.seed, max_steps=args.max_steps, snapshot_steps=snapshots)}")


if __name__ == "__main__":
    main()
