"""Bad inputs to the Hub builders (``build_contrique_folder``, ``build``), each refused in one line naming
the file or setting. The rows are ``(id, entry point, call(world, out), exception type, text the message must
contain)``; bad_input_world.py says what every row asserts."""

import pytest

from bad_input_world import assert_api_refuses, yaml_file


def _convert(key):
    def call(w, out):
        from quarf_hf.hub.convert_contrique import build_contrique_folder

        return build_contrique_folder(out, checkpoint=w[key])
    return call


def _hub_config(content, name="variant.yaml"):
    def call(w, out):
        from quarf_hf.hub.build import build

        path = yaml_file(w, name, content)
        return build(path, out)
    return call


API = [
    # --- convert-contrique / build (library)
    ("convert text", "build_contrique_folder", _convert("text_tar"), ValueError, "text.tar"),
    ("convert random", "build_contrique_folder", _convert("random_tar"), ValueError, "random.tar"),
    ("convert code", "build_contrique_folder", _convert("evil_tar"), ValueError, "evil.tar"),
    ("convert wrong keys", "build_contrique_folder", _convert("wrong_tar"), ValueError, "checkpoint"),
    ("convert list", "build_contrique_folder", _convert("list_tar"), ValueError, "checkpoint"),
    ("build yaml syntax", "build", _hub_config("name: x\nmodel: [quarf\n"), ValueError, "line"),
    ("build model kind", "build", _hub_config({"name": "x", "model": "vit"}), ValueError, "model"),
    ("build segformer list", "build", _hub_config({"name": "x", "model": "quarf_segformer", "segformer": [1]}), ValueError, "segformer"),
    ("build stage", "build", _hub_config({"name": "x", "model": "quarf_segformer", "segformer": {"hidden_sizes": [8, 16]}, "quarf": {"stage": 5}}), ValueError, "quarf.stage"),
    ("build missing name", "build", _hub_config({"model": "quarf_segformer"}), ValueError, "name"),
]


@pytest.mark.parametrize("case", API, ids=[row[0] for row in API])
def test_api_refuses(bad_input_world, tmp_path, case):
    assert_api_refuses(bad_input_world, tmp_path, case)
