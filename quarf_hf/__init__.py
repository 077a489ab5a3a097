"""quarf-hf: Quality-Adaptive Receptive Fields (QuARF, AAAI-25) as Hub-native models.

Importing the package registers its configs and models with transformers' Auto classes, and
marks them to be saved with their code (``auto_map``), so saved folders also load with
``trust_remote_code=True`` where this package is not installed.
"""

from transformers import AutoConfig, AutoModel, AutoModelForSemanticSegmentation

from .models.brisque import BrisqueFeatures
from .models.configuration_contrique import ContriqueConfig
from .models.configuration_quarf import QuarfBlockConfig
from .models.configuration_quarf_adapter import QuarfAdapterConfig
from .models.configuration_quarf_restoration import QuarfRestorationConfig
from .models.configuration_quarf_segformer import QuarfSegformerConfig
from .hub.model_card import write_adapter_card
from .insertion import insert_quarf
from .models.input_checks import no_value_checks
from .models.modeling_contrique import ContriqueModel
from .models.modeling_quarf import QuarfBlockModel
from .models.modeling_quarf_adapter import QuarfAdapter
from .models.modeling_quarf_restoration import QuarfRestorationModel
from .models.modeling_quarf_segformer import QuarfSegformerForSemanticSegmentation, QuarfSegformerModel
from .models.pipeline_quarf_restoration import register_restoration_pipeline
from .models.quality import build_quality_extractor, extract_quality
from .models.quarf import QuARF, QuarfConfig, quarf_aux_loss, quarf_blocks, receptive_field

__version__ = "0.1.0"


def _register_auto_classes() -> None:
    AutoConfig.register(ContriqueConfig.model_type, ContriqueConfig, exist_ok=True)
    AutoModel.register(ContriqueConfig, ContriqueModel, exist_ok=True)
    AutoConfig.register(QuarfSegformerConfig.model_type, QuarfSegformerConfig, exist_ok=True)
    AutoModel.register(QuarfSegformerConfig, QuarfSegformerModel, exist_ok=True)
    AutoModelForSemanticSegmentation.register(QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation, exist_ok=True)
    AutoConfig.register(QuarfRestorationConfig.model_type, QuarfRestorationConfig, exist_ok=True)
    AutoModel.register(QuarfRestorationConfig, QuarfRestorationModel, exist_ok=True)
    AutoConfig.register(QuarfBlockConfig.model_type, QuarfBlockConfig, exist_ok=True)
    AutoModel.register(QuarfBlockConfig, QuarfBlockModel, exist_ok=True)
    AutoConfig.register(QuarfAdapterConfig.model_type, QuarfAdapterConfig, exist_ok=True)
    AutoModel.register(QuarfAdapterConfig, QuarfAdapter, exist_ok=True)
    # save_pretrained then writes auto_map and copies the code files next to the weights.
    ContriqueConfig.register_for_auto_class()
    ContriqueModel.register_for_auto_class("AutoModel")
    QuarfSegformerConfig.register_for_auto_class()
    QuarfSegformerModel.register_for_auto_class("AutoModel")
    QuarfSegformerForSemanticSegmentation.register_for_auto_class("AutoModelForSemanticSegmentation")
    QuarfRestorationConfig.register_for_auto_class()
    QuarfRestorationModel.register_for_auto_class("AutoModel")
    QuarfBlockConfig.register_for_auto_class()
    QuarfBlockModel.register_for_auto_class("AutoModel")
    QuarfAdapterConfig.register_for_auto_class()
    QuarfAdapter.register_for_auto_class("AutoModel")
    register_restoration_pipeline()
    # models/ may not import the tooling: the adapter's card comes from the one card writer through this.
    QuarfAdapter.model_card_writer = write_adapter_card


_register_auto_classes()

__all__ = [
    "QuARF",
    "QuarfConfig",
    "QuarfBlockConfig",
    "QuarfBlockModel",
    "QuarfAdapterConfig",
    "QuarfAdapter",
    "quarf_aux_loss",
    "quarf_blocks",
    "receptive_field",
    "BrisqueFeatures",
    "ContriqueConfig",
    "ContriqueModel",
    "build_quality_extractor",
    "extract_quality",
    "QuarfSegformerConfig",
    "QuarfSegformerModel",
    "QuarfSegformerForSemanticSegmentation",
    "QuarfRestorationConfig",
    "QuarfRestorationModel",
    "insert_quarf",
    "no_value_checks",
]
