"""quarf_hf.atomic: files and folders appear whole or not at all, with the usual permissions."""

import os
import stat

import pytest

from quarf_hf.atomic import atomic_folder, atomic_path, remove_stale_staging, write_text_atomic


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_file_and_folder_get_the_umask_mode_not_owner_only(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "sub" / "results.json", "{}")
        with atomic_folder(tmp_path / "model") as staging:
            (staging / "config.json").write_text("{}")
    finally:
        os.umask(umask)
    assert path.read_text() == "{}" and mode(path) == 0o644
    assert mode(tmp_path / "model") == 0o755 and (tmp_path / "model" / "config.json").is_file()


def test_failures_leave_nothing_behind_and_keep_the_old_content(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("crash while writing")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "model") as staging:
            (staging / "weights").write_text("half")
            raise RuntimeError("crash while building")
    assert target.read_text() == "old" and (tmp_path / "model" / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "results.json"]


def test_atomic_helpers_remove_their_own_leftovers(tmp_path):
    from quarf_hf.atomic import MARKER

    (tmp_path / ".quarf-staging-model-abc_1234").mkdir()  # a killed atomic_folder("model")
    (tmp_path / ".quarf-staging-model-abc_1234" / "model.safetensors").write_text("half")
    (tmp_path / ".quarf-staging-model-abc_1234" / MARKER).write_text("new model")
    (tmp_path / ".quarf-staging-a.png.zz99aa00.tmp").write_text("half")  # a killed atomic_path("a.png")
    (tmp_path / ".quarf-staging-other-abcdefgh").mkdir()  # another destination's: left to its own writer
    (tmp_path / ".quarf-staging-other-abcdefgh" / MARKER).write_text("new other")
    (tmp_path / ".config").mkdir()  # not a staging name
    with atomic_folder(tmp_path / "model") as staging:
        (staging / "x").write_text("1")
    with atomic_path(tmp_path / "a.png") as temporary:
        temporary.write_text("png")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".config", ".quarf-staging-other-abcdefgh", "a.png", "model"]
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["x"]  # no marker in the result
    assert remove_stale_staging(tmp_path) == [tmp_path / ".quarf-staging-other-abcdefgh"]
