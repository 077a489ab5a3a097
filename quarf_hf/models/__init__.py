"""Everything ``save_pretrained`` ships to the Hub with a model, in one flat folder.

transformers copies a model's ``modeling_*.py`` and, recursively, its single-dot imports from
this folder into every saved model folder, so a user with only transformers installed can load
it with ``trust_remote_code=True``. Files here therefore import only torch, transformers,
diffusers, the standard library, numpy/PIL and each other (with a single dot);
``tests/test_layout.py`` enforces it.
"""

from .brisque import BrisqueFeatures
from .configuration_contrique import ContriqueConfig
from .configuration_quarf_restoration import QuarfRestorationConfig
from .configuration_quarf_segformer import QuarfSegformerConfig
from .modeling_contrique import ContriqueModel
from .modeling_quarf_restoration import QuarfRestorationModel
from .modeling_quarf_segformer import QuarfSegformerForSemanticSegmentation, QuarfSegformerModel
from .quality import build_quality_extractor, extract_quality
from .quarf import QuARF, QuarfConfig, quarf_aux_loss, quarf_blocks, receptive_field
from .configuration_quarf import QuarfBlockConfig
from .configuration_quarf_adapter import QuarfAdapterConfig
from .modeling_quarf import QuarfBlockModel
from .modeling_quarf_adapter import QuarfAdapter
