#!/usr/bin/env python
"""Train a policy with RLVR.

    accelerate launch [--config_file launch/<setup>.yaml] train.py --config configs/<run>.yaml [key=value ...]
    python train.py --config configs/toy_asymgrpo.yaml train.total_steps=20

Everything happens in ``asymrl.trainer.Trainer``; this file only parses the command line and
prints the outcome.
"""

import sys

from asymrl.config import ConfigError, parse_args


def percent(value, missing: str = "n/a") -> str:
    return missing if value is None else f"{100 * value:.1f}%"


def main(argv: list[str] | None = None) -> dict:
    from asymrl.data import DataError

    try:
        config = parse_args(argv)
        from asymrl.trainer import Trainer

        trainer = Trainer(config)
    except (ConfigError, DataError) as error:  # what the user must fix: one message, no traceback
        print(f"train.py: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    summary = trainer.train()
    if trainer.accelerator.is_main_process:
        start = "not measured (eval.at_start=false)" if not config.eval.at_start else "n/a"
        sampled = (f"validation accuracy, sampled: {percent(summary['initial_val_sampled_accuracy'], start)} -> "
                   f"{percent(summary['final_val_sampled_accuracy'])}\n" if config.eval.sampled_n else "")  # eval.sampled_n=0: none taken
        print(
            f"\nvalidation accuracy, greedy:  {percent(summary['initial_val_accuracy'], start)} -> {percent(summary['final_val_accuracy'])}"
            f"  (best {percent(summary['best_val_accuracy'])} at step {summary['best_step']})\n"
            f"{sampled}"
            f"{summary['steps']} steps in {summary['wall_s']:.0f} s. Run directory: {summary['run_dir']}\n"
            f"  metrics.jsonl, summary.json, best/ (a transformers model), checkpoints/\n"
            f"  tensorboard --logdir {summary['run_dir']}/tensorboard"
        )
    return summary


if __name__ == "__main__":  # the guard matters: vLLM engines spawn worker processes
    main()
