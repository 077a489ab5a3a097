"""quarf_hf.atomic: files and folders appear whole or not at all, with the usual permissions."""

import os
import stat

import pytest

from quarf_hf.atomic import atomic_folder, atomic_path, write_text_atomic


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
