"""Entry point for ``accelerate launch -m quarf_hf.train CONFIG.yaml`` (and ``torchrun -m``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
