"""The toolchains that turn a network into files: ONNX (fp32 and int8), LiteRT (.tflite,
``nas.export.litert``) and ExecuTorch (.pte, ``nas.export.executorch``); the last two are optional
extras, imported where used."""

from nas.export._onnx import (
    export_module,
    export_onnx,
    onnx_accuracy,
    onnx_accuracy_batches,
    ort_session,
    quantize_int8,
    strip_boundary_qdq,
    time_session,
)

__all__ = [
    "export_module",
    "export_onnx",
    "onnx_accuracy",
    "onnx_accuracy_batches",
    "ort_session",
    "quantize_int8",
    "strip_boundary_qdq",
    "time_session",
]
