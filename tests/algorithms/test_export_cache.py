"""The export cache: a hit returns the stored bytes without exporting; a damaged entry is
reported in one line and rebuilt; the key covers the versions and the source of the code that
shapes the graph."""

import json
import logging

import pytest

import algorithms.export_cache as export_cache
from algorithms.export import export_phase
from algorithms.export_cache import ExportCache, entry_key, graph_sources
from algorithms.spec import PhaseSpec

SPEC = PhaseSpec(algorithm="fomaml", phase="adapt", inner_steps=1, shot=5, query=5)


@pytest.fixture
def cached(tmp_path):
    model = export_phase(SPEC, cache_dir=tmp_path)
    return tmp_path, model


def _no_export(monkeypatch):
    import algorithms.export as export
    monkeypatch.setattr(export, "trace_phase", lambda *a, **k: pytest.fail("re-exported on a cache hit"))


def test_a_hit_returns_identical_bytes_without_exporting(cached, monkeypatch):
    folder, first = cached
    model_path, manifest_path = ExportCache(folder).paths(SPEC)
    assert sorted(p.name for p in folder.iterdir()) == sorted([model_path.name, manifest_path.name])
    manifest = json.loads(manifest_path.read_text())
    assert manifest["key"] == entry_key(SPEC) and manifest["spec"]["algorithm"] == "fomaml"
    assert manifest["verification"].startswith("verified fomaml/adapt")
    _no_export(monkeypatch)
    second = export_phase(SPEC, cache_dir=folder)
    assert second.SerializeToString() == first.SerializeToString() == model_path.read_bytes()


@pytest.mark.parametrize("damage", ["truncate", "flip", "no manifest", "bad manifest", "no model"])
def test_a_damaged_entry_is_reported_once_and_rebuilt(cached, caplog, damage):
    folder, first = cached
    model_path, manifest_path = ExportCache(folder).paths(SPEC)
    data = model_path.read_bytes()
    if damage == "truncate":
        model_path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        model_path.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "no manifest":
        manifest_path.unlink()
    elif damage == "bad manifest":
        manifest_path.write_text("{not json")
    else:
        model_path.unlink()
    with caplog.at_level(logging.WARNING, logger="algorithms.export_cache"):
        rebuilt = export_phase(SPEC, cache_dir=folder)
    notices = [r.getMessage() for r in caplog.records if r.name == "algorithms.export_cache"]
    assert len(notices) == 1 and "damaged" in notices[0] and "\n" not in notices[0]
    assert rebuilt.SerializeToString() == first.SerializeToString()
    assert model_path.read_bytes() == first.SerializeToString()
    # healed: the next run is a quiet hit
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="algorithms.export_cache"):
        export_phase(SPEC, cache_dir=folder)
    assert not caplog.records


@pytest.fixture
def fresh_digests():
    """Source digests are memoised per process; forget the ones a test made up."""
    export_cache._sources_digest.cache_clear()
    yield
    export_cache._sources_digest.cache_clear()


def test_the_key_covers_spec_versions_and_sources(monkeypatch, tmp_path, fresh_digests):
    key = entry_key(SPEC)
    assert key != entry_key(SPEC.replace(inner_lr=0.02)) and key != entry_key(SPEC.replace(seed=1))
    files = {p.rsplit("/", 1)[-1] for p in graph_sources("reptile", "conv4_64_28x28x1")}
    assert {"reptile.py", "base.py", "backbones.py", "trace.py", "meta_batch.py", "scope.py"} <= files
    assert "maml.py" not in files
    assert "maml.py" in {p.rsplit("/", 1)[-1] for p in graph_sources("anil", "sine_mlp")}
    # Editing a source that shapes the graph changes the key.
    source = tmp_path / "maml.py"
    source.write_text("# v1\n")
    monkeypatch.setattr(export_cache, "graph_sources", lambda *a: [str(source)])
    export_cache._sources_digest.cache_clear()
    before = entry_key(SPEC)
    source.write_text("# v2\n")
    export_cache._sources_digest.cache_clear()
    assert entry_key(SPEC) != before
    export_cache._sources_digest.cache_clear()
    monkeypatch.setattr(export_cache.torch, "__version__", "9.9.9")
    assert entry_key(SPEC) != before


def test_no_cache_folder_means_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    export_phase(SPEC)
    assert list(tmp_path.iterdir()) == []
