"""quarf_hf.data: segmentation loaders (every source kind and error) and the quarf-shapes benchmark."""

from __future__ import annotations

import json

import datasets
import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F

from quarf_hf.data import QuarfShapes, SegmentationDataset, load_dataset_spec, load_segmentation_dataset

RNG = np.random.default_rng(0)


def _rgb(h=6, w=8):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask(h=6, w=8, high=3):
    return RNG.integers(0, high, (h, w), dtype=np.uint8)


def _write_pairs(images_dir, masks_dir, stems, image_ext=".png", h=6, w=8):
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    masks = {}
    for stem in stems:
        PIL.Image.fromarray(_rgb(h, w)).save(images_dir / f"{stem}{image_ext}")
        masks[stem] = _mask(h, w)
        PIL.Image.fromarray(masks[stem]).save(masks_dir / f"{stem}.png")
    return masks


def _check_item(item, h, w):
    assert set(item) == {"pixel_values", "labels"}
    assert item["pixel_values"].shape == (3, h, w) and item["pixel_values"].dtype == torch.float32
    assert 0 <= item["pixel_values"].min() and item["pixel_values"].max() <= 1
    assert item["labels"].shape == (h, w) and item["labels"].dtype == torch.int64


# ---------------------------------------------------------------- sources


def test_in_memory_dataset_with_classlabel_mask():
    """An in-memory Dataset (Image column + List(List(ClassLabel)) mask): pixels equal the image/255,
    labels equal the mask, and num_labels/id2label come from the ClassLabel names."""
    images = [_rgb() for _ in range(3)]
    masks = [_mask() for _ in range(3)]
    features = datasets.Features({
        "image": datasets.Image(),
        "annotation": datasets.List(datasets.List(datasets.ClassLabel(names=["sky", "road", "car", "tree"]))),
    })
    table = datasets.Dataset.from_dict(
        {"image": [PIL.Image.fromarray(i) for i in images], "annotation": [m.tolist() for m in masks]}, features=features
    )
    ds = load_segmentation_dataset(table)
    assert isinstance(ds, SegmentationDataset) and len(ds) == 3
    assert ds.mask_column == "annotation"
    assert ds.num_labels == 4 and ds.id2label == {0: "sky", 1: "road", 2: "car", 3: "tree"}
    item = ds[1]
    _check_item(item, 6, 8)
    assert torch.allclose(item["pixel_values"], torch.from_numpy(images[1]).permute(2, 0, 1).float() / 255)
    assert torch.equal(item["labels"], torch.from_numpy(masks[1]).long())


def test_in_memory_image_masks_num_labels_from_scan():
    """Image-typed masks with no class list: num_labels is the largest value seen (255 excluded) + 1."""
    masks = [np.array([[0, 1], [255, 1]], np.uint8), np.array([[4, 0], [0, 255]], np.uint8)]
    table = datasets.Dataset.from_dict(
        {"image": [PIL.Image.fromarray(_rgb(2, 2)) for _ in masks], "label": [PIL.Image.fromarray(m) for m in masks]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Image()}),
    )
    ds = load_segmentation_dataset(table)
    assert ds.num_labels == 5 and ds.id2label == {i: str(i) for i in range(5)}
    assert ds[1]["labels"].tolist() == [[4, 0], [0, 255]]  # ignore_index kept as is


def test_save_to_disk_dataset_dict_splits(tmp_path):
    """A DatasetDict saved to disk: each split loads its own rows; an unknown split lists the available ones."""
    def split(n, value):
        return datasets.Dataset.from_dict(
            {"image": [PIL.Image.fromarray(_rgb()) for _ in range(n)],
             "mask": [PIL.Image.fromarray(np.full((6, 8), value, np.uint8)) for _ in range(n)]},
            features=datasets.Features({"image": datasets.Image(), "mask": datasets.Image()}),
        )
    datasets.DatasetDict({"train": split(3, 1), "validation": split(2, 2)}).save_to_disk(str(tmp_path / "saved"))
    train = load_segmentation_dataset(tmp_path / "saved", num_labels=3)
    validation = load_segmentation_dataset(str(tmp_path / "saved"), split="validation", num_labels=3)
    assert (len(train), len(validation)) == (3, 2)
    assert train[0]["labels"].unique().tolist() == [1] and validation[1]["labels"].unique().tolist() == [2]
    with pytest.raises(ValueError, match=r"split: 'test'.*\['train', 'validation'\]"):
        load_segmentation_dataset(tmp_path / "saved", split="test")
    # a single saved Dataset works too
    split(2, 0).save_to_disk(str(tmp_path / "single"))
    assert len(load_segmentation_dataset(tmp_path / "single", num_labels=1)) == 2


def test_imagefolder_with_mask_file_name(tmp_path, monkeypatch):
    """imagefolder with metadata.jsonl (file_name + mask_file_name): the 'mask' column is auto-detected
    and each item's labels equal the mask file written for that image."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    root = tmp_path / "imgfolder" / "train"
    masks = _write_pairs(root, root / "masks", ["a", "b"])
    (root / "metadata.jsonl").write_text(
        "\n".join(json.dumps({"file_name": f"{s}.png", "mask_file_name": f"masks/{s}.png"}) for s in ["a", "b"])
    )
    ds = load_segmentation_dataset(tmp_path / "imgfolder", num_labels=3)
    assert ds.mask_column == "mask" and len(ds) == 2
    got = sorted(ds[i]["labels"].numpy().tobytes() for i in range(2))
    assert got == sorted(m.astype(np.int64).tobytes() for m in masks.values())


def test_plain_folder_flat_and_with_splits(tmp_path):
    """images/ + masks/ matched by stem (jpg images, png masks), flat and with split subfolders."""
    masks = _write_pairs(tmp_path / "flat" / "images", tmp_path / "flat" / "masks", ["x", "y", "z"], ".jpg")
    flat = load_segmentation_dataset(tmp_path / "flat")
    assert len(flat) == 3 and flat.num_labels == 3
    assert torch.equal(flat[2]["labels"], torch.from_numpy(masks["z"]).long())
    _check_item(flat[0], 6, 8)
    for name, stems in (("train", ["a", "b"]), ("val", ["c"])):
        _write_pairs(tmp_path / "split" / "images" / name, tmp_path / "split" / "masks" / name, stems)
    assert len(load_segmentation_dataset(tmp_path / "split", split="val", num_labels=3)) == 1
    assert len(load_segmentation_dataset(tmp_path / "split", num_labels=3)) == 2
    with pytest.raises(ValueError, match=r"split: 'test'.*\['train', 'val'\]"):
        load_segmentation_dataset(tmp_path / "split", split="test")
    with pytest.raises(ValueError, match=r"split: 'val'.*\['train'\]"):
        load_segmentation_dataset(tmp_path / "flat", split="val")


def test_grayscale_and_rgba_become_rgb(tmp_path):
    """L images give three equal channels equal to the grey value; RGBA is composited on white
    (quarf_hf.models.image_utils' alpha rule, the same at every entry point)."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    grey = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    rgba = RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    PIL.Image.fromarray(grey, "L").save(tmp_path / "images" / "g.png")
    PIL.Image.fromarray(rgba, "RGBA").save(tmp_path / "images" / "r.png")
    for stem in "gr":
        PIL.Image.fromarray(_mask(5, 7)).save(tmp_path / "masks" / f"{stem}.png")
    ds = load_segmentation_dataset(tmp_path, num_labels=3)
    g, r = ds[0]["pixel_values"], ds[1]["pixel_values"]
    assert g.shape == r.shape == (3, 5, 7)
    expected_grey = torch.from_numpy(grey).float() / 255
    assert all(torch.allclose(g[c], expected_grey) for c in range(3))
    alpha = torch.from_numpy(rgba[..., 3]).float()[None] / 255
    expected_rgba = torch.from_numpy(rgba[..., :3]).permute(2, 0, 1).float() / 255 * alpha + (1 - alpha)
    assert torch.allclose(r, expected_rgba)


def test_size_resizes_image_and_nearest_mask(tmp_path):
    """size=int and (H, W): both tensors take that size; resized labels are a subset of the original values."""
    _write_pairs(tmp_path / "images", tmp_path / "masks", ["a"], h=20, w=30)
    mask = np.asarray(PIL.Image.open(tmp_path / "masks" / "a.png"))
    mask = np.where(mask == 2, 255, mask * 3).astype(np.uint8)  # values {0, 3, 255}: bilinear would invent others
    PIL.Image.fromarray(mask).save(tmp_path / "masks" / "a.png")
    for size, shape in ((16, (16, 16)), ((9, 13), (9, 13))):
        item = load_segmentation_dataset(tmp_path, size=size, num_labels=4)[0]
        _check_item(item, *shape)
        assert set(item["labels"].unique().tolist()) <= {0, 3, 255}
    with pytest.raises(ValueError, match="size"):
        load_segmentation_dataset(tmp_path, size=(0, 4))


def test_label_map_and_ignore_index(tmp_path):
    """label_map maps raw ids to train ids, unmapped values become ignore_index, 255 stays 255;
    num_labels is the largest train id + 1."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    PIL.Image.fromarray(_rgb(2, 3)).save(tmp_path / "images" / "a.png")
    PIL.Image.fromarray(np.array([[7, 8, 26], [0, 255, 7]], np.uint8)).save(tmp_path / "masks" / "a.png")
    ds = load_segmentation_dataset(tmp_path, label_map={7: 0, 8: 1, 26: 2})
    assert ds.num_labels == 3
    assert ds[0]["labels"].tolist() == [[0, 1, 2], [255, 255, 0]]
    other = load_segmentation_dataset(tmp_path, label_map={7: 0, 8: 1, 26: 2}, ignore_index=100, num_labels=3)
    assert other[0]["labels"].tolist() == [[0, 1, 2], [100, 100, 0]]


# ---------------------------------------------------------------- errors


def test_error_missing_source(tmp_path):
    """A path that does not exist: FileNotFoundError naming source and the path."""
    with pytest.raises(FileNotFoundError, match=r"source: .*nope"):
        load_segmentation_dataset(tmp_path / "nope")
    (tmp_path / "other").mkdir()
    with pytest.raises(FileNotFoundError, match=r"source: .*not a known layout"):
        load_segmentation_dataset(tmp_path / "other")


def test_error_missing_masks_at_construction(tmp_path):
    """Images without masks are reported at construction with the first stems."""
    _write_pairs(tmp_path / "images", tmp_path / "masks", ["a", "b"])
    PIL.Image.fromarray(_rgb()).save(tmp_path / "images" / "lonely.png")
    PIL.Image.fromarray(_rgb()).save(tmp_path / "images" / "orphan.jpg")
    with pytest.raises(FileNotFoundError, match=r"source: 2 of 4 images.*\['lonely', 'orphan'\]"):
        load_segmentation_dataset(tmp_path, num_labels=3)


def test_error_size_mismatch_names_file_and_sizes(tmp_path):
    """An image and mask of different sizes: the item load names the file and both sizes."""
    _write_pairs(tmp_path / "images", tmp_path / "masks", ["a"])
    PIL.Image.fromarray(_mask(4, 4)).save(tmp_path / "masks" / "a.png")
    ds = load_segmentation_dataset(tmp_path, num_labels=3)
    with pytest.raises(ValueError, match=r"mask_column: image a.png is \(6, 8\).*a.png is \(4, 4\)"):
        ds[0]


def test_error_unknown_labels(tmp_path):
    """Mask values >= num_labels (not ignore_index) are named; bad label_map train ids too."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    PIL.Image.fromarray(_rgb(2, 2)).save(tmp_path / "images" / "a.png")
    PIL.Image.fromarray(np.array([[0, 9], [255, 5]], np.uint8)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(ValueError, match=r"num_labels: .*\[5, 9\]"):
        load_segmentation_dataset(tmp_path, num_labels=3)[0]
    with pytest.raises(ValueError, match=r"label_map: train ids \[4\]"):
        load_segmentation_dataset(tmp_path, label_map={0: 0, 9: 4}, num_labels=3)


def test_error_empty_and_bad_columns(tmp_path):
    """Empty data, a missing image_column and an undetectable mask column each name their argument."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match=r"source: .*no samples"):
        load_segmentation_dataset(tmp_path)
    table = datasets.Dataset.from_dict({"img": [PIL.Image.fromarray(_rgb())], "target": [PIL.Image.fromarray(_mask())]})
    with pytest.raises(ValueError, match=r"image_column: 'image' not found.*\['img', 'target'\]"):
        load_segmentation_dataset(table)
    with pytest.raises(ValueError, match=r"mask_column: none given.*'segmentation'.*\['img', 'target'\]"):
        load_segmentation_dataset(table, image_column="img")
    assert load_segmentation_dataset(table, image_column="img", mask_column="target", num_labels=3)[0]["labels"].shape == (6, 8)


# ---------------------------------------------------------------- specs


def test_load_dataset_spec(tmp_path):
    """Each spec type builds the right object with its options; unknown types/keys name the allowed ones."""
    shapes = load_dataset_spec({"type": "quarf-shapes", "num_samples": 4, "size": [16, 24], "seed": 1})
    assert isinstance(shapes, QuarfShapes) and len(shapes) == 4 and shapes[0]["labels"].shape == (16, 24)
    assert len(load_dataset_spec("quarf-shapes")) == 256
    _write_pairs(tmp_path / "images", tmp_path / "masks", ["a"], h=10, w=10)
    folder = load_dataset_spec({"type": "folder", "path": str(tmp_path), "size": 4, "num_labels": 3})
    assert folder[0]["labels"].shape == (4, 4)
    table = datasets.Dataset.from_dict({"image": [PIL.Image.fromarray(_rgb())], "seg": [PIL.Image.fromarray(_mask())]})
    from_datasets = load_dataset_spec({"type": "datasets", "source": table, "mask_column": "seg", "num_labels": 3})
    assert from_datasets.mask_column == "seg"
    with pytest.raises(ValueError, match=r"type: unknown dataset type 'coco'.*'datasets', 'folder', 'images', 'photos', 'quarf-shapes'"):
        load_dataset_spec({"type": "coco"})
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\].*num_samples"):
        load_dataset_spec({"type": "quarf-shapes", "colour": 1})
    with pytest.raises(FileNotFoundError, match="path: folder not found"):
        load_dataset_spec({"type": "folder", "path": str(tmp_path / "missing")})
    with pytest.raises(ValueError, match="spec: unknown dataset 'cityscapes'"):
        load_dataset_spec("cityscapes")


# ---------------------------------------------------------------- quarf-shapes


def test_shapes_deterministic_by_seed_and_index():
    """Item i is identical whatever the access order or dataset instance; another seed gives other items."""
    a, b = QuarfShapes(10, size=32, seed=5), QuarfShapes(10, size=32, seed=5)
    forward = [a[i] for i in range(10)]
    backward = {i: b[i] for i in reversed(range(10))}
    for i in range(10):
        assert torch.equal(forward[i]["pixel_values"], backward[i]["pixel_values"])
        assert torch.equal(forward[i]["labels"], backward[i]["labels"])
    assert not torch.equal(forward[0]["pixel_values"], forward[1]["pixel_values"])
    other = QuarfShapes(10, size=32, seed=6)[3]
    assert not torch.equal(other["pixel_values"], forward[3]["pixel_values"])


def test_shapes_items_and_all_classes_appear():
    """Shapes, dtypes, ranges, non-square sizes; every class of num_labels shows up in 24 samples."""
    ds = QuarfShapes(24, size=(40, 56))
    assert ds.num_labels == 5 and ds.id2label[0] == "background" and len(ds.id2label) == 5
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        _check_item(item, 40, 56)
        assert item["labels"].min() >= 0 and item["labels"].max() < ds.num_labels
        seen |= set(item["labels"].unique().tolist())
    assert seen == set(range(5))
    six = QuarfShapes(24, size=32, num_classes=6)
    assert set().union(*(six[i]["labels"].unique().tolist() for i in range(24))) == set(range(6))
    for bad in ({"num_samples": 0}, {"task": "depth"}, {"num_classes": 9}, {"size": -1}, {"severities": (0, 9)}):
        argument = next(iter(bad))
        with pytest.raises(ValueError, match=argument):
            QuarfShapes(**{"num_samples": 2, **bad})


def test_shapes_restoration_variant():
    """Restoration items: clean labels equal the segmentation variant's image for the same seed/index,
    degraded pixel_values differ from it; degradations are validated by name."""
    seg = QuarfShapes(6, size=32, seed=2)
    res = QuarfShapes(6, size=32, seed=2, task="restoration")
    for i in range(6):
        item = res[i]
        assert item["pixel_values"].shape == item["labels"].shape == (3, 32, 32)
        assert torch.equal(item["labels"], seg[i]["pixel_values"])
        assert (item["pixel_values"] - item["labels"]).abs().mean() > 1e-3
        assert torch.equal(item["pixel_values"], res[i]["pixel_values"])  # degradation deterministic too
    only_noise = QuarfShapes(2, size=32, task="restoration", degradations=["gaussian_noise"], severities=(5, 5))
    assert (only_noise[0]["pixel_values"] - only_noise[0]["labels"]).abs().mean() > 0.02
    with pytest.raises(ValueError, match=r"degradations: unknown \['sunburn'\]"):
        QuarfShapes(2, task="restoration", degradations=["sunburn"])


def _local_features(x, y):
    """5x5-averaged gradient magnitudes along 4 directions (normalised + log energy) and 5x5 mean colour,
    at pixels whose 5x5 window is inside one class."""
    pool = lambda v: F.avg_pool2d(v, 5, 1, 2, count_include_pad=False)  # noqa: E731
    g = F.pad(x.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    centre = g[..., 1:-1, 1:-1]
    grads = [(g[..., 1:-1, 2:] - centre), (g[..., 2:, 1:-1] - centre), (g[..., 2:, 2:] - centre), (g[..., 2:, :-2] - centre)]
    tex = torch.cat([pool(d.abs()) for d in grads], 1)
    energy = tex.sum(1, keepdim=True).clamp_min(1e-6)
    tex = torch.cat([tex / energy, energy.log()], 1)
    lab = y[:, None].float()
    interior = (F.max_pool2d(lab, 5, 1, 2) == -F.max_pool2d(-lab, 5, 1, 2))[:, 0]
    return tex, pool(x), interior


def _balanced_accuracy(features, labels, interior, num_classes):
    """Nearest-centroid classifier fitted on the first half of the images, scored (mean recall) on the rest."""
    n = features.shape[0] // 2
    f = features.permute(0, 2, 3, 1)
    f = (f - f[interior].mean(0)) / (f[interior].std(0) + 1e-6)
    train_f, train_y = f[:n][interior[:n]], labels[:n][interior[:n]]
    test_f, test_y = f[n:][interior[n:]], labels[n:][interior[n:]]
    centroids = torch.stack([train_f[train_y == c].mean(0) for c in range(num_classes)])
    pred = torch.cdist(test_f, centroids).argmin(1)
    return torch.stack([(pred[test_y == c] == c).float().mean() for c in range(num_classes)]).mean().item()


def test_shapes_classes_differ_in_texture_not_colour():
    """On clean images a nearest-centroid classifier on local gradient statistics separates the classes
    (balanced accuracy > 0.8), one on local mean colour does not (< 0.45, chance 0.2); vertical stripes have
    more horizontal than vertical gradient and horizontal stripes the reverse; heavy noise hurts the texture
    classifier (so texture alone is not enough under degradation)."""
    ds = QuarfShapes(40, size=64, seed=3)
    items = [ds[i] for i in range(40)]
    x = torch.stack([it["pixel_values"] for it in items])
    y = torch.stack([it["labels"] for it in items])
    tex, colour, interior = _local_features(x, y)
    texture_acc = _balanced_accuracy(tex, y, interior, 5)
    colour_acc = _balanced_accuracy(colour, y, interior, 5)
    assert texture_acc > 0.8, texture_acc
    assert colour_acc < 0.45, colour_acc
    dx, dy = tex[:, 0][interior], tex[:, 1][interior]
    labels = y[interior]
    assert dx[labels == 1].mean() > 3 * dy[labels == 1].mean()
    assert dy[labels == 2].mean() > 3 * dx[labels == 2].mean()
    noisy = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    noisy_acc = _balanced_accuracy(_local_features(noisy, y)[0], y, interior, 5)
    assert noisy_acc < texture_acc - 0.2, (noisy_acc, texture_acc)
