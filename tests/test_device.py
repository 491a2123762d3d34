"""Device and precision choice, the model's input tensor: what ``auto`` picks on each kind of
machine (the machine's answers replaced), what is refused, and the tensor's values and layout."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from auhm import device as dev
from auhm.errors import UsageError


@pytest.fixture
def machine(monkeypatch):
    """Set what this machine answers: ``machine(cuda=…, cuda_bf16=…, cpu_bf16=…)``."""

    def set_machine(cuda: bool = False, cuda_bf16: bool = False, cpu_bf16: bool = False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
        monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda: cpu_bf16)

    return set_machine


@pytest.fixture
def cpu_flags(monkeypatch):
    """Set the CPU that :func:`cpu_has_native_bf16` reads: ``cpu_flags(capability, cpuinfo)``
    (cpuinfo None: /proc/cpuinfo cannot be read). Its cached answer is forgotten before and after."""
    import builtins

    real_open = builtins.open

    def set_cpu(capability: str, cpuinfo: str | None):
        def fake_open(path, *a, **k):
            if str(path) != "/proc/cpuinfo":
                return real_open(path, *a, **k)
            if cpuinfo is None:
                raise OSError("no /proc here")
            return io.StringIO(cpuinfo)

        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        monkeypatch.setattr(builtins, "open", fake_open)
        dev.cpu_has_native_bf16.cache_clear()
        return dev.cpu_has_native_bf16()

    dev.cpu_has_native_bf16.cache_clear()
    yield set_cpu
    dev.cpu_has_native_bf16.cache_clear()


def test_resolve_device_auto_picks_cuda_only_where_there_is_one(machine):
    machine(cuda=False)
    assert dev.resolve_device("auto") == dev.resolve_device(None) == torch.device("cpu")
    assert dev.resolve_device("CPU") == torch.device("cpu")
    machine(cuda=True)
    assert dev.resolve_device("auto") == torch.device("cuda")
    assert dev.resolve_device("cuda:1") == torch.device("cuda", 1)


def test_resolve_device_refusals_are_usage_errors_naming_the_choices(machine):
    machine(cuda=False)
    with pytest.raises(UsageError, match=r"^--device cuda:1: CUDA is not available on this machine$"):
        dev.resolve_device("cuda:1")
    with pytest.raises(UsageError, match=r"^--device tpu: choose auto, cpu, cuda or cuda:N$"):
        dev.resolve_device("tpu")


def test_cpu_has_native_bf16_from_torchs_capability_or_the_cpu_flags(cpu_flags):
    avx512 = "processor : 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n"
    assert cpu_flags("AVX512", avx512) is False
    assert cpu_flags("AVX512", avx512.replace("avx512bw", "avx512bw avx512_bf16")) is True
    assert cpu_flags("AVX512", avx512.replace("avx512bw", "amx_tile amx_bf16")) is True
    assert cpu_flags("AVX2", "flags : fpu sse avx2\n") is False
    assert cpu_flags("AMX", None) is True  # torch's own string says so: no flags needed
    assert cpu_flags("AVX512", None) is False  # no /proc/cpuinfo: emulated bf16 is assumed


@pytest.mark.parametrize("cuda, cuda_bf16, cpu_bf16, asked, want", [
    (False, False, False, "auto", "fp32"),  # emulated bf16 is slower than fp32
    (False, False, True, "auto", "bf16"),
    (False, False, False, "BF16", "bf16"),  # asked for: given, native or not
    (False, False, True, "fp32", "fp32"),
    (True, True, False, "auto", "bf16"),
    (True, False, False, "auto", "fp16"),  # a card without bf16: fp16 (and the GradScaler)
    (True, True, False, "fp16", "fp16"),
    (True, True, False, "fp32", "fp32"),
])
def test_resolve_precision(machine, cuda, cuda_bf16, cpu_bf16, asked, want):
    machine(cuda=cuda, cuda_bf16=cuda_bf16, cpu_bf16=cpu_bf16)
    assert dev.resolve_precision(torch.device("cuda" if cuda else "cpu"), asked) == want


def test_resolve_precision_refusals(machine):
    machine(cpu_bf16=True)
    with pytest.raises(UsageError, match=r"^--precision fp16 is for CUDA; on CPU use bf16 or fp32$"):
        dev.resolve_precision(torch.device("cpu"), "fp16")
    with pytest.raises(UsageError, match=r"^--precision fp8: choose one of auto, fp32, bf16, fp16$"):
        dev.resolve_precision(torch.device("cpu"), "fp8")


@pytest.mark.parametrize("channels_last", [False, True])
def test_model_input_is_the_crops_over_255_channels_first_in_the_layout_asked(channels_last):
    crops = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    for images in (crops, torch.from_numpy(crops)):
        x = dev.model_input(images, torch.device("cpu"), channels_last)
        assert x.dtype == torch.float32 and x.shape == (3, 3, 8, 8)
        np.testing.assert_allclose(x.numpy(), crops.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        assert x.is_contiguous(memory_format=layout)
        assert channels_last or x.stride() == (192, 64, 8, 1)  # plain NCHW


def test_autocast_and_channels_last_only_for_reduced_precision():
    a = torch.ones(4, 4)
    with dev.autocast_context(torch.device("cpu"), "fp32"):
        assert (a @ a).dtype == torch.float32
    with dev.autocast_context(torch.device("cpu"), "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    assert [dev.use_channels_last(torch.device("cpu"), p) for p in ("fp32", "bf16", "fp16")] == [False, True, True]


def test_grad_scaler_is_active_only_for_fp16_on_cuda(monkeypatch):
    made = []
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device, enabled: made.append((device, enabled)))
    for device in ("cpu", "cuda"):
        for precision in ("fp32", "bf16", "fp16"):
            dev.grad_scaler(torch.device(device), precision)
    assert [enabled for _, enabled in made] == [False, False, False, False, False, True]
    assert [device for device, _ in made] == ["cpu"] * 3 + ["cuda"] * 3
