"""Atomic writes and the folder lock."""
import json
import os

import pytest

from tf_ada import fileio


def test_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    path = tmp_path / "eval.json"
    fileio.atomic_write_json(str(path), {"step": 1})
    with pytest.raises(TypeError):
        fileio.atomic_write_json(str(path), {"step": object()})  # cannot be written
    assert json.loads(path.read_text()) == {"step": 1}
    assert os.listdir(tmp_path) == ["eval.json"]


def test_lock_is_exclusive_and_released(tmp_path):
    with fileio.FolderLock(str(tmp_path), "first job"):
        with pytest.raises(fileio.FolderBusyError, match=r"first job, pid \d+"):
            fileio.FolderLock(str(tmp_path), "second job")
    with fileio.FolderLock(str(tmp_path), "third job"):
        pass
