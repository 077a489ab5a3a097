"""The Space's page (``gr.Blocks``): degrade a photo or an upload, watch QuARF restore it next to
the plain model (and segment it next to the baseline), and QuARF's routing follow the quality.

``spaces/quarf-demo/app.py`` and ``quarf-hf space`` both call :func:`build_app`. The restoration
tab comes first when a restoration model is loaded; the page opens on a built-in photo.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from . import inference, plots
from ..models.checks import InputError
from ..models.image_utils import to_uint8
from .images import MAX_SIDE, fit_to_cap, load_input
from .models import DEMO_COMMANDS, ROLES, SpaceModels, load_space_models, project_roots, roles_of

logger = logging.getLogger(__name__)

CONCURRENCY = 2          # requests computed at once (the rest wait in the queue)
QUEUE_SIZE = 64          # requests that may wait; more get "queue full"
DEFAULT_MIN_SIDE = 32    # smallest side accepted when no model says otherwise
SEVERITIES = list(inference.SEVERITIES)
# The photo the page opens on: a test photo (never seen in training nor in model selection).
DEFAULT_PHOTO = "chelsea"
MAX_PSNR = 100.0  # evaluation.metrics.psnr_per_image's cap (identical images)
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
    under a temporary name of their own, then renamed.

    Returned as paths, gradio serves them as they are. (Returned as arrays, gradio writes each
    into its cache under a content hash in place: two concurrent requests with the same answer
    rewrite the file while it is being downloaded, and a client receives a truncated image.)
    Concurrent identical answers are safe: each request writes its own uniquely named temporary
    file and removes only that one; the rename is atomic and both write the same bytes.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def __call__(self, array: np.ndarray | None) -> str | None:
        from PIL import Image

        if array is None:
            return None
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        data = buffer.getvalue()
        path = self.folder / f"{hashlib.sha256(data).hexdigest()[:40]}.png"
        if path.is_file():
            return str(path)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".quarf-png-", suffix=".tmp")
        except OSError as err:  # the message must not show the server's folders
            raise RuntimeError(f"could not store the output image ({err.strerror or type(err).__name__})") from None
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.chmod(temporary, 0o644)  # mkstemp's 0o600 would keep a separate file server from reading it
            os.replace(temporary, path)
        except OSError as err:
            Path(temporary).unlink(missing_ok=True)  # ours only: its name is unique to this call
            raise RuntimeError(f"could not store the output image ({err.strerror or type(err).__name__})") from None
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
        lines.append(f"**Could not load the {ROLES[role].name} model `{models.sources.get(role)}`**: {error}")
    if not models.segmenters:
        lines.append(
            "### No segmentation model is loaded\n"
            f"Get them with **`{DEMO_COMMANDS['segmentation']}`** (run it in this folder: a few minutes on a CPU; "
            "it trains the QuARF and comparison SegFormers into `outputs/demo/`), then restart the page. Or "
            "name a model: `QUARF_MODEL=<folder or Hub id> python spaces/quarf-demo/app.py`, or "
            "`quarf-hf space --model <folder or Hub id>`. Until then the page shows the corruptions only."
        )
    if not models.restorers:
        lines.append(
            f"No restoration model is loaded: **`{DEMO_COMMANDS['restoration']}`** (a few minutes on a CPU) "
            "trains a QuARF and a plain restoration model into `outputs/demo/restoration/`; or name them with "
            "`RESTORATION_MODEL` and `PLAIN_RESTORATION_MODEL` (`quarf-hf space --restoration ... --plain-restoration ...`)."
        )
    for loaded in [*models.restorers, *models.segmenters]:
        extra = ""
        if loaded.experts:
            extra = f" (quality: {loaded.quality}; experts by receptive field: {', '.join(str(rf) for _, _, rf in loaded.experts)})"
        lines.append(f"- {loaded.name}: `{loaded.source}`{extra}")
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
        loaded = [*self.models.segmenters, *self.models.restorers]
        return max([m.min_side for m in loaded] or [DEFAULT_MIN_SIDE])

    def _input(self, path, photo=None) -> tuple[torch.Tensor, str | None]:
        """The upload ``path`` if given, else the built-in photo named ``photo``, fitted to the cap."""
        return fit_to_cap(load_input(path, photo), self.min_side)

    def segment(self, path, corruption: str, severity, photo=None):
        """Outputs, in order: degraded input, QuARF overlay, baseline overlay, legend, QuARF mIoU,
        baseline mIoU, routing chart, notes, details (JSON). The image: the upload ``path``, else
        the built-in photo ``photo``."""
        if path is None and not photo:  # a cleared input: clear the outputs, no error
            return [None] * 6 + [None, "Upload an image or pick a built-in photo.", {}]
        image, notice = self._input(path, photo)
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
            notes.append("No segmentation model is loaded: only the degraded input is shown (see the note above; "
                         f"`{DEMO_COMMANDS['segmentation']}`).")
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

    def sweep(self, path, corruption: str, photo=None):
        """The severity sweep 0-5: one plot of routing per expert and mIoU vs clean, and its numbers."""
        if not self.models.segmenters:
            raise InputError(f"the sweep needs a segmentation model; get one with `{DEMO_COMMANDS['segmentation']}`")
        image, _ = self._input(path, photo)
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

    def _restorers(self):
        if not self.models.restorers:
            raise InputError(f"no restoration model is loaded; get them with `{DEMO_COMMANDS['restoration']}` "
                             "(or set RESTORATION_MODEL / `quarf-hf space --restoration`)")
        return self.models.restorers

    def restore(self, path, corruption: str, severity, photo=None):
        """Outputs, in order: clean, degraded, QuARF-restored, plain-restored images, the PSNR line,
        QuARF's routing chart, details (JSON: PSNR per image against the clean one, routing). The
        image: the upload ``path``, else the built-in photo ``photo``."""
        models = self._restorers()
        if path is None and not photo:  # a cleared input: clear the outputs, no error
            return [None] * 4 + ["Upload an image or pick a built-in photo.", None, {}]
        image, notice = self._input(path, photo)
        result = inference.compare_restorations(models, image, corruption, severity)
        scores = result["psnr"]
        shown = [f"degraded {scores['degraded']:.2f} dB"] + [
            f"{model.title}-restored **{scores[model.role]:.2f} dB**" for model in models]
        text = "PSNR against the clean image: " + ", ".join(shown) + "."
        if notice:
            text = notice + "\n\n" + text
        details = {"image": f"photo {photo}" if path is None else "upload", "size": [int(image.shape[-1]), int(image.shape[-2])],
                   "corruption": corruption, "severity": int(severity), "reference_size": inference.REFERENCE_SIZE,
                   "psnr": {"degraded": scores["degraded"]}, "models": {}}
        chart = None
        for model in models:
            entry = {"source": model.source, "psnr": scores[model.role]}
            details["psnr"][model.title] = scores[model.role]
            weights = result["routing"].get(model.role)
            if weights is not None:
                labels = inference.expert_labels(model, weights.shape[-1])
                entry.update(routing=weights.tolist(), experts=labels)
                if chart is None:  # QuARF's (the first model with routing)
                    chart = plots.routing_frame(weights.numpy(), labels)
            details["models"][model.title] = entry
        restored = [result["restored"].get(role) for role in roles_of("restoration")]  # QuARF's, the plain one
        images = [self.image(None if x is None else to_uint8(x)) for x in (image, result["degraded"], *restored)]
        return *images, text, chart, details

    def restore_sweep(self, path, corruption: str, photo=None):
        """The severity sweep 0-5 for restoration: one plot of QuARF's routing per expert and of PSNR
        (degraded, QuARF, plain) against severity, and its numbers."""
        models = self._restorers()
        image, _ = self._input(path, photo)
        result = inference.restoration_sweep(models, image, corruption, SEVERITIES)
        titles = {model.role: model.title for model in models}
        psnr = {("degraded" if role == "degraded" else f"{titles[role]}-restored"): values
                for role, values in result["psnr"].items()}
        routing, labels, numbers = {}, [], {"corruption": corruption, "severities": SEVERITIES, "psnr": psnr,
                                            "routing": {}}
        for model in models:
            weights = result["routing"].get(model.role)
            if weights is None:
                continue
            labels = inference.expert_labels(model, weights.shape[-1])
            routing[model.title] = weights.mean(1).numpy()  # mean over groups: (severities, experts)
            numbers["routing"][model.title] = {"experts": labels, "weights": weights.tolist()}
        # an image equal to the clean one (severity 0, degraded) scores the 100-dB cap: left off the plot's scale
        shown = {title: [v if v < MAX_PSNR else float("nan") for v in values] for title, values in psnr.items()}
        plot = plots.sweep_plot(SEVERITIES, routing or None, labels, shown, corruption, score_label="PSNR against the clean image (dB)",
                                score_title="restoration against clean", score_limits=None)
        return self.image(plot), numbers


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


def photo_choices() -> list[tuple[str, str]]:
    """The built-in photos installed here, as (label naming the split, name) for the dropdown."""
    from quarf_hf.data.photos import PHOTOS, photo_path

    choices = []
    for photo in PHOTOS:
        try:
            photo_path(photo.name)
        except FileNotFoundError:  # its package is not installed: not offered
            continue
        choices.append((f"{photo.name} ({photo.split})", photo.name))
    return choices


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
    photos = photo_choices()
    default_photo = DEFAULT_PHOTO if DEFAULT_PHOTO in [name for _, name in photos] else (photos[0][1] if photos else None)

    segment = _gpu(_page_errors(logic.segment))
    sweep = _gpu(_page_errors(logic.sweep))
    restore = _gpu(_page_errors(logic.restore))
    restore_sweep = _gpu(_page_errors(logic.restore_sweep))

    with gr.Blocks(title="QuARF: quality-adaptive receptive fields") as app:
        gr.Markdown(
            "# QuARF: receptive fields that follow image quality\n"
            "Degrade a photo, step by step, and watch QuARF restore it next to a plain model, and its routing "
            "move between its experts (convolutions with wider and wider receptive fields, RF). The router sees "
            "only the image's quality features."
        )
        gr.Markdown(status_markdown(models), elem_id="quarf-status")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                photo = gr.Dropdown(photos, value=default_photo, label="Built-in photo (its training split)",
                                    elem_id="quarf-photo")
                image = UploadImage(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                    elem_id="quarf-input", label="... or upload an image (used instead of the photo)")
                gr.Markdown(f"PNG, JPEG, WebP, ...; grey, RGBA and 16-bit too. Images larger than {MAX_SIDE} pixels "
                            "on the longer side are downscaled (the page says so).", elem_id="quarf-input-note")
                corruption = gr.Dropdown(list(CORRUPTIONS), value="gaussian_noise", label="Corruption",
                                         elem_id="quarf-corruption")
                severity = gr.Slider(0, 5, value=3, step=1, label="Severity (0 = clean)", elem_id="quarf-severity")
                gr.Examples(example_rows(examples_dir, natural_images), inputs=[image, corruption, severity],
                            label="Examples: generated quarf-shapes scenes and photos", examples_per_page=12)
            with gr.Column(scale=2):
                with gr.Tabs():
                    if models.restorers:  # first: the tab the page opens on
                        with gr.Tab("Restoration", elem_id="quarf-restoration-tab"):
                            restore_button = gr.Button("Restore", variant="primary", elem_id="quarf-restore-button")
                            psnr = gr.Markdown(elem_id="quarf-psnr")
                            with gr.Row():
                                restore_outputs = [
                                    gr.Image(label=label, format="png", interactive=False, elem_id=f"quarf-restore-{key}",
                                             visible=shown)
                                    for key, label, shown in (
                                        ("clean", "clean", True), ("degraded", "degraded", True),
                                        ("quarf", "QuARF-restored", models.restoration is not None),
                                        ("plain", "plain-restored", models.plain_restoration is not None))
                                ]
                            routed = next((m for m in models.restorers if m.experts), None)
                            restore_routing = routing_plot(routed, f"{routed.title if routed else 'QuARF'} routing for this "
                                                           "image: weight per expert (by receptive field) per channel group",
                                                           elem_id="quarf-restore-routing")
                            restore_sweep_button = gr.Button("Sweep severity 0-5 (routing and PSNR)",
                                                             elem_id="quarf-restore-sweep-button")
                            restore_sweep_plot = gr.Image(label="severity sweep", format="png", interactive=False,
                                                          elem_id="quarf-restore-sweep")
                            with gr.Accordion("numbers (JSON)", open=False):
                                restore_details = gr.JSON(label="this image", elem_id="quarf-restore-details")
                                restore_sweep_numbers = gr.JSON(label="sweep", elem_id="quarf-restore-sweep-numbers")
                    with gr.Tab("Segmentation", elem_id="quarf-segmentation-tab"):
                        run = gr.Button("Segment", variant="primary")
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

        # One image at a time: a picked photo replaces the upload, an upload (or example) the photo.
        photo.input(lambda: None, None, image, queue=False, show_progress="hidden")
        image.change(lambda path, name: None if path is not None else name, [image, photo], photo, queue=False,
                     show_progress="hidden")
        triggers = [app.load, image.change, photo.input, corruption.change, severity.release]
        outputs = [degraded, quarf_view, baseline_view, legend, quarf_miou, baseline_miou, routing, notes, details]
        gr.on([*triggers, run.click], segment, [image, corruption, severity, photo], outputs, api_name="segment",
              trigger_mode="always_last")
        sweep_button.click(sweep, [image, corruption, photo], [sweep_plot, sweep_numbers], api_name="sweep")
        if models.restorers:
            gr.on([*triggers, restore_button.click], restore, [image, corruption, severity, photo],
                  [*restore_outputs, psnr, restore_routing, restore_details], api_name="restore", trigger_mode="always_last")
            restore_sweep_button.click(restore_sweep, [image, corruption, photo],
                                       [restore_sweep_plot, restore_sweep_numbers], api_name="restore_sweep")
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return app


def launch(model: str | None = None, baseline: str | None = None, restoration: str | None = None,
           host: str = "127.0.0.1", port: int | None = None, share: bool = False, revisions: dict | None = None,
           plain_restoration: str | None = None, **kwargs):
    """Build the page with these models (else the environment's, else the demo's) and serve it.
    ``revisions``: role ("quarf", "baseline", "restoration", "plain_restoration") -> the commit to
    load a Hub id at."""
    app = build_app(load_space_models(model, baseline, restoration, revisions=revisions,
                                      plain_restoration=plain_restoration))
    return app.launch(server_name=host, server_port=port, share=share, show_error=True, **kwargs)


__all__ = ["build_app", "launch", "SpaceLogic", "UploadImage", "status_markdown", "example_rows", "photo_choices",
           "CONCURRENCY", "DEFAULT_PHOTO"]
