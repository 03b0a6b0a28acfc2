"""LiteRT export failures: one clear error naming the operator, no partial file, ONNX kept."""

import numpy as np
import pytest
import torch

from nas.errors import ExportError
from nas.export import litert

pytestmark = pytest.mark.skipif(not litert.available(), reason='needs pip install "hwnas[litert]"')


class Unlowerable(torch.nn.Module):
    """An operator the converter has no lowering for (a singular value decomposition)."""

    def forward(self, x):
        return torch.linalg.svdvals(x.flatten(2)).sum(-1)


def test_a_failed_conversion_names_the_operator_and_leaves_nothing_behind(tmp_path, capfd):
    with pytest.raises(ExportError, match=r"bad.tflite: LiteRT conversion failed at operator aten\._linalg_svd"):
        litert.export_tflite(Unlowerable(), tmp_path / "bad.tflite", [1, 3, 8, 8])
    assert list(tmp_path.iterdir()) == []
    assert "flatbuffer" not in capfd.readouterr().err  # the converter's native logging stays quiet


def test_the_winner_section_records_the_failure_and_keeps_the_onnx_files(tmp_path):
    from nas.winner import tflite_section

    (tmp_path / "model.onnx").write_bytes(b"onnx")  # stands for the files written before
    x = np.zeros((2, 3, 8, 8), np.float32)
    sec = tflite_section(Unlowerable(), tmp_path, [1, 3, 8, 8], x, lambda: [(x, np.zeros(2, np.int64))])
    assert sec.written is False and len(sec.errors) == 2
    assert all("aten._linalg_svd" in e for e in sec.errors)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
