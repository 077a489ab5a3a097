"""Bad inputs to ``extract_quality`` and ``build_quality_extractor``, each refused in one line naming the
image or the spec. The rows are ``(id, entry point, call(world, out), exception type, text the message must
contain)``; bad_input_world.py says what every row asserts."""

import numpy as np
import pytest
import torch

from bad_input_world import assert_api_refuses
from quarf_hf import build_quality_extractor, extract_quality
from quarf_hf.models.conditioning import quality_vector


def _quality(images, extractor="brisque"):
    return lambda w, out: extract_quality(images(w) if callable(images) else images, extractor)


API = [
    # --- extract_quality / build_quality_extractor
    ("quality empty list", "extract_quality", _quality([]), ValueError, "images"),
    ("quality int32 array 300", "extract_quality", _quality(np.full((32, 32, 3), 300, dtype=np.int32)), ValueError, "images[0]"),
    ("quality float array 0-255", "extract_quality", _quality(np.full((32, 32, 3), 128.0, dtype=np.float32)), ValueError, "divide by 255"),
    ("quality tensor +inf", "extract_quality", _quality(torch.full((3, 32, 32), float("inf"))), ValueError, "+inf"),
    ("quality tensor NaN", "extract_quality", _quality(torch.full((3, 32, 32), float("nan"))), ValueError, "NaN"),
    ("quality complex array", "extract_quality", _quality(np.ones((32, 32, 3), dtype=np.complex64)), TypeError, "images[0]"),
    ("quality complex tensor", "extract_quality", _quality(torch.ones(3, 32, 32, dtype=torch.complex64)), TypeError, "images[0]"),
    ("quality bool array", "extract_quality", _quality(np.ones((32, 32, 3), dtype=bool)), TypeError, "images[0]"),
    ("quality object array", "extract_quality", _quality(np.array([[object()]])), TypeError, "images[0]"),
    ("quality missing path", "extract_quality", _quality(["no-such-image.png"]), FileNotFoundError, "images[0]: no such file 'no-such-image.png'"),
    ("quality five channels", "extract_quality", _quality(torch.rand(5, 32, 32)), ValueError, "images[0]"),
    ("quality too small", "extract_quality", _quality(torch.rand(3, 10, 10)), ValueError, "images[0]"),
    ("quality second bad", "extract_quality", _quality([torch.rand(3, 32, 32), torch.full((3, 32, 32), 2.0)]), ValueError, "images[1]"),
    ("quality bad extractor", "extract_quality", _quality(torch.rand(3, 32, 32), "./niqe"), ValueError, "spec"),
    ("extract_quality niqe", "extract_quality", _quality(torch.rand(3, 32, 32), "niqe"), ValueError, "expected one of 'brisque', 'contrique', 'constant'"),
    ("extract_quality 16-bit as 8-bit", "extract_quality", _quality(np.full((32, 32, 3), 70000, np.int64)), ValueError, "0-255"),
    ("quality_vector 0-255", "quality_vector", lambda w, out: quality_vector(build_quality_extractor("brisque"), torch.full((1, 3, 32, 32), 255.0)), ValueError, "divide by 255"),
    ("quality extractor number", "build_quality_extractor", lambda w, out: build_quality_extractor(5), ValueError, "spec"),
    ("quality extractor module", "build_quality_extractor", lambda w, out: build_quality_extractor(torch.nn.Linear(2, 2)), ValueError, "spec"),
]


@pytest.mark.parametrize("case", API, ids=[row[0] for row in API])
def test_api_refuses(bad_input_world, tmp_path, case):
    assert_api_refuses(bad_input_world, tmp_path, case)
