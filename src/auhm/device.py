"""Device and precision choice, and the model's input tensor: shared by training, annotation and the landmark backends.

``auto`` means: CUDA when present with bf16 autocast (fp16 + GradScaler on cards without bf16);
on CPU, bf16 autocast + channels_last only where the CPU has native bf16 (AVX512_BF16 or AMX),
since emulated bf16 is slower than fp32.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from auhm.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' → cuda if available else cpu; 'cuda:1' etc. pass through after a check."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:  # torch's message lists every device type it was ever built for
        raise UsageError(f"--device {name}: choose auto, cpu, cuda or cuda:N") from None


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware (AVX512_BF16 or AMX).

    torch's capability string stops at "AVX512", so read the CPU flags themselves (Linux).
    """
    cap = torch.backends.cpu.get_cpu_capability().upper()
    if "AVX512_BF16" in cap or "AMX" in cap:
        return True
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """Concrete precision ('fp32', 'bf16' or 'fp16') for this device."""
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        if precision == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return precision
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16":
        raise UsageError("--precision fp16 is for CUDA; on CPU use bf16 or fp32")
    return precision


def autocast_context(device: torch.device, precision: str):
    """Autocast for bf16/fp16, a no-op for fp32."""
    if precision not in _DTYPES:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def use_channels_last(device: torch.device, precision: str) -> bool:
    """channels_last pays off with tensor cores (CUDA AMP) and oneDNN bf16 on CPU, not in fp32 CPU."""
    return precision in _DTYPES


def model_input(images, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, S, S, 3) crops, numpy or tensor → float (B, 3, S, S) in [0, 1] on the device.

    Converted on the device (a quarter of the bytes to copy). The permuted tensor already has
    channels_last strides, so only the NCHW layout needs a copy.
    """
    x = torch.as_tensor(images).to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A GradScaler that is active only for fp16 (bf16 has fp32's range)."""
    return torch.amp.GradScaler(device.type, enabled=(precision == "fp16" and device.type == "cuda"))
