"""The built-in photographs (quarf_hf/data/photos.py) and the photo crops read by ``{type: photos}``
and ``{type: images, path: ...}`` (quarf_hf/data/crops.py)."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
from PIL import Image

from quarf_hf.data import PHOTOS, SPLITS, PhotoCrops, load_dataset_spec, load_photo, photo_names
from quarf_hf.data.checks import check_items
from quarf_hf.data.crops import grid_offsets
from quarf_hf.data.photos import EXCLUDED, photo_path
from quarf_hf.models.image_utils import image_to_tensor

# The split, written down: changing it changes every reported number, so it is changed here too.
SPLIT = {
    "train": ["astronaut", "rocket", "china", "flower", "grace_hopper"],
    "development": ["motorcycle_left", "motorcycle_right"],
    "test": ["chelsea", "coffee"],
}


# ---------------------------------------------------------------- the table
def test_the_split_is_fixed_and_by_photograph():
    """Every photo in exactly one split, the splits as written above, the stereo pair on one side."""
    assert SPLITS == ("train", "development", "test")
    assert {split: photo_names(split) for split in SPLITS} == SPLIT
    names = [photo.name for photo in PHOTOS]
    assert len(names) == len(set(names)) == sum(len(v) for v in SPLIT.values())
    for a in SPLITS:
        for b in SPLITS:
            assert a == b or not set(photo_names(a)) & set(photo_names(b))
    sides = {photo.split for photo in PHOTOS if photo.name.startswith("motorcycle_")}
    assert len(sides) == 1 and "test" not in sides


def test_every_photo_has_source_licence_and_package():
    for photo in PHOTOS:
        for field in ("package", "module", "file", "accessor", "source", "licence"):
            assert getattr(photo, field).strip(), (photo.name, field)
        assert photo_path(photo.name).is_file()
    assert all(reason for reason in EXCLUDED.values()) and "skimage clock_motion" in EXCLUDED


def test_the_licences_are_what_the_packages_say():
    """Each licence is read from the package's own text: the skimage.data docstrings, scikit-learn's
    README next to its images, and the JPEG comment of matplotlib's photo (its only record)."""
    import skimage.data

    for photo in PHOTOS:
        if photo.module == "skimage" and not photo.name.startswith("motorcycle_"):
            doc = getattr(skimage.data, photo.name).__doc__
            key = "CC0" if photo.licence.startswith("CC0") else "public domain"
            assert key in photo.licence and key in doc, photo.name
        elif photo.module == "sklearn":
            readme = (photo_path(photo.name).parent / "README.txt").read_text()
            assert "creativecommons.org/licenses/by/2.0" in readme and photo.licence.startswith("CC BY 2.0")
            assert photo.source.split("(")[-1].rstrip(")") in readme  # the Flickr page
        elif photo.module == "matplotlib":
            with Image.open(photo_path(photo.name)) as image:
                assert "Grace_Hopper.jpg" in image.info["comment"].decode() and "Grace_Hopper.jpg" in photo.source
    assert "Scharstein" in skimage.data.stereo_motorcycle.__doc__


def test_photos_load_offline_in_colour_and_match_the_packages_accessors(monkeypatch):
    """No network is touched; each photo is colour (grey photos are excluded) and its pixels are what
    the package's own accessor returns."""
    def refuse(*args, **kwargs):
        raise AssertionError("a built-in photo tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    import matplotlib.cbook
    import skimage.data
    import sklearn.datasets

    modules = {"skimage": skimage, "sklearn": sklearn, "matplotlib": matplotlib}
    assert skimage.data and sklearn.datasets and matplotlib.cbook  # the accessors' submodules, imported
    for photo in PHOTOS:
        pixels = load_photo(photo.name)
        assert pixels.dtype == torch.float32 and pixels.ndim == 3 and pixels.shape[0] == 3
        assert min(pixels.shape[1:]) >= 256, photo.name
        assert (pixels[0] - pixels[1]).abs().max() > 0.1 and (pixels[1] - pixels[2]).abs().max() > 0.1, photo.name
        given = eval(photo.accessor, {photo.module: modules[photo.module]})  # noqa: S307 - the table's own text
        if hasattr(given, "read"):  # matplotlib hands over the open file
            with given, Image.open(given) as image:
                given = np.asarray(image.convert("RGB"))
        assert torch.equal(image_to_tensor(given), pixels), photo.name


# ---------------------------------------------------------------- crops
def test_evaluation_crops_are_a_fixed_grid_covering_each_photo():
    a = load_dataset_spec({"type": "photos", "split": "test", "crop_size": 128})
    b = load_dataset_spec({"type": "photos", "split": "test", "crop_size": 128, "seed": 5})
    photos = [load_photo(name) for name in SPLIT["test"]]
    assert a.crops == "grid" and len(a) == len(b) == sum(
        len(grid_offsets(p.shape[1], 128)) * len(grid_offsets(p.shape[2], 128)) for p in photos)
    a.set_epoch(3)
    for index in range(len(a)):
        item = a[index]
        assert torch.equal(item["pixel_values"], b[index]["pixel_values"])  # seed and epoch do not matter
        where = a.placement(index)
        photo = photos[where["photo"]]
        window = photo[:, where["top"]:where["top"] + 128, where["left"]:where["left"] + 128]
        assert torch.equal(item["pixel_values"], window) and torch.equal(item["labels"], window)
    assert grid_offsets(300, 128) == [0, 86, 172] and grid_offsets(128, 128) == [0]


def test_training_crops_are_seeded_random_crops_flips_and_rotations():
    spec = {"type": "photos", "split": "train", "crop_size": 64, "num_samples": 40}
    a, again, other = load_dataset_spec(spec), load_dataset_spec(spec), load_dataset_spec({**spec, "seed": 1})
    assert a.crops == "random" and len(a) == 40
    same = [torch.equal(a[i]["pixel_values"], again[i]["pixel_values"]) for i in range(len(a))]
    differ = [not torch.equal(a[i]["pixel_values"], other[i]["pixel_values"]) for i in range(len(a))]
    assert all(same) and all(differ)
    placements = [a.placement(i) for i in range(len(a))]
    assert {p["rotations"] for p in placements} == {0, 1, 2, 3} and {p["flip"] for p in placements} == {False, True}
    assert [p["photo"] for p in placements[:10]] == list(range(5)) * 2  # every photo in turn
    for index in (0, 1, 2, 3, 7):  # each crop is its window, flipped then turned
        where, item = placements[index], a[index]
        photo = load_photo(SPLIT["train"][where["photo"]])
        window = photo[:, where["top"]:where["top"] + 64, where["left"]:where["left"] + 64]
        window = window.flip(-1) if where["flip"] else window
        assert torch.equal(item["pixel_values"], torch.rot90(window, where["rotations"], dims=(1, 2)))
    a.set_epoch(1)
    assert not torch.equal(a[0]["pixel_values"], again[0]["pixel_values"])


def test_items_are_clean_rgb_crops_that_do_not_share_memory():
    data = load_dataset_spec({"type": "photos", "photos": ["chelsea"], "crop_size": [96, 128]})
    item = data[0]
    assert item["pixel_values"].shape == (3, 96, 128) and item["pixel_values"].dtype == torch.float32
    assert 0 <= item["pixel_values"].min() and item["pixel_values"].max() <= 1
    assert torch.equal(item["pixel_values"], item["labels"])
    item["pixel_values"].zero_()
    assert not torch.equal(data[0]["pixel_values"], item["pixel_values"]) and torch.equal(data[0]["labels"], item["labels"])
    random = PhotoCrops([("chelsea", photo_path("chelsea"))], (32, 48), crops="random", num_samples=12)
    assert {random.placement(i)["rotations"] for i in range(12)} <= {0, 2}  # no quarter turns off the square
    assert all(random[i]["pixel_values"].shape == (3, 32, 48) for i in range(12))
    batch = next(iter(torch.utils.data.DataLoader(random, batch_size=4)))
    assert batch["pixel_values"].shape == (4, 3, 32, 48)
    good, skipped = check_items(random, "data.train", same_size=True, task="restoration")
    assert good is random and skipped == []


def _save(path, array):
    Image.fromarray(array).save(path)
    return path


def test_a_users_folder_goes_through_the_same_code(tmp_path):
    """{type: images, path}: every image in the folder, read by image_to_tensor (grey repeated to RGB,
    16-bit at full depth), grid crops unless told."""
    rng = np.random.default_rng(0)
    _save(tmp_path / "a.png", rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    _save(tmp_path / "b.jpg", rng.integers(0, 256, (64, 64), dtype=np.uint8))  # grey
    _save(tmp_path / "c.png", rng.integers(0, 65536, (80, 66), dtype=np.uint16))  # 16-bit grey
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_dataset_spec({"type": "images", "path": str(tmp_path), "crop_size": 64})
    assert isinstance(data, PhotoCrops) and data.crops == "grid" and data.names == ["a.png", "b.jpg", "c.png"]
    assert len(data) == 2 * 2 + 1 + 2 * 2
    for index in range(len(data)):
        where = data.placement(index)
        whole = image_to_tensor(tmp_path / data.names[where["photo"]])
        assert torch.equal(data[index]["pixel_values"], whole[:, where["top"]:where["top"] + 64, where["left"]:where["left"] + 64])
    grey = data[4]["pixel_values"]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    random = load_dataset_spec({"type": "images", "path": str(tmp_path), "crop_size": 32, "crops": "random",
                                "num_samples": 6, "seed": 2})
    assert len(random) == 6 and random.crops == "random"


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("spec, match", [
    ({"type": "photos", "photos": ["astronaut", "lena"]}, r"^photos: unknown photo 'lena'; built-in photos: astronaut, "),
    ({"type": "photos", "split": "validation"}, r"^split: unknown split 'validation'; expected one of train, development, test$"),
    ({"type": "photos", "split": "test", "crop_size": 320}, r"^crop_size: 320x320 \(HxW\) is larger than 1 of the 2 photos, first 'chelsea' \(300x451\); expected at most 300x451$"),
    ({"type": "photos", "split": "test", "crop_size": 0}, r"^crop_size: expected a positive int"),
    ({"type": "photos", "split": "test", "crops": "centre"}, r"^crops: expected one of random, grid, found 'centre'$"),
    ({"type": "photos", "split": "test", "num_samples": 8}, r"^num_samples: only for crops: random"),
    ({"type": "photos", "split": "train", "num_samples": 0}, r"^num_samples: expected an integer >= 1, found 0$"),
    ({"type": "photos", "split": "test", "photos": ["chelsea"]}, r"^photos spec: give either split or photos"),
    ({"type": "photos", "photos": ["chelsea", "chelsea"]}, r"^photos: \['chelsea'\] listed more than once"),
    ({"type": "photos", "photos": []}, r"^photos: expected a non-empty list"),
    ({"type": "photos", "size": 64}, r"^photos spec: unknown keys \['size'\]"),
    ({"type": "images"}, r"^images spec: missing key 'path'$"),
])
def test_bad_photo_specs_fail_in_one_line_before_reading_pixels(spec, match, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("pixels were read before the spec was checked")

    monkeypatch.setattr("quarf_hf.data.crops.image_to_tensor", no_reading)
    with pytest.raises(ValueError, match=match) as caught:
        load_dataset_spec(spec)
    assert "\n" not in str(caught.value)


def test_bad_folders_fail_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("quarf_hf.data.crops.image_to_tensor", lambda *a, **k: pytest.fail("pixels read"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"^path: no images in .*empty; expected files ending in \.png, \.jpg"):
        load_dataset_spec({"type": "images", "path": str(empty)})
    with pytest.raises(FileNotFoundError, match=r"^path: folder not found: .*missing$"):
        load_dataset_spec({"type": "images", "path": str(tmp_path / "missing")})
    small = tmp_path / "small"
    small.mkdir()
    _save(small / "big.png", np.zeros((200, 200, 3), np.uint8))
    _save(small / "tiny.png", np.zeros((40, 300, 3), np.uint8))
    with pytest.raises(ValueError, match=r"^crop_size: 64x64 \(HxW\) is larger than 1 of the 2 photos, first 'tiny.png' \(40x300\)"):
        load_dataset_spec({"type": "images", "path": str(small), "crop_size": 64})
    (small / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"^path: cannot read .*broken.png.* as an image"):
        load_dataset_spec({"type": "images", "path": str(small), "crop_size": 32})
