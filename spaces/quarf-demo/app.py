"""QuARF Space: degrade a photo and watch QuARF restore (and segment) it and its routing adapt.

Models: RESTORATION_MODEL and PLAIN_RESTORATION_MODEL, QUARF_MODEL and BASELINE_MODEL, each a Hub
id or a folder; with none set, the folders `quarf-hf demo` writes (outputs/demo/restoration/quarf,
outputs/demo/restoration/plain, outputs/demo/quarf, outputs/demo/augmentation). The page itself
lives in quarf_hf/space/ (shared with `quarf-hf space`).
"""

import sys
from pathlib import Path

# In a source checkout (spaces/quarf-demo/ inside it) use that checkout's package.
_CHECKOUT = Path(__file__).resolve().parents[2]
if (_CHECKOUT / "quarf_hf" / "__init__.py").is_file() and str(_CHECKOUT) not in sys.path:
    sys.path.insert(0, str(_CHECKOUT))

from quarf_hf.space import build_app  # noqa: E402

demo = build_app()

if __name__ == "__main__":
    # 127.0.0.1 by default; a hosted Space sets GRADIO_SERVER_NAME=0.0.0.0 itself.
    demo.launch(show_error=True)
