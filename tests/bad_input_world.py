"""The world the bad-input tables (tests/test_bad_inputs*.py) run against, and the one assertion each kind of row makes.

Each API row asserts the exception type, that its message is one line naming the argument or file, and
that the output path it was given was not created (``assert_api_refuses``). Each CLI row runs
``quarf_hf.cli.main`` in this process and asserts exit status 2, exactly one stderr line
``quarf-hf CMD: error: ...`` naming the argument or file, no traceback, and that nothing was written: the
output folder is absent, or the file that stood in its way is unchanged (``assert_cli_refuses``).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from quarf_hf import QuARF, insert_quarf
from quarf_hf.cli import main
from tiny_models import make_contrique, make_quarf_segformer, make_restoration, segformer_config

def _png(path, size=(40, 40), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(path)
    return path


def _truncated_png(path):
    _png(path, (64, 64))
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    return path


def _pairs(root, items):
    """images/ + masks/ with items: (stem, image writer or None, mask size)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem, kind, mask_size in items:
        image = root / "images" / f"{stem}.png"
        if kind == "good":
            _png(image, (32, 32), seed=len(stem))
        elif kind == "truncated":
            _truncated_png(image)
        elif kind == "text":
            image.write_text("not an image")
        mask = np.zeros(mask_size[::-1], dtype=np.uint8)
        mask[: mask_size[1] // 2] = 1
        mask[0, 0] = 2
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{stem}.png")
    return root


def _copy_model(src, dst, mutate):
    shutil.copytree(src, dst)
    mutate(dst)
    return dst


def _set_config(folder, **changes):
    data = json.loads((folder / "config.json").read_text())
    data.update(changes)
    (folder / "config.json").write_text(json.dumps(data))


def header_only_png(path, width, height):
    """A PNG of ``width`` x ``height`` pixels that holds only its header (no pixel data): a size check
    that reads the header refuses it in microseconds, a decoder would allocate the whole image first."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def billion_laughs(key: str) -> str:
    """A YAML of about 550 bytes whose ``key`` holds nine levels of nine aliases each: 9**9 values once
    expanded (the anchors live inside the value, so no other key gives the file away)."""
    lines = [f"{key}:", '  - &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"  - &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


class Evil:
    def __reduce__(self):
        return (os.system, ("echo planted-code-ran > /dev/null",))


def make_world(root: Path) -> dict:
    """Everything the tables refer to by key, made under ``root``: models and their saved folders (and damaged
    copies), images, datasets, checkpoints and a folder for YAML files."""
    torch.manual_seed(0)
    w = {"root": root}
    w["block"] = QuARF(8, quality_dim=4).eval()
    w["hard_block"] = QuARF(8, quality_dim=4, mode="hard").eval()
    w["seg"] = make_quarf_segformer(num_labels=3)
    w["res"] = make_restoration()
    w["contrique"] = make_contrique()
    seg_dir, res_dir = root / "seg", root / "res"
    w["seg"].save_pretrained(seg_dir)
    w["res"].save_pretrained(res_dir)
    one_label = make_quarf_segformer(num_labels=1)
    one_label.save_pretrained(root / "seg_one_label")
    w["seg_dir"], w["res_dir"] = seg_dir, res_dir
    w["truncated_model"] = _copy_model(seg_dir, root / "truncated_model",
                                       lambda d: open(d / "model.safetensors", "r+b").truncate(200))
    w["random_model"] = _copy_model(seg_dir, root / "random_model",
                                    lambda d: (d / "model.safetensors").write_bytes(os.urandom(4096)))
    w["noweights_model"] = _copy_model(seg_dir, root / "noweights_model", lambda d: (d / "model.safetensors").unlink())
    w["noconfig_model"] = _copy_model(seg_dir, root / "noconfig_model", lambda d: (d / "config.json").unlink())
    w["badjson_model"] = _copy_model(seg_dir, root / "badjson_model", lambda d: (d / "config.json").write_text("{oops"))
    w["badtype_model"] = _copy_model(res_dir, root / "badtype_model",
                                     lambda d: _set_config(d, block_out_channels="wide"))
    w["badquarf_model"] = _copy_model(seg_dir, root / "badquarf_model", lambda d: _set_config(d, quarf_stage=9))
    w["damaged_model"] = _copy_model(seg_dir, root / "damaged_model",
                                     lambda d: (d / "model.safetensors").write_bytes(b"not a safetensors file" * 4))
    w["typed_model"] = _copy_model(seg_dir, root / "typed_model", lambda d: _set_config(d, hidden_sizes="abc"))
    w["custom_model"] = _copy_model(seg_dir, root / "custom_model",
                                    lambda d: _set_config(d, model_type="someone_elses_model"))
    w["experts_model"] = _copy_model(seg_dir, root / "experts_model", lambda d: _set_config(
        d, quarf={**json.loads((d / "config.json").read_text())["quarf"], "experts": [[3, 1]] * 1_000_000}))
    w["wide_model"] = _copy_model(seg_dir, root / "wide_model", lambda d: _set_config(d, hidden_sizes=[10**7] * 4))
    w["mismatch_model"] = _copy_model(seg_dir, root / "mismatch_model", lambda d: _set_config(
        d, id2label={str(i): str(i) for i in range(5)}, label2id={str(i): i for i in range(5)}))

    def _pickled(d):
        (d / "model.safetensors").unlink()
        torch.save({**w["seg"].state_dict(), "extra": Evil()}, d / "pytorch_model.bin")
    w["pickled_model"] = _copy_model(seg_dir, root / "pickled_model", _pickled)
    # adapters inside someone else's network: a plain CNN, and one whose map shrinks to 0x0 before the block
    w["cnn"] = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1)).eval()
    insert_quarf(w["cnn"], after="0", quality="brisque", num_groups=2)
    w["shrink"] = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.AdaptiveAvgPool2d(0)).eval()
    insert_quarf(w["shrink"], after="1", channels=8, quality="brisque", num_groups=2)
    images = root / "images"
    images.mkdir()
    w["good"] = _png(images / "good.png")
    w["tiny"] = _png(images / "tiny.png", (8, 8))
    w["text_png"] = images / "text.png"
    w["text_png"].write_text("hello, I am not a PNG")
    w["truncated_png"] = _truncated_png(images / "truncated.png")
    w["huge_png"] = header_only_png(images / "huge.png", 13_000, 13_000)  # 169 MP, under PIL's own limit
    frames = [Image.new("RGB", (40, 40), colour) for colour in ("red", "blue")]
    w["gif2"] = images / "two.gif"
    frames[0].save(w["gif2"], save_all=True, append_images=frames[1:])
    w["empty_png"] = images / "empty.png"
    w["empty_png"].write_bytes(b"")
    (images / "dup").mkdir()
    w["dup"] = _png(images / "dup" / "good.png")
    w["a_file"] = root / "a_file.txt"
    w["a_file"].write_text("I am a file")
    # datasets
    w["ds_good"] = _pairs(root / "ds_good", [("a", "good", (32, 32)), ("b", "good", (32, 32))])
    w["ds_truncated"] = _pairs(root / "ds_truncated", [("a", "good", (32, 32)), ("b", "truncated", (64, 64))])
    w["ds_text"] = _pairs(root / "ds_text", [("a", "good", (32, 32)), ("b", "text", (32, 32))])
    w["ds_masksize"] = _pairs(root / "ds_masksize", [("a", "good", (32, 32)), ("b", "good", (16, 16))])
    w["ds_nomask"] = root / "ds_nomask"
    (w["ds_nomask"] / "images").mkdir(parents=True)
    (w["ds_nomask"] / "masks").mkdir()
    _png(w["ds_nomask"] / "images" / "a.png", (32, 32))
    w["ds_unknown"] = root / "ds_unknown"
    w["ds_unknown"].mkdir()
    (w["ds_unknown"] / "readme.txt").write_text("x")
    # checkpoints for convert-contrique
    w["text_tar"] = root / "text.tar"
    w["text_tar"].write_text("not a checkpoint")
    w["random_tar"] = root / "random.tar"
    w["random_tar"].write_bytes(os.urandom(2048))
    w["evil_tar"] = root / "evil.tar"
    torch.save({"encoder.0.weight": Evil()}, w["evil_tar"])
    w["wrong_tar"] = root / "wrong.tar"
    torch.save({"some.weight": torch.zeros(3)}, w["wrong_tar"])
    w["list_tar"] = root / "list.tar"
    torch.save([torch.zeros(3)], w["list_tar"])
    # YAML files
    configs = root / "configs"
    configs.mkdir()
    w["configs"] = configs
    return w


def train_config(**changes) -> dict:
    """A valid one-step segmentation training config (``output_dir`` "{OUT}" is filled in per row), with ``changes``."""
    config = {
        "task": "segmentation",
        "output_dir": "{OUT}",
        "model": {"type": "quarf_segformer", "quality": "brisque", "config": segformer_config(sr_ratios=[2, 1, 1, 1]),
                  "quarf": {"num_groups": 2, "experts": [[3, 1], [3, 2]], "top_k": 2}},
        "data": {"train": {"type": "quarf-shapes", "num_samples": 8, "size": 32, "seed": 0}},
        "max_steps": 1,
        "batch_size": 2,
    }
    return {**config, **changes}


def yaml_file(w, name, content) -> Path:
    """Writes ``content`` (text, or data as YAML) to the world's configs folder."""
    path = w["configs"] / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def assert_api_refuses(world, tmp_path, case):
    """An API row ``(id, entry point, call(world, out), exception type, text the message must contain)``."""
    _, _, call, error, named = case
    out = tmp_path / "out"
    with pytest.raises(error) as caught:
        call(world, out)
    message = str(caught.value)
    assert named in message, f"message does not name {named!r}: {message}"
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    assert not out.exists(), "something was written"


def assert_cli_refuses(world, tmp_path, capsys, case):
    """A CLI row ``(id, argv builder(world, out) -> list, text the one error line must contain)``; an id
    starting with ``FILE:`` puts a file in the output's way first, one starting with ``USED:`` has a
    builder that fills ``out`` with an earlier run's outputs (they must stay byte for byte)."""
    name, argv, named = case
    out = tmp_path / "out"
    before = None
    if name.startswith("FILE:"):
        out.write_text("precious")
        before = out.read_bytes()
    argv = argv(world, out)
    used = tree_digest(out) if name.startswith("USED:") else None
    capsys.readouterr()
    status = main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("quarf-hf ")]
    assert status == 2, f"exit {status}; stderr: {captured.err[-500:]}"
    assert len(errors) == 1 and "Traceback" not in captured.err, captured.err[-1000:]
    assert ": error: " in errors[0]
    assert named in errors[0], f"error line does not name {named!r}: {errors[0]}"
    if used is not None:
        assert tree_digest(out) == used, "the earlier run's outputs were changed"
    elif before is not None:
        assert out.read_bytes() == before, "the file in --out's way was changed"
    else:
        assert not out.exists(), f"something was written: {sorted(p.name for p in out.rglob('*'))[:5]}"


def tree_digest(folder) -> dict:
    """Every entry under ``folder`` (links not followed): its kind and, for files, a SHA-256 of its bytes;
    for links, their target."""
    import hashlib
    import os
    from pathlib import Path

    folder, digest = Path(folder), {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            key = str(path.relative_to(folder))
            if path.is_symlink():
                digest[key] = "link -> " + os.readlink(path)
            elif path.is_dir():
                digest[key] = "folder"
            else:
                digest[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest
