"""The one registry every plug-in kind uses: names, aliases, metadata, listings, errors, discovery."""

from __future__ import annotations

import ast
import importlib
import sys
import textwrap

import pytest

from auhm.errors import UsageError
from auhm.registry import Registry


def test_register_get_resolve_and_list_sorted():
    reg = Registry("widget")
    reg.register("zeta", 26, aliases=("z",), rank=2)

    @reg.register("alpha", rank=1)
    def alpha():
        return "a"

    assert reg.names() == ["alpha", "zeta"] and reg.get("alpha") is alpha and alpha() == "a"
    assert reg.get("z") == 26 and reg.resolve("z") == "zeta" and reg.resolve("other") == "other"
    assert reg.entry("zeta").meta == {"rank": 2} and reg.entry("zeta").aliases == ("z",)
    assert "z" in reg and "omega" not in reg
    with pytest.raises(UsageError, match=r"^unknown widget 'omega'; choose one of alpha, zeta$"):
        reg.get("omega")
    with pytest.raises(ValueError, match=r"^--widget omega: choose one of alpha, zeta$"):
        reg.get("omega", ValueError, option="--widget")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("z", 0)  # an alias is taken too
    reg.unregister("z")
    assert reg.names() == ["alpha"] and "z" not in reg


def test_order_metadata_and_folded_case():
    reg = Registry("detector", order="preference", fold_case=True)
    reg.register("opencv", 1, preference=1)
    reg.register("Dlib", 0, preference=0)
    assert reg.names() == ["dlib", "opencv"] and reg.get("DLIB") == 0


def test_plug_in_modules_are_imported_by_path_on_the_first_lookup(tmp_path, monkeypatch):
    (tmp_path / "toy_registry.py").write_text("from auhm.registry import Registry\nREG = Registry('toy', ['toy_plugin'])\n")
    (tmp_path / "toy_plugin.py").write_text("from toy_registry import REG\nREG.register('b', 2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    toy = importlib.import_module("toy_registry")
    try:
        assert "toy_plugin" not in sys.modules
        assert toy.REG.names() == ["b"] and toy.REG.get("b") == 2
    finally:
        sys.modules.pop("toy_registry", None)
        sys.modules.pop("toy_plugin", None)


def _imports(module) -> set[str]:
    """The modules a module's source imports, at its top or inside functions."""
    tree = ast.parse(textwrap.dedent(open(module.__file__).read()))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_the_five_plug_in_kinds_share_the_registry_and_no_registry_imports_its_plug_ins():
    """No import cycle between a registry and what registers in it: the registry's module names its
    plug-in modules as paths, and the plug-ins import the registry."""
    from auhm.data import corpora, landmark_formats
    from auhm.face import detectors, registry as face_registry
    from auhm.models import registry as model_registry

    registries = {model_registry: model_registry.MODELS, face_registry: face_registry.BACKENDS, corpora: corpora.CORPORA,
                  landmark_formats: landmark_formats.FORMATS, detectors: detectors.REGISTRY}
    for module, reg in registries.items():
        assert isinstance(reg, Registry)
        assert not _imports(module) & set(reg.modules), module.__name__
        for plugin in reg.modules:
            assert module.__name__ in _imports(importlib.import_module(plugin)), plugin
        assert reg.names() == (sorted(reg.names()) if reg.order is None else reg.names())
    assert model_registry.list_methods() == ["adaptation", "attention", "finetune", "landmarks", "random-backbone", "reparam",
                                             "resnet18", "scratch"]
    assert face_registry.backend_names() == ["dlib", "fan", "network", "truth"] and face_registry.backend_name("auhm") == "network"
    assert corpora.corpus_kinds() == ["aff-wild2", "bp4d", "csv", "disfa", "disfa-plus", "feafa-plus", "fera2017", "synth", "unbc"]
    assert landmark_formats.landmark_formats() == ["300w", "300w-lp", "ls3d-w", "wflw"]
    assert detectors.detector_names() == ("dlib", "opencv", "dlib-cnn", "mtcnn")  # the order of preference (the CNNs only when named)  # the order of preference (the CNN only when named), not of the alphabet


def test_training_settings_come_from_the_model_registry(request):
    """A method registered with its learning rate is one `auhm train` knows, with that rate."""
    from auhm.models.registry import MODELS, register
    from auhm.train.config import DEFAULT_LR, METHODS, TRANSFER_METHODS, TrainConfig

    assert DEFAULT_LR["finetune"] == DEFAULT_LR["resnet18"] == 1e-4 and DEFAULT_LR["scratch"] == 1e-3
    assert set(TRANSFER_METHODS) == {"finetune", "adaptation", "attention", "reparam"} and "landmarks" not in METHODS
    register("toy-method", lr=0.25)(lambda aus, preset: None)
    request.addfinalizer(lambda: MODELS.unregister("toy-method"))
    assert TrainConfig("data", "out", method="toy-method").learning_rate == 0.25
