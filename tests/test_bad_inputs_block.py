"""Bad inputs to the QuARF block (its forward and its construction), each refused in one line naming the
argument. The rows are ``(id, entry point, call(world, out), exception type, text the message must contain)``;
bad_input_world.py says what every row asserts."""

import pytest
import torch

from bad_input_world import assert_api_refuses
from quarf_hf import QuARF
from quarf_hf.models.quarf import QuarfConfig

rand = torch.rand


def _block(x, q=None, hard=False):
    """The (hard-mode) block called on ``x`` and ``q``; by default a valid quality vector for each image."""
    if q is None:
        q = torch.rand(x.shape[0] if isinstance(x, torch.Tensor) and x.ndim else 1, 4)
    return lambda w, out: w["hard_block" if hard else "block"](x, q)


API = [
    # --- QuARF block: forward
    ("block x int64", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.int64)), TypeError, "x:"),
    ("block x int32", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.int32)), TypeError, "x:"),
    ("block x uint8", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.uint8)), TypeError, "x:"),
    ("block x bool", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.bool)), TypeError, "x:"),
    ("block x complex", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.complex64)), TypeError, "x:"),
    ("block hard x int", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.int64), hard=True), TypeError, "x:"),
    ("block x 3-D", "QuARF", _block(rand(8, 6, 6)), ValueError, "x:"),
    ("block x 5-D", "QuARF", _block(rand(1, 1, 8, 6, 6)), ValueError, "x:"),
    ("block x list", "QuARF", lambda w, out: w["block"]([[1.0]], rand(1, 4)), ValueError, "x:"),
    ("block x channels", "QuARF", _block(rand(1, 4, 6, 6)), ValueError, "x:"),
    ("block q shape", "QuARF", _block(rand(1, 8, 6, 6), rand(1, 5)), ValueError, "quality_features"),
    ("block q 1-D", "QuARF", _block(rand(1, 8, 6, 6), rand(4)), ValueError, "quality_features"),
    ("block q batch", "QuARF", _block(rand(2, 8, 6, 6), rand(3, 4)), ValueError, "quality_features"),
    ("block q int", "QuARF", _block(rand(1, 8, 6, 6), torch.ones(1, 4, dtype=torch.int64)), TypeError, "quality_features"),
    ("block q complex", "QuARF", _block(rand(1, 8, 6, 6), torch.ones(1, 4, dtype=torch.complex64)), TypeError, "quality_features"),
    ("block q list", "QuARF", _block(rand(1, 8, 6, 6), [[0.0] * 4]), TypeError, "quality_features"),
    # --- QuARF block: construction
    ("block in_channels 0", "QuARF()", lambda w, out: QuARF(0, quality_dim=4), ValueError, "in_channels"),
    ("block in_channels float", "QuARF()", lambda w, out: QuARF(2.5, quality_dim=4), ValueError, "in_channels"),
    ("block groups not dividing", "QuARF()", lambda w, out: QuARF(6, quality_dim=4), ValueError, "num_groups"),
    ("block num_groups 0", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, num_groups=0), ValueError, "num_groups"),
    ("block num_experts 0", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, num_experts=0), ValueError, "num_experts"),
    ("block top_k 5", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, top_k=5), ValueError, "top_k"),
    ("block top_k 0", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, top_k=0), ValueError, "top_k"),
    ("block mode", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, mode="medium"), ValueError, "mode"),
    ("block router", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, router="rnn"), ValueError, "router"),
    ("block hard_gradient", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, hard_gradient="x"), ValueError, "hard_gradient"),
    ("block experts empty", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, experts=[]), ValueError, "experts"),
    ("block experts dilation 0", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, experts=[(3, 0)]), ValueError, "experts[0]"),
    ("block experts pair", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, experts=[(3,)]), ValueError, "experts[0]"),
    ("block quality_dim 0", "QuARF()", lambda w, out: QuARF(8, quality_dim=0), ValueError, "quality_dim"),
    ("block residual out", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, out_channels=4, residual=True), ValueError, "residual"),
    ("block unknown kwarg", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, dilation=3), TypeError, "QuARF"),
    ("QuarfConfig unknown key", "QuARF()", lambda w, out: QuarfConfig.from_dict({"colour": 1}), ValueError, "QuarfConfig"),
    # --- QuARF block: values that passed silently before the fix (a wrong answer, no error)
    ("block NaN quality", "QuARF", _block(rand(1, 8, 8, 8), torch.full((1, 4), float("nan"))), ValueError, "quality_features: expected finite values, found NaN"),
    ("block inf quality", "QuARF", _block(rand(1, 8, 8, 8), torch.full((1, 4), float("inf"))), ValueError, "found inf"),
    ("block empty map", "QuARF", _block(rand(1, 8, 0, 4)), ValueError, "empty 0x4 feature map"),
]


@pytest.mark.parametrize("case", API, ids=[row[0] for row in API])
def test_api_refuses(bad_input_world, tmp_path, case):
    assert_api_refuses(bad_input_world, tmp_path, case)
