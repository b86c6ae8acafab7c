"""asymrl: a pure-PyTorch RLVR trainer for AsymGRPO and its baselines."""

__version__ = "0.1.0"
