#!/usr/bin/env python
"""Train a policy with RLVR.

    accelerate launch [--config_file launch/<setup>.yaml] train.py --config configs/<run>.yaml [key=value ...]
    python train.py --config configs/toy_asymgrpo.yaml train.total_steps=20

Everything happens in ``asymrl.trainer.Trainer``; this file only parses the command line.
"""

from asymrl.config import parse_args
from asymrl.trainer import Trainer


def main(argv: list[str] | None = None) -> dict:
    summary = Trainer(parse_args(argv)).train()
    print(summary)
    return summary


if __name__ == "__main__":  # the guard matters: vLLM engines spawn worker processes
    main()
