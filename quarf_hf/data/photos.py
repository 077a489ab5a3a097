"""The built-in photographs: real colour photos that ship inside installed packages (no download),
with their source, licence and a fixed split by photograph.

Chosen from every image file that the wheels of scikit-image 0.26, scikit-learn 1.9 and
matplotlib 3.11 carry (``skimage/data``, ``sklearn/datasets/images``,
``matplotlib/mpl-data/sample_data``). Images that scikit-image fetches on first use (pooch) are
not considered: they would need the network. Left out (see :data:`EXCLUDED`): drawings, text,
synthetic and medical or microscope images, and images that already carry a degradation.

**Grey photographs are excluded**: the built-in set is colour photographs only (the restoration
targets are RGB, and a grey target teaches nothing about colour; the colour kinds, such as
``saturate``, would leave it as it is). A user's folder (``{type: images}``) is read as every entry
point of quarf-hf reads images (:func:`quarf_hf.models.image_utils.image_to_tensor`), which repeats
a grey image to three equal channels.

**The split is by photograph** and fixed here: train 5, development 2, test 2. The two views of
the Middlebury motorcycle stereo pair, nearly the same picture, are both in development, so no
test photo has a near-copy in training and every training photo has a licence that asks at most
attribution (CC BY 2.0: ``china``, ``flower``).

Licences are as each package states them next to the file (scikit-image's ``skimage.data``
docstrings, scikit-learn's ``sklearn/datasets/images/README.txt``); where the package states none,
the entry says so and gives what the original source says.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch

from ..models.checks import InputError

SPLITS = ("train", "development", "test")


@dataclass(frozen=True)
class Photo:
    """One built-in photograph.

    Attributes:
        name: what specs and the Space call it.
        split: ``train``, ``development`` or ``test``.
        package: the distribution that ships it (what ``pip install`` takes).
        module: that distribution's import name.
        file: the file, relative to the module's folder.
        accessor: the package's own call that returns the same pixels (the tests check it).
        source: the original source, as the package's documentation gives it.
        licence: the licence, as the package's documentation gives it.
    """

    name: str
    split: str
    package: str
    module: str
    file: str
    accessor: str
    source: str
    licence: str


_MIDDLEBURY = ("Middlebury 2014 stereo benchmark (Scharstein et al., GCPR 2014), {view} view of 'Motorcycle', "
               "down-sampled 4x by scikit-image")
_MIDDLEBURY_LICENCE = ("none stated by scikit-image (skimage.data.stereo_motorcycle); the Middlebury stereo pages "
                       "ask users of the data to cite Scharstein et al. 2014")

PHOTOS: tuple[Photo, ...] = (
    # ---- train
    Photo("astronaut", "train", "scikit-image", "skimage", "data/astronaut.png", "skimage.data.astronaut()",
          "Eileen Collins, NASA Great Images database (https://flic.kr/p/r9qvLn)",
          "public domain (no known copyright restrictions)"),
    Photo("rocket", "train", "scikit-image", "skimage", "data/rocket.jpg", "skimage.data.rocket()",
          "launch of DSCOVR on a Falcon 9, SpaceX Photos (https://www.flickr.com/photos/spacexphotos/16511594820/)",
          "public domain (released by SpaceX)"),
    Photo("china", "train", "scikit-learn", "sklearn", "datasets/images/china.jpg",
          "sklearn.datasets.load_sample_image('china.jpg')",
          "danielbuechele on Flickr (https://www.flickr.com/photos/danielbuechele/6061409035/)",
          "CC BY 2.0 (attribution: danielbuechele)"),
    Photo("flower", "train", "scikit-learn", "sklearn", "datasets/images/flower.jpg",
          "sklearn.datasets.load_sample_image('flower.jpg')",
          "vultilion on Flickr (https://www.flickr.com/photos/vultilion/6056698931/)",
          "CC BY 2.0 (scikit-learn's README credits danielbuechele; the Flickr page is vultilion's)"),
    Photo("grace_hopper", "train", "matplotlib", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
          "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
          "Commodore Grace M. Hopper, U.S. Navy photograph (https://commons.wikimedia.org/wiki/File:Grace_Hopper.jpg, "
          "named in the file's JPEG comment)",
          "public domain (work of the U.S. federal government); matplotlib states no licence for it"),
    # ---- development: the stereo pair, both views on this side
    Photo("motorcycle_left", "development", "scikit-image", "skimage", "data/motorcycle_left.png",
          "skimage.data.stereo_motorcycle()[0]", _MIDDLEBURY.format(view="left"), _MIDDLEBURY_LICENCE),
    Photo("motorcycle_right", "development", "scikit-image", "skimage", "data/motorcycle_right.png",
          "skimage.data.stereo_motorcycle()[1]", _MIDDLEBURY.format(view="right"), _MIDDLEBURY_LICENCE),
    # ---- test
    Photo("chelsea", "test", "scikit-image", "skimage", "data/chelsea.png", "skimage.data.chelsea()",
          "Chelsea the cat, photographed by Stefan van der Walt", "CC0 (by the photographer)"),
    Photo("coffee", "test", "scikit-image", "skimage", "data/coffee.png", "skimage.data.coffee()",
          "coffee cup, courtesy of Pikolo Espresso Bar, photographed by Rachel Michetti", "CC0 (by the photographer)"),
)

# What the same wheels carry and the set leaves out, with the reason.
EXCLUDED: dict[str, str] = {
    **{name: "grey photograph (grey photos are excluded)" for name in
       ("skimage camera", "skimage coins", "skimage moon", "skimage brick", "skimage grass", "skimage gravel")},
    "skimage clock_motion": "already motion-blurred (and grey)",
    "skimage hubble_deep_field": "astronomical telescope image",
    "skimage retina": "medical fundus image",
    "skimage cell / ihc / microaneurysms": "microscopy or medical images",
    "skimage lfw_subset": "25 x 25 grey face crops",
    "skimage horse / text / page / logo / chessboard / color / phantom": "drawings, text or synthetic images",
    "matplotlib Minduka_Present_Blue_Pack.png": "a drawing",
}

_BY_NAME = {photo.name: photo for photo in PHOTOS}


def check_split(split, argument: str = "split") -> str:
    """One of :data:`SPLITS`."""
    if split not in SPLITS:
        raise InputError(f"{argument}: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


def photo_names(split: str | None = None) -> list[str]:
    """The built-in photos' names in table order, of one split or (``None``) all."""
    if split is not None:
        check_split(split)
    return [photo.name for photo in PHOTOS if split is None or photo.split == split]


def get_photo(name, argument: str = "photos") -> Photo:
    """The table entry of the photo called ``name``."""
    if not isinstance(name, str) or name not in _BY_NAME:
        raise InputError(f"{argument}: unknown photo {name!r}; built-in photos: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def photo_path(name, argument: str = "photos") -> Path:
    """The file of a built-in photo inside its installed package (the package is not imported)."""
    photo = get_photo(name, argument)
    spec = importlib.util.find_spec(photo.module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{argument}: photo {name!r} ships with {photo.package}, which is not installed; "
                                f"pip install {photo.package}")
    path = Path(list(spec.submodule_search_locations)[0]) / photo.file
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: photo {name!r} is not in the installed {photo.package} "
                                f"(expected {path}); a version that ships it is needed")
    return path


def load_photo(name, argument: str = "photos") -> torch.Tensor:
    """A built-in photo as (3, H, W) float32 RGB in [0, 1], read by
    :func:`quarf_hf.models.image_utils.image_to_tensor` (for the demo and the Space)."""
    from ..models.image_utils import image_to_tensor

    return image_to_tensor(photo_path(name, argument), argument)
