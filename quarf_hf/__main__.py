"""``python -m quarf_hf COMMAND ...``: the ``quarf-hf`` command line, as a module, for launchers that
start modules, with the same words as ``quarf-hf``::

    accelerate launch -m quarf_hf train CONFIG.yaml
    accelerate launch -m quarf_hf train-quality CONFIG.yaml
    torchrun --nproc_per_node 2 -m quarf_hf train CONFIG.yaml
"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
