"""The Space's page (``gr.Blocks``): degrade an image, watch the segmentation and QuARF's routing.

``spaces/quarf-demo/app.py`` and ``quarf-hf space`` both call :func:`build_app`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from . import inference, plots
from ..models.checks import InputError
from ..models.image_utils import to_uint8
from .images import MAX_SIDE, fit_to_cap, load_upload
from .models import GET_A_MODEL, SpaceModels, load_space_models, project_roots

logger = logging.getLogger(__name__)

CONCURRENCY = 2          # requests computed at once (the rest wait in the queue)
QUEUE_SIZE = 64          # requests that may wait; more get "queue full"
DEFAULT_MIN_SIDE = 32    # smallest side accepted when no model says otherwise
SEVERITIES = list(range(6))
NATURAL_IMAGES = Path("..") / "shared" / "data" / "natural-images"
PHOTO_SETTINGS = [("fog", 3), ("shot_noise", 4), ("motion_blur", 3), ("jpeg_compression", 5), ("defocus_blur", 2),
                  ("rain", 3), ("low_light", 4)]
SCENE_SETTINGS = [("gaussian_noise", 3), ("defocus_blur", 4), ("contrast", 4)]

try:  # ZeroGPU: the functions that run models get a GPU for the call; elsewhere they run unchanged
    import spaces  # type: ignore[import-not-found]

    _gpu = spaces.GPU
except (ImportError, AttributeError):  # no `spaces` package (or only this repository's spaces/ folder,
    spaces = None                       # which imports as an empty namespace package): nothing to decorate

    def _gpu(function):
        return function


class UploadImage(gr.Image):
    """``gr.Image`` that hands the handler the uploaded file untouched, whatever it holds.

    ``gr.Image`` opens uploads with PIL before the handler runs, so a file that is not an image
    fails with a traceback-like message, and 16-bit images reach the handler only as the path
    anyway. Here the handler's own loader reads (and rejects, with a clear message) every file.
    """

    def get_block_name(self) -> str:  # the same front-end as gr.Image
        return "image"

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return super().preprocess(payload)  # pasted / base64 images


class PngStore:
    """Output images as PNG files in gradio's cache folder, named by their content and written
    under a temporary name then renamed.

    Returned as paths, gradio serves them as they are. (Returned as arrays, gradio writes each
    into its cache under a content hash in place: two concurrent requests with the same answer
    rewrite the file while it is being downloaded, and a client receives a truncated image.)
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def __call__(self, array: np.ndarray | None) -> str | None:
        from PIL import Image

        from quarf_hf.atomic import atomic_path

        if array is None:
            return None
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        data = buffer.getvalue()
        path = self.folder / f"{hashlib.sha256(data).hexdigest()[:40]}.png"
        if not path.is_file():
            with atomic_path(path) as temporary:
                temporary.write_bytes(data)
        return str(path)


def _page_errors(function):
    """User errors become a message in the page (``gr.Error``); the worker lives on."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, TypeError, FileNotFoundError) as err:
            raise gr.Error(str(err), print_exception=False) from None
        except Exception as err:  # noqa: BLE001 - a failing model must not take the page down
            logger.exception("request failed")
            raise gr.Error(f"The model failed on this image: {type(err).__name__}: {err}") from None

    return wrapper


def status_markdown(models: SpaceModels) -> str:
    """The note under the title: which models are loaded, which failed and why, or how to get one."""
    lines = []
    for role, error in models.errors.items():
        lines.append(f"**Could not load the {role} model `{models.sources.get(role)}`**: {error}")
    if not models.segmenters:
        lines.append(
            "### No segmentation model is loaded\n"
            f"Get one with **`{GET_A_MODEL}`** (run it in this folder: about 2 minutes on a CPU, it trains "
            "the QuARF and comparison models into `outputs/demo/`), then restart the page. Or name a model: "
            "`QUARF_MODEL=<folder or Hub id> python spaces/quarf-demo/app.py`, or "
            "`quarf-hf space --model <folder or Hub id>`. Until then the page shows the corruptions only."
        )
    for loaded in [*models.segmenters, models.restoration]:
        if loaded is None:
            continue
        extra = ""
        if loaded.experts:
            extra = f" (quality: {loaded.quality}; experts by receptive field: {', '.join(str(rf) for _, _, rf in loaded.experts)})"
        lines.append(f"- {loaded.title}: `{loaded.source}`{extra}")
    return "\n".join(lines)


def example_rows(examples_dir: Path, natural_images: Path | None, scenes: int = 3) -> list[list]:
    """Generated quarf-shapes scenes (written to ``examples_dir``) and the photos of ``natural_images``."""
    from PIL import Image

    from quarf_hf.data import QuarfShapes

    examples_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    dataset = QuarfShapes(num_samples=scenes, size=128, seed=4242)
    for index in range(scenes):
        path = examples_dir / f"quarf-shapes-{index}.png"
        if not path.is_file():
            Image.fromarray(to_uint8(dataset[index]["pixel_values"])).save(path)
        corruption, severity = SCENE_SETTINGS[index % len(SCENE_SETTINGS)]
        rows.append([str(path), corruption, severity])
    if natural_images is not None and natural_images.is_dir():
        photos = sorted(p for p in natural_images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
        for index, path in enumerate(photos):
            corruption, severity = PHOTO_SETTINGS[index % len(PHOTO_SETTINGS)]
            rows.append([str(path), corruption, severity])
    return rows


def find_natural_images() -> Path | None:
    """``../shared/data/natural-images`` from the project root (or the working directory), if present."""
    for root in project_roots():
        folder = (root / NATURAL_IMAGES).resolve()
        if folder.is_dir():
            return folder
    return None


class SpaceLogic:
    """The page's handlers, bound to one set of models (plain methods: testable without a server)."""

    def __init__(self, models: SpaceModels, save_image=None):
        self.models = models
        # how output images leave a handler: arrays by default, PNG paths in the served page
        self.image = save_image or (lambda array: array)

    @property
    def min_side(self) -> int:
        loaded = [*self.models.segmenters, self.models.restoration]
        return max([m.min_side for m in loaded if m is not None] or [DEFAULT_MIN_SIDE])

    def _input(self, path) -> tuple[torch.Tensor, str | None]:
        if path is None:
            raise InputError("image: upload an image or pick an example first")
        return fit_to_cap(load_upload(path), self.min_side)

    def segment(self, path, corruption: str, severity):
        """Outputs, in order: degraded input, QuARF overlay, baseline overlay, legend, QuARF mIoU,
        baseline mIoU, routing chart, notes, details (JSON)."""
        if path is None:  # a cleared input: clear the outputs, no error
            return [None] * 6 + [None, "Upload an image or pick an example.", {}]
        image, notice = self._input(path)
        degraded = inference.degraded_image(image, corruption, severity)
        severity = int(severity)  # validated above: a whole number 0-5
        notes = [notice] if notice else []
        details = {"size": [int(image.shape[-1]), int(image.shape[-2])], "corruption": corruption,
                   "severity": int(severity), "downscaled": notice is not None, "models": {}}
        overlays, mious, shown = {}, {}, {}
        routing_table = None
        for model in self.models.segmenters:
            result = inference.segment(model, torch.cat([image, degraded]))
            clean_mask, mask = result["masks"][0], result["masks"][1]
            miou = inference.mean_iou(mask, clean_mask, inference.num_labels(model))
            overlays[model.role] = inference.overlay(degraded, mask, inference.num_labels(model))
            mious[model.role] = round(miou, 4)
            shown[model.title] = (model, mask)
            entry = {"source": model.source, "mIoU_vs_clean": miou}
            if result["routing"] is not None:
                weights = result["routing"][1]
                labels = inference.expert_labels(model, weights.shape[-1])
                entry["routing"] = weights.tolist()
                entry["clean_routing"] = result["routing"][0].tolist()
                entry["experts"] = labels
                if model.role == "quarf" or routing_table is None:
                    routing_table = plots.routing_frame(weights.numpy(), labels)
            if result["quality"] is not None:
                entry["quality_norm"] = float(result["quality"][1].norm())
                entry["clean_quality_norm"] = float(result["quality"][0].norm())
                notes.append(inference.quality_summary(model, result["quality"][1], result["quality"][0]))
            details["models"][model.title] = entry
        if not self.models.segmenters:
            notes.append(f"No segmentation model is loaded: only the degraded input is shown (see the note above; `{GET_A_MODEL}`).")
        return [
            self.image(to_uint8(degraded)),
            self.image(overlays.get("quarf")),
            self.image(overlays.get("baseline")),
            inference.legend_html(shown),
            mious.get("quarf"),
            mious.get("baseline"),
            routing_table,
            "\n\n".join(notes),
            details,
        ]

    def sweep(self, path, corruption: str):
        """The severity sweep 0-5: one plot of routing per expert and mIoU vs clean, and its numbers."""
        if not self.models.segmenters:
            raise InputError(f"the sweep needs a segmentation model; get one with `{GET_A_MODEL}`")
        image, _ = self._input(path)
        degraded = [inference.degraded_image(image, corruption, s) for s in SEVERITIES]
        miou, routing, labels, numbers = {}, None, [], {"corruption": corruption, "severities": SEVERITIES}
        for model in self.models.segmenters:
            masks, weights = [], []
            for start in range(0, len(degraded), 2):  # two at a time: bounded memory on large images
                result = inference.segment(model, torch.cat(degraded[start:start + 2]))
                masks += list(result["masks"])
                if result["routing"] is not None:
                    weights += list(result["routing"].mean(1))  # mean over groups: (experts,)
            miou[model.title] = [inference.mean_iou(m, masks[0], inference.num_labels(model)) for m in masks]
            numbers.setdefault("mIoU_vs_clean", {})[model.title] = miou[model.title]
            if weights and (routing is None or model.role == "quarf"):
                routing = torch.stack(weights).numpy()
                labels = inference.expert_labels(model, routing.shape[1])
                numbers["routing"] = {"model": model.title, "experts": labels, "mean_weight": routing.tolist()}
        return self.image(plots.sweep_plot(SEVERITIES, routing, labels, miou, corruption)), numbers

    def restore(self, path, corruption: str, severity):
        """Degraded, restored, clean images, the PSNRs and the restoration model's routing."""
        model = self.models.restoration
        if model is None:
            raise InputError("no restoration model is loaded (set RESTORATION_MODEL or `quarf-hf space --restoration`)")
        image, notice = self._input(path)
        degraded = inference.degraded_image(image, corruption, severity)
        result = inference.restore(model, degraded)
        restored = result["reconstruction"]
        before, after = inference.psnr(degraded, image), inference.psnr(restored, image)
        text = f"PSNR against the clean image: degraded {before:.2f} dB, restored **{after:.2f} dB**."
        if notice:
            text = notice + "\n\n" + text
        chart = None
        if result["routing"] is not None:
            weights = result["routing"][0]
            chart = plots.routing_frame(weights.numpy(), inference.expert_labels(model, weights.shape[-1]))
        images = [self.image(to_uint8(x)) for x in (degraded, restored, image)]
        return *images, text, chart


def routing_plot(model, label: str, elem_id: str):
    """A stacked ``gr.BarPlot`` of routing weights, its groups and expert colours fixed by ``model``."""
    quarf = getattr(getattr(model, "model", None), "config", None)
    quarf = getattr(quarf, "quarf", None) if quarf is not None else None
    if model is None or not isinstance(quarf, dict) or not model.experts:
        return gr.BarPlot(visible=False, elem_id=elem_id)
    labels = inference.expert_labels(model, len(model.experts))
    return gr.BarPlot(
        x="channel group", y="weight", color="expert", label=label, elem_id=elem_id, y_lim=[0, 1],
        sort=plots.group_names(int(quarf["num_groups"])), y_title="routing weight",
        color_map={name: plots.EXPERT_COLOURS[e % len(plots.EXPERT_COLOURS)] for e, name in enumerate(labels)},
    )


def build_app(models: SpaceModels | None = None, *, examples_dir: str | Path | None = None,
              natural_images: str | Path | None = None) -> gr.Blocks:
    """The page. ``models``: default :func:`load_space_models` (arguments, environment, demo folders).

    ``examples_dir``: where the generated example scenes are written (default: a temporary
    folder); ``natural_images``: a folder of photos for the examples (default
    ``../shared/data/natural-images`` from the project root, when it exists).
    """
    from quarf_hf.degradations import CORRUPTIONS

    models = load_space_models() if models is None else models
    logic = SpaceLogic(models, save_image=PngStore(Path(gr.utils.get_upload_folder()) / "quarf-space"))
    examples_dir = Path(examples_dir) if examples_dir else Path(tempfile.mkdtemp(prefix="quarf-space-examples-"))
    natural_images = Path(natural_images) if natural_images else find_natural_images()
    has_quarf, has_baseline = models.quarf is not None, models.baseline is not None
    quarf_title = "QuARF" if has_quarf else "QuARF (not loaded)"
    baseline_title = f"baseline ({Path(models.baseline.source).parent.name or models.baseline.source})" if has_baseline else "baseline"

    segment = _gpu(_page_errors(logic.segment))
    sweep = _gpu(_page_errors(logic.sweep))
    restore = _gpu(_page_errors(logic.restore))

    with gr.Blocks(title="QuARF: quality-adaptive receptive fields") as app:
        gr.Markdown(
            "# QuARF: receptive fields that follow image quality\n"
            "Degrade an image, step by step, and watch the segmentation hold up and QuARF's routing move "
            "between its experts (convolutions with wider and wider receptive fields, RF). The router sees "
            "only the image's quality features."
        )
        gr.Markdown(status_markdown(models), elem_id="quarf-status")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                image = UploadImage(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                    elem_id="quarf-input", label="Image")
                gr.Markdown(f"PNG, JPEG, WebP, ...; grey, RGBA and 16-bit too. Images larger than {MAX_SIDE} pixels "
                            "on the longer side are downscaled (the page says so).", elem_id="quarf-input-note")
                corruption = gr.Dropdown(list(CORRUPTIONS), value="gaussian_noise", label="Corruption",
                                         elem_id="quarf-corruption")
                severity = gr.Slider(0, 5, value=3, step=1, label="Severity (0 = clean)", elem_id="quarf-severity")
                run = gr.Button("Segment", variant="primary")
                gr.Examples(example_rows(examples_dir, natural_images), inputs=[image, corruption, severity],
                            label="Examples: generated quarf-shapes scenes and photos", examples_per_page=12)
            with gr.Column(scale=2):
                with gr.Tabs():
                    with gr.Tab("Segmentation"):
                        notes = gr.Markdown(elem_id="quarf-notes")
                        with gr.Row():
                            degraded = gr.Image(label="degraded input", format="png", interactive=False,
                                                elem_id="quarf-degraded")
                            quarf_view = gr.Image(label=quarf_title, format="png", interactive=False,
                                                  elem_id="quarf-quarf", visible=has_quarf)
                            baseline_view = gr.Image(label=baseline_title, format="png", interactive=False,
                                                     elem_id="quarf-baseline", visible=has_baseline)
                        with gr.Row():
                            quarf_miou = gr.Number(label="QuARF: mIoU vs its prediction on the clean image",
                                                   precision=3, interactive=False, elem_id="quarf-miou-quarf",
                                                   visible=has_quarf)
                            baseline_miou = gr.Number(label="baseline: mIoU vs its prediction on the clean image",
                                                      precision=3, interactive=False, elem_id="quarf-miou-baseline",
                                                      visible=has_baseline)
                        legend = gr.HTML(label="legend", elem_id="quarf-legend")
                        routing = routing_plot(models.quarf or (models.baseline if models.segmenters else None),
                                               "QuARF routing: weight per expert (by receptive field) per channel group",
                                               elem_id="quarf-routing")
                        sweep_button = gr.Button("Sweep severity 0-5 (routing and mIoU)", elem_id="quarf-sweep-button",
                                                 visible=bool(models.segmenters))
                        sweep_plot = gr.Image(label="severity sweep", format="png", interactive=False,
                                              elem_id="quarf-sweep", visible=bool(models.segmenters))
                        with gr.Accordion("numbers (JSON)", open=False):
                            details = gr.JSON(label="this image", elem_id="quarf-details")
                            sweep_numbers = gr.JSON(label="sweep", elem_id="quarf-sweep-numbers")
                    if models.restoration is not None:
                        with gr.Tab("Restoration"):
                            restore_button = gr.Button("Restore", variant="primary", elem_id="quarf-restore-button")
                            psnr = gr.Markdown(elem_id="quarf-psnr")
                            with gr.Row():
                                restore_outputs = [
                                    gr.Image(label=label, format="png", interactive=False, elem_id=f"quarf-restore-{key}")
                                    for key, label in (("degraded", "degraded"), ("restored", "restored"), ("clean", "clean"))
                                ]
                            restore_routing = routing_plot(models.restoration, "restoration routing: weight per expert per channel group",
                                                           elem_id="quarf-restore-routing")
                        restore_button.click(restore, [image, corruption, severity],
                                             [*restore_outputs, psnr, restore_routing], api_name="restore")

        outputs = [degraded, quarf_view, baseline_view, legend, quarf_miou, baseline_miou, routing, notes, details]
        gr.on([image.change, corruption.change, severity.release, run.click], segment, [image, corruption, severity],
              outputs, api_name="segment", trigger_mode="always_last")
        sweep_button.click(sweep, [image, corruption], [sweep_plot, sweep_numbers], api_name="sweep")
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return app


def launch(model: str | None = None, baseline: str | None = None, restoration: str | None = None,
           host: str = "127.0.0.1", port: int | None = None, share: bool = False, revisions: dict | None = None,
           **kwargs):
    """Build the page with these models (else the environment's, else the demo's) and serve it.
    ``revisions``: role ("quarf", "baseline", "restoration") -> the commit to load a Hub id at."""
    app = build_app(load_space_models(model, baseline, restoration, revisions=revisions))
    return app.launch(server_name=host, server_port=port, share=share, show_error=True, **kwargs)


__all__ = ["build_app", "launch", "SpaceLogic", "UploadImage", "status_markdown", "example_rows", "CONCURRENCY"]
