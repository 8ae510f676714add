"""The export cache: exported models on disk, keyed by everything that determines them, that
heal when damaged.

    cache = ExportCache(".hwsim-cache")
    model = cache.load(spec)          # None: not cached (or the entry was damaged and removed)
    cache.store(spec, model, report)

An entry is two files: `<algorithm>-<phase>-<key>.onnx`, the model, and beside it
`<...>.json`, its manifest: the key, the SHA-256 and size of the model file, the spec and the
verification summary. The manifest is written last, so an entry without one was never
finished. On load, a missing or unreadable manifest, another key, or a model file whose size or
hash differs from the manifest's (truncated by a full disk, corrupted by a crash) is reported in
one line (a logged warning), the entry is deleted, and the caller exports afresh — never a
`DecodeError` on every later run.

The key (`entry_key`) is a SHA-256 of the spec's fields, the torch / onnx / onnxscript /
onnxruntime versions, `EXPORT_FORMAT_VERSION`, and the source text of every module that shapes
the graph (`graph_sources`): the exporter's own modules, the modules defining the algorithm
class and its bases, and those defining the backbone's functions. Editing any of them
invalidates the entries they produced.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import logging
import os
from pathlib import Path

import onnx
import onnxruntime
import onnxscript
import torch

from hwsim.files import write_atomic

from .backbones import BACKBONES
from .base import ALGORITHMS
from .spec import PhaseSpec

# Bump when exported graphs or their metadata change for reasons the key's other parts do not
# see (e.g. a data file read at export time).
EXPORT_FORMAT_VERSION = "3"
# The modules whose source shapes every exported graph (algorithm and backbone modules are
# added per spec).
EXPORTER_MODULES = ("algorithms.base", "algorithms.export", "algorithms.meta_batch",
                    "algorithms.phase_graph", "algorithms.phases", "algorithms.precision",
                    "algorithms.sinusoid", "algorithms.spec", "algorithms.synthetic",
                    "algorithms.torch_onnx", "algorithms.trace", "hwsim.scope")

log = logging.getLogger(__name__)


class ExportCache:
    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def paths(self, spec: PhaseSpec) -> tuple[Path, Path]:
        """(model file, manifest file) of `spec`'s entry."""
        stem = f"{spec.algorithm}-{spec.phase}-{entry_key(spec)[:32]}"
        return self.folder / f"{stem}.onnx", self.folder / f"{stem}.json"

    def load(self, spec: PhaseSpec) -> onnx.ModelProto | None:
        model_path, manifest_path = self.paths(spec)
        if not model_path.exists() and not manifest_path.exists():
            return None
        problem = None
        data = b""
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            data = model_path.read_bytes()
            if manifest.get("key") != entry_key(spec):
                problem = "its manifest belongs to another export"
            elif manifest.get("size") != len(data) or manifest.get("sha256") != hashlib.sha256(data).hexdigest():
                problem = (f"the model file has {len(data)} bytes and SHA-256 "
                           f"{hashlib.sha256(data).hexdigest()[:12]}…, its manifest says "
                           f"{manifest.get('size')} and {str(manifest.get('sha256'))[:12]}…")
        except (OSError, ValueError, AttributeError) as e:
            problem = f"{type(e).__name__}: {e}"
        if problem is None:
            return onnx.load_from_string(data)
        log.warning("hwsim: cache entry %s is damaged (%s); exporting afresh", model_path.name, problem)
        model_path.unlink(missing_ok=True)
        manifest_path.unlink(missing_ok=True)
        return None

    def store(self, spec: PhaseSpec, model: onnx.ModelProto, verification: str | None) -> Path:
        model_path, manifest_path = self.paths(spec)
        data = model.SerializeToString()
        write_atomic(model_path, data)
        manifest = {"key": entry_key(spec), "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data), "spec": spec.fields(), "verification": verification}
        write_atomic(manifest_path, (json.dumps(manifest, indent=1) + "\n").encode())
        return model_path


def entry_key(spec: PhaseSpec) -> str:
    """SHA-256 of everything that determines `spec`'s exported model (see the module docstring)."""
    key = {
        "spec": spec.fields(),
        "export_format": EXPORT_FORMAT_VERSION,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__,
                     "onnxscript": onnxscript.__version__, "onnxruntime": onnxruntime.__version__},
        "sources": _sources_digest(spec.algorithm, spec.backbone),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def graph_sources(algorithm: str, backbone: str) -> list[str]:
    """The source files of the modules that shape the graphs of `algorithm` on `backbone`."""
    modules = set(EXPORTER_MODULES)
    for cls in ALGORITHMS.lookup(algorithm).__mro__:
        if cls.__module__ != "builtins":
            modules.add(cls.__module__)
    bb = BACKBONES.lookup(backbone)
    for fn in (bb.init, bb.embed, bb.head, bb.loss):
        modules.add(fn.__module__)
    files = set()
    for name in modules:
        module = importlib.import_module(name)
        files.add(inspect.getsourcefile(module))
    return sorted(files)


@functools.lru_cache(maxsize=None)
def _sources_digest(algorithm: str, backbone: str) -> str:
    digest = hashlib.sha256()
    for path in graph_sources(algorithm, backbone):
        digest.update(Path(path).name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()
