"""Running code in a fresh Python where ``import quarf_hf`` fails: what a user who has only
transformers installed sees when loading a saved folder with ``trust_remote_code=True``."""

import json
import subprocess
import sys

BLOCK_QUARF_HF = """
import sys
class _BlockQuarfHf:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "quarf_hf":
            raise ImportError("quarf_hf is blocked in this process")
sys.meta_path.insert(0, _BlockQuarfHf())
"""
# The adapter's code files, which every saved adapter folder must hold for trust_remote_code loading.
ADAPTER_CODE = ("modeling_quarf_adapter.py", "configuration_quarf_adapter.py", "adapter_targets.py", "adapter_calls.py",
                "adapter_layouts.py", "adapter_sharing.py")


def run_without_quarf_hf(code: str, cwd=None) -> dict:
    """Runs ``code`` after ``BLOCK_QUARF_HF``; returns the JSON the code printed last."""
    result = subprocess.run([sys.executable, "-c", BLOCK_QUARF_HF + code], cwd=cwd, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
