"""Model cards: the one writer of every README.md that quarf-hf puts in a model folder.

``quarf-hf build`` (QuARF-SegFormer, restoration, CONTRIQUE, adapters), ``quarf-hf convert-contrique``,
the end of a training run and ``QuarfAdapter.save_pretrained`` (through :func:`write_adapter_card`,
which quarf_hf registers as the adapter's ``model_card_writer``) all call :func:`write_model_card`.
The card's YAML metadata is huggingface_hub's :class:`~huggingface_hub.ModelCardData`
(``library_name``, ``pipeline_tag``, ``tags``, ``license``, ``base_model``, and a ``model-index``
of :class:`~huggingface_hub.EvalResult` when there are evaluation results); what the model is,
its tags and the usage snippet follow from the model's config, so the same model gets the same
card whichever command wrote it.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..atomic import atomic_path
from ..models.checks import looks_like_hub_id
from ..models.conditioning import DEFAULT_CONDITIONING

# model_type -> the pipeline that serves it, its Hub tags and default license.
PIPELINE_TAGS = {
    "quarf_segformer": "image-segmentation",
    "segformer": "image-segmentation",
    "quarf_restoration": "image-to-image",
    "contrique": "image-feature-extraction",
    "quarf_adapter": None,  # blocks for someone else's network: no pipeline of their own
}
TAGS = {
    "quarf_segformer": ["quarf", "segformer", "image-segmentation", "degraded-images", "quality-adaptive"],
    "segformer": ["quarf", "segformer", "image-segmentation", "degraded-images", "quality-adaptive"],
    "quarf_restoration": ["quarf", "image-restoration", "degraded-images", "quality-adaptive", "diffusers-blocks"],
    "contrique": ["contrique", "image-quality-assessment", "quarf"],
    "quarf_adapter": ["quarf", "quarf-adapter", "image-quality", "adapter"],
}
DEFAULT_LICENSE = "apache-2.0"
SEGFORMER_KINDS = ("segformer", "quarf_segformer")
# SegFormer's weights (nvidia/mit-b*, nvidia/segformer-*) are under NVIDIA's own licence, not an SPDX one.
NVIDIA_LICENCE = {"license": "other", "license_name": "nvidia-segformer",
                  "license_link": "https://github.com/NVlabs/SegFormer/blob/master/LICENSE"}
# CONTRIQUE's public repository (github.com/pavancm/CONTRIQUE) has no licence file: claim none.
CONTRIQUE_LICENCE_NOTE = (
    "The CONTRIQUE authors' repository (https://github.com/pavancm/CONTRIQUE) publishes no licence, so no "
    "licence is claimed for weights converted from their checkpoint (`license: unknown`); ask the authors "
    "before redistributing them. quarf-hf's code that runs them is Apache-2.0.")
EMBEDDED_CONTRIQUE_NOTE = (
    "The frozen quality extractor inside this model is CONTRIQUE: weights converted from its authors' "
    "checkpoint carry no licence (https://github.com/pavancm/CONTRIQUE publishes none); ask them before "
    "redistributing such a model.")
NVIDIA_LICENCE_NOTE = (
    "The SegFormer weights come from NVIDIA's release and stay under NVIDIA's licence "
    "(https://github.com/NVlabs/SegFormer/blob/master/LICENSE; non-commercial research use); quarf-hf's "
    "code and the QuARF block are Apache-2.0.")

# Papers: (what, link, BibTeX). The Hub links arXiv papers named in a card to the model.
QUARF_PAPER = ("QuARF: Quality-Adaptive Receptive Fields for Degraded Image Perception (AAAI-25)",
               "https://ojs.aaai.org/index.php/AAAI/article/view/33836", """@inproceedings{gao2025quarf,
  title     = {QuARF: Quality-Adaptive Receptive Fields for Degraded Image Perception},
  author    = {Gao, F. and Zhou, Y. and Li, Z. and Han, W. and Shi, J. and Qiao, M. and others},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  volume    = {39},
  number    = {16},
  year      = {2025},
  doi       = {10.1609/aaai.v39i16.33836},
  url       = {https://ojs.aaai.org/index.php/AAAI/article/view/33836}
}""")
CONTRIQUE_PAPER = ("Image Quality Assessment using Contrastive Learning (CONTRIQUE, IEEE TIP 2022)",
                   "https://arxiv.org/abs/2110.13266", """@article{madhusudana2022contrique,
  title   = {Image Quality Assessment using Contrastive Learning},
  author  = {Madhusudana, Pavan C. and Birkbeck, Neil and Wang, Yilin and Adsumilli, Balu and Bovik, Alan C.},
  journal = {IEEE Transactions on Image Processing},
  year    = {2022},
  eprint  = {2110.13266},
  archivePrefix = {arXiv}
}""")
SEGFORMER_PAPER = ("SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers (NeurIPS 2021)",
                   "https://arxiv.org/abs/2105.15203", """@inproceedings{xie2021segformer,
  title     = {SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers},
  author    = {Xie, Enze and Wang, Wenhai and Yu, Zhiding and Anandkumar, Anima and Alvarez, Jose M. and Luo, Ping},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2021},
  eprint    = {2105.15203},
  archivePrefix = {arXiv}
}""")


def papers(config) -> list[tuple[str, str, str]]:
    """The papers a model of ``config`` rests on: QuARF for every QuARF model, SegFormer for SegFormers,
    CONTRIQUE for CONTRIQUE and for models routed by it."""
    kind = config.model_type
    quality = getattr(config, "quality", None)
    routed_by_contrique = isinstance(quality, dict) and quality.get("type") == "contrique"
    found = [] if kind == "contrique" else [QUARF_PAPER]
    if kind in SEGFORMER_KINDS:
        found.append(SEGFORMER_PAPER)
    if kind == "contrique" or routed_by_contrique:
        found.append(CONTRIQUE_PAPER)
    return found


def licence_fields(kind: str, license: str | None, base_model: str | None) -> tuple[dict, str | None]:
    """The card's licence metadata (``license`` and, for "other", ``license_name``/``license_link``) and
    a note for the card's text, from the licence asked for, the model type and its base model.

    SegFormers whose weights come from a base model (or published as "other") carry NVIDIA's licence;
    CONTRIQUE without an explicit licence is "unknown" (its authors publish none); else Apache-2.0.
    """
    if kind in SEGFORMER_KINDS and (license == "other" or (license is None and base_model)):
        return dict(NVIDIA_LICENCE), NVIDIA_LICENCE_NOTE
    if kind == "contrique" and license in (None, "unknown"):
        return {"license": "unknown"}, CONTRIQUE_LICENCE_NOTE
    return {"license": license or DEFAULT_LICENSE}, None
# Metric keys of evaluate_model's results -> (Hub metric type, display name).
METRICS = {"mIoU": ("mean_iou", "mIoU"), "pixel_accuracy": ("accuracy", "pixel accuracy"),
           "psnr": ("psnr", "PSNR (dB)"), "ssim": ("ssim", "SSIM")}


def describe(config) -> str:
    """What the model is, in a few sentences, from its config."""
    kind = config.model_type
    if kind == "quarf_segformer":
        return (f"SegFormer with a QuARF block (quality-adaptive receptive fields, AAAI-25) after encoder stage "
                f"{config.quarf_stage}'s patch embedding. A frozen {config.quality['type'].upper()} quality model "
                f"describes each input image and a router weights {len(config.quarf['experts'])} dilated-convolution "
                f"experts per channel group.")
    if kind == "quarf_restoration":
        conditioning = getattr(config, "conditioning", DEFAULT_CONDITIONING)
        block = {
            "route": ("a QuARF block (quality-adaptive receptive fields, AAAI-25) after the input convolution, routed "
                      f"by a frozen {config.quality['type'].upper()} quality model"),
            "film": ("a FiLM block after the input convolution: a per-channel scale and shift predicted from a frozen "
                     f"{config.quality['type'].upper()} quality model's features (no routing)"),
            "none": "no quality conditioning (the plain UNet)",
        }.get(conditioning, f"conditioning {conditioning!r}")
        return ("An image-restoration UNet built from diffusers' 2D UNet blocks (no timestep), with "
                f"{block}, and a global residual: output = input + predicted residual, in [0, 1], at the input's size.")
    if kind == "contrique":
        return ("CONTRIQUE (Madhusudana, Birkbeck, Wang, Adsumilli, Bovik: *Image Quality Assessment using "
                "Contrastive Learning*, IEEE TIP 2022) as a transformers model. It maps an RGB image in [0, 1] "
                f"(at least {config.min_image_size}x{config.min_image_size} pixels) to a {config.feature_dim}-d "
                "quality representation: L2-normalised global-average ResNet-50 features of the image and of a "
                "half-size copy. QuARF models use it as their frozen quality extractor.")
    if kind == "quarf_adapter":
        base = config.base_model or config.base_model_class or "a base network"
        return (f"QuARF blocks (quality-adaptive receptive fields, AAAI-25) and the frozen "
                f"{config.quality['type'].upper()} quality model that routes them, made for `{base}` "
                f"(`{config.base_model_class or 'unknown'}`). Attach them to that network to use them.")
    return "A plain SegFormer (the baseline arm of the QuARF comparison)."


REVISION_LINE = ('# Pin the code and weights you run: set REVISION to a commit hash from this repository\'s history\n'
                 '# (trust_remote_code runs the Python files of that commit).\nREVISION = "{revision}"\n')


def usage_snippet(model_type: str, reference: str, revision: str | None = None) -> str:
    """Python that loads ``reference`` (a Hub id or folder) at ``revision`` and runs it on an image file.

    ``revision``: the commit to pin (``"main"`` when unknown, with a line saying to pin a commit).
    """
    remote = "" if model_type == "segformer" else ", trust_remote_code=True"
    pin = REVISION_LINE.format(revision=revision or "main")
    load = f'"{reference}", revision=REVISION{remote}'
    if model_type == "quarf_restoration":
        return ("from transformers import pipeline\n\n" + pin +
                f'restorer = pipeline("quarf-restoration", model={load})\n'
                'restored = restorer("degraded.png")  # a PIL image of the input\'s size\n')
    if model_type == "quarf_adapter":
        return ("from transformers import AutoModel\n\n" + pin +
                "base = ...  # the base network, loaded as usual\n"
                f'adapter = AutoModel.from_pretrained({load})  # or quarf_hf.QuarfAdapter\n'
                "adapter.attach(base)      # the trained blocks now run inside `base`\n"
                "with adapter.disable_adapter():\n"
                "    ...                   # `base` without the blocks, for a comparison\n"
                "base = adapter.unload()   # the original network again\n")
    if model_type == "contrique":
        return ("from transformers import pipeline\n\n" + pin +
                f'extractor = pipeline("image-feature-extraction", model={load})\n'
                'features = extractor("image.png")  # the quality features, as nested lists\n')
    return ("from transformers import pipeline\n\n" + pin +
            f'segmenter = pipeline("image-segmentation", model={load})\n'
            'segments = segmenter("image.png")  # a list of {"label", "mask"}\n')


def eval_results(results: dict, model_type: str, dataset: str, split: str = "validation") -> list[EvalResult]:
    """``evaluate_model``'s results as Hub ``EvalResult`` entries (the card's ``model-index``): one
    dataset entry per condition (clean, each corruption at each severity, the mean over them).

    The Hub groups results by task, dataset type, config and split, so each condition is a
    dataset config (``clean``, ``shot_noise-2``, ``mean-corrupted``) with its own name.
    """
    conditions = [("clean", "clean", None, results.get("clean", {}))]
    for name, by_severity in results.get("corruptions", {}).items():
        for severity, metrics in by_severity.items():
            conditions.append((f"{name}, severity {severity}", f"{name}-{severity}",
                               {"corruption": name, "severity": int(severity)}, metrics))
    if results.get("mean_corrupted"):
        conditions.append(("mean over corruptions", "mean-corrupted", None, results["mean_corrupted"]))
    entries = []
    for label, subset, arguments, metrics in conditions:
        for key, (metric_type, metric_name) in METRICS.items():
            if isinstance(metrics.get(key), (int, float)):
                entries.append(EvalResult(
                    task_type=PIPELINE_TAGS[model_type], dataset_type=dataset, dataset_name=f"{dataset} ({label})",
                    dataset_config=subset, dataset_split=split, dataset_args=arguments, metric_type=metric_type,
                    metric_name=metric_name, metric_value=float(metrics[key]),
                ))
    return entries


def write_model_card(folder, config, *, title: str, provenance: str, reference: str, base_model: str | None = None,
                     license: str | None = None, evaluation: dict | None = None, dataset: str | None = None,
                     description: str | None = None, extra_tags: list[str] | None = None,
                     extra_sections: dict | None = None, datasets: list[str] | None = None,
                     base_model_relation: str | None = None, revision: str | None = None) -> Path:
    """Writes ``folder/README.md`` (atomically) for a model with ``config``; returns its path.

    Args:
        folder (`str` or `Path`): the model folder.
        config (`PretrainedConfig`): the model's config; its ``model_type`` picks the pipeline tag,
            tags, default license, description and usage snippet.
        title (`str`): the card's heading (and the ``model-index`` name).
        provenance (`str`): where the weights come from (appended to the description).
        reference (`str`): the Hub id or folder the usage snippet loads.
        base_model (`str`, *optional*): the checkpoint the weights start from.
        license (`str`, *optional*): an SPDX id; "other" for a SegFormer means NVIDIA's licence (named and
            linked). Unset: NVIDIA's for a SegFormer with a base model, "unknown" for CONTRIQUE (no
            licence upstream), ``apache-2.0`` otherwise (see :func:`licence_fields`).
        evaluation (`dict`, *optional*): ``evaluate_model``'s results: an "Evaluation" table and a ``model-index``.
        dataset (`str`, *optional*, defaults to `"validation"`): the evaluation data's name in the ``model-index``.
        description (`str`, *optional*): replaces the description made from ``config`` (e.g. a
            quality encoder trained by ``quarf-hf train-quality`` rather than CONTRIQUE itself).
        extra_tags (`list[str]`, *optional*): Hub tags added to the model type's.
        extra_sections (`dict`, *optional*): heading -> Markdown text, after the usage section.
        datasets (`list[str]`, *optional*): Hub ids of the training data, for the card's ``datasets``.
        base_model_relation (`str`, *optional*): ``"adapter"``, ``"finetune"``, ... (the Hub's words).
        revision (`str`, *optional*): the commit the usage snippet pins (``"main"`` with a note when unset).

    Every card links its papers (QuARF; SegFormer, CONTRIQUE where they apply) and ends with their BibTeX.
    """
    kind = config.model_type
    licence, licence_note = licence_fields(kind, license, base_model)
    cited = papers(config)
    sections = [f"# {title}", f"{description or describe(config)} {provenance}".strip(),
                "Papers: " + "; ".join(f"[{name}]({link})" for name, link, _ in cited) + ".",
                "## Usage", f"```python\n{usage_snippet(kind, reference, revision).strip()}\n```"]
    for heading, text in (extra_sections or {}).items():
        sections += [f"## {heading}", text.strip()]
    quality = getattr(config, "quality", None)
    if kind != "contrique" and isinstance(quality, dict) and quality.get("type") == "contrique":
        # The extractor's weights travel inside this model: say what they are under.
        licence_note = " ".join(filter(None, [licence_note, EMBEDDED_CONTRIQUE_NOTE]))
    if licence_note:
        sections += ["## Licence", licence_note]
    results = None
    if evaluation:
        from ..evaluation import markdown_table

        sections += ["## Evaluation",
                     "On the validation data, clean and degraded (fixed seeds):\n\n" + markdown_table(evaluation).strip()]
        results = eval_results(evaluation, kind, dataset or "validation") or None
    data = ModelCardData(
        library_name="transformers", pipeline_tag=PIPELINE_TAGS.get(kind),
        tags=list(dict.fromkeys([*TAGS[kind], *(extra_tags or [])])),
        **licence, base_model=base_model, base_model_relation=base_model_relation if base_model else None,
        datasets=datasets or None, model_name=title if results else None, eval_results=results,
    )
    sections += ["## Citation", "\n\n".join(f"```bibtex\n{bibtex}\n```" for _, _, bibtex in cited)]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
    path = Path(folder) / "README.md"
    with atomic_path(path) as temporary:
        card.save(temporary)
    return path


__all__ = ["write_model_card", "describe", "usage_snippet", "eval_results", "licence_fields", "papers"]


def write_adapter_card(folder, adapter, repo_id: str | None = None, *, title: str | None = None,
                       license: str | None = None, note: str | None = None) -> Path:
    """Writes ``folder/README.md`` for a saved :class:`~quarf_hf.QuarfAdapter`: the base network, the
    blocks (where they attach, channels, experts, groups, mode) and how to attach them.

    ``QuarfAdapter.save_pretrained`` calls it (quarf_hf registers it as the adapter's ``model_card_writer``);
    ``quarf-hf build`` calls it again with a published variant's ``title`` (its name), ``license`` and a
    ``note`` added to the provenance.
    """
    config = adapter.config
    base = config.base_model
    rows = "\n".join(
        f"| `{a['after']}` | {a['in_channels']} | {len(a['quarf']['experts'])} | {a['quarf']['num_groups']} | {a['quarf']['mode']} |"
        for a in config.attachments
    )
    size = sum(t.numel() * t.element_size() for t in adapter.state_dict().values())
    blocks = ("| attached after | channels | experts | groups | mode |\n|---|---|---|---|---|\n" + rows +
              f"\n\nPixel input normalisation of the base network: mean {config.pixel_mean}, std {config.pixel_std}.")
    return write_model_card(
        folder, config, title=title or f"QuARF adapter for `{base or config.base_model_class}`",
        provenance=" ".join(filter(None, [
            f"This repository holds only the adapter ({size / 1e6:.2f} MB of weights), not the base network's weights.",
            note])),
        reference=repo_id or "THIS_REPO", license=license, base_model=base if base and looks_like_hub_id(base) and not Path(base).exists() else None,
        base_model_relation="adapter", extra_sections={"Blocks": blocks},
    )
