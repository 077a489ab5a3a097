"""quarf-hf: Quality-Adaptive Receptive Fields (QuARF, AAAI-25) as Hub-native models."""

from .quarf import QuARF, QuarfConfig, quarf_aux_loss, quarf_blocks, receptive_field

__version__ = "0.1.0"

__all__ = ["QuARF", "QuarfConfig", "quarf_aux_loss", "quarf_blocks", "receptive_field"]
