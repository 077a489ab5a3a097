"""Entry point for ``accelerate launch -m quarf_hf.train_quality CONFIG.yaml`` (and ``torchrun -m``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["train-quality", *sys.argv[1:]]))
