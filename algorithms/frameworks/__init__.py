"""Models written in other frameworks, brought to hwsim as ONNX phases with its metadata.

`tensorflow_export` (hwsim's venv) drives `keras_worker` (TensorFlow's own venv, `.venv-tf`): a
Keras model's inference and training step, converted by tf2onnx. See docs/frameworks.md.
"""

from .tensorflow_export import (FrameworkError, KerasExport, KerasPhaseSpec, convert_keras_phase,
                                export_keras_phase, verify_keras_export)

__all__ = ["FrameworkError", "KerasExport", "KerasPhaseSpec", "convert_keras_phase", "export_keras_phase",
           "verify_keras_export"]
