"""``train.py`` that stops after logging step N and waits to be killed: a deterministic point at which
a test kills a run (polling for a checkpoint and killing raced the run's last steps on a fast machine).

    python tests/train_then_hang.py N [train.py arguments ...]

It prints ``HANGING AFTER STEP N`` once step N's metrics are written, then sleeps.
"""

import runpy
import sys
import time
from pathlib import Path

from asymrl.metrics import MetricsLog

if __name__ == "__main__":
    hang_after = int(sys.argv.pop(1))
    write = MetricsLog.log

    def log_then_hang(self, step, metrics):
        write(self, step, metrics)
        if step == hang_after:
            print(f"HANGING AFTER STEP {step}", flush=True)
            time.sleep(3600)

    MetricsLog.log = log_then_hang
    train = Path(__file__).resolve().parents[1] / "train.py"
    sys.argv[0] = str(train)
    runpy.run_path(str(train), run_name="__main__")
