"""Hub metadata that is true and complete, read back with huggingface_hub's ModelCard.load: licences
(NVIDIA's for SegFormer weights, none claimed for CONTRIQUE), paper links and BibTeX in every card,
datasets where known, base_model_relation for adapters and fine-tunes."""

import warnings

import pytest
import torch
from huggingface_hub import ModelCard

import quarf_hf  # noqa: F401  (registers the Auto classes)
from quarf_hf.hub.build import build, load_hub_config
from quarf_hf.hub.convert_contrique import build_contrique_folder
from quarf_hf.hub.model_card import CONTRIQUE_PAPER, QUARF_PAPER, SEGFORMER_PAPER
from tiny_models import make_sam

QUARF_LINK, SEGFORMER_LINK, CONTRIQUE_LINK = QUARF_PAPER[1], SEGFORMER_PAPER[1], CONTRIQUE_PAPER[1]


def check_papers(card, links):
    assert "## Citation" in card.content and card.content.count("```bibtex") == len(links)
    for link in links:
        assert f"]({link})" in card.content, link


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("built")
    make_sam().save_pretrained(root / "sam")  # stands in for facebook/sam-vit-base
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "segformer": build("quarf-segformer-b0", root / "b0", quality="brisque"),
            "restoration": build("quarf-restoration-small", root / "restoration", quality="brisque"),
            "contrique": build_contrique_folder(root / "contrique", name="contrique-resnet50"),
            "sam": build("quarf-sam-vit-base", root / "sam-adapter", base=str(root / "sam")),
        }


def test_segformer_card_names_nvidias_licence(built):
    card = ModelCard.load(built["segformer"] / "README.md")
    assert load_hub_config("quarf-segformer-b0")["license"] == "other"
    assert card.data.license == "other" and card.data.license_name == "nvidia-segformer"
    assert card.data.license_link == "https://github.com/NVlabs/SegFormer/blob/master/LICENSE"
    assert "## Licence" in card.content and "NVIDIA" in card.content
    check_papers(card, [QUARF_LINK, SEGFORMER_LINK])


def test_contrique_card_claims_no_licence(built):
    card = ModelCard.load(built["contrique"] / "README.md")
    assert load_hub_config("contrique-resnet50")["license"] == "unknown"
    assert card.data.license == "unknown" and "publishes no licence" in card.content
    check_papers(card, [CONTRIQUE_LINK])
    assert "arxiv.org/abs/2110.13266" in card.content and "eprint  = {2110.13266}" in card.content


def test_restoration_card_cites_quarf(built):
    card = ModelCard.load(built["restoration"] / "README.md")
    assert card.data.license == "apache-2.0" and card.data.pipeline_tag == "image-to-image"
    check_papers(card, [QUARF_LINK])
    assert "doi       = {10.1609/aaai.v39i16.33836}" in card.content


def test_sam_adapter_card_is_an_adapter_of_sam(built):
    """The published SAM adapter (built on a local stand-in) names facebook/sam-vit-base as its base, as an
    adapter, under the variant's licence (SAM's Apache-2.0: the folder holds none of SAM's weights)."""
    card = ModelCard.load(built["sam"] / "README.md")
    data = load_hub_config("quarf-sam-vit-base")
    assert data["license"] == "apache-2.0" and card.data.license == "apache-2.0"
    assert card.data.base_model == "facebook/sam-vit-base" == data["base_model"]
    assert card.data.base_model_relation == "adapter" and card.data.pipeline_tag is None
    assert "## Blocks" in card.content and "`vision_encoder.patch_embed`" in card.content
    check_papers(card, [QUARF_LINK])


def test_contrique_routed_models_say_what_their_extractor_is_under(tmp_path):
    from quarf_hf.hub.model_card import write_model_card

    config = quarf_hf.QuarfRestorationConfig(block_out_channels=[8, 16], norm_num_groups=4, quality="contrique")
    write_model_card(tmp_path, config, title="t", provenance="p", reference="owner/model", license="apache-2.0")
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.license == "apache-2.0" and "## Licence" in card.content and "carry no licence" in card.content
    check_papers(card, [QUARF_LINK, CONTRIQUE_LINK])


def test_adapter_card_is_an_adapter_of_its_base(tmp_path):
    from quarf_hf import QuarfAdapter

    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1))
    adapter = QuarfAdapter.for_model(cnn, after="0", quality="brisque", base_model="owner/base-net",
                                     num_groups=2, experts=[[3, 1], [3, 2]])
    adapter.save_pretrained(tmp_path / "adapter")
    card = ModelCard.load(tmp_path / "adapter" / "README.md")
    assert card.data.base_model == "owner/base-net" and card.data.base_model_relation == "adapter"
    check_papers(card, [QUARF_LINK])


def test_fine_tuned_card_lists_its_hub_datasets_and_base(tmp_path):
    from quarf_hf.hub.model_card import write_model_card
    from quarf_hf.training import TrainConfig
    from quarf_hf.training.export import _hub_datasets

    config = TrainConfig.from_dict({"output_dir": str(tmp_path / "run"),
                                    "data": {"train": {"type": "datasets", "source": "owner/street-scenes"},
                                             "validation": {"type": "quarf-shapes"}}})
    assert _hub_datasets(config) == ["owner/street-scenes"]
    write_model_card(tmp_path, quarf_hf.QuarfSegformerConfig(quality="brisque"), title="t", provenance="p",
                     reference="owner/model", base_model="nvidia/mit-b0", base_model_relation="finetune",
                     datasets=_hub_datasets(config))
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.datasets == ["owner/street-scenes"] and card.data.base_model == "nvidia/mit-b0"
    assert card.data.base_model_relation == "finetune" and card.data.license_name == "nvidia-segformer"
