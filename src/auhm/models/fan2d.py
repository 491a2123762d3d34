"""face-alignment's pretrained 2DFAN4 as a frozen backbone, when its weights file is on this machine.

Nothing is ever downloaded: the file is looked up where face-alignment and torch.hub cache it.
Both forms face-alignment has released are read: a TorchScript archive (``2DFAN4-….zip``) and
a plain state dict (``2DFAN4-….pth.tar``).
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

FAN_URL_HINT = "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar"


def checkpoint_dirs() -> list[Path]:
    """The folders where face-alignment and torch.hub keep downloaded weights, most specific first."""
    dirs = []
    if os.environ.get("TORCH_HOME"):
        dirs.append(Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints")
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")  # face-alignment's own cache
    dirs.append(Path.home() / ".cache" / "torch" / "hub" / "checkpoints")
    return list(dict.fromkeys(dirs))


def fan_weights_path(name: str = "2DFAN4") -> Path | None:
    """The local weights file of a face-alignment network (e.g. 2DFAN4-11f355bf06.pth.tar), or None.

    Names are matched ignoring '-' and '_' ("2DFAN-4" finds 2DFAN4-….pth.tar; "s3fd" finds s3fd-….pth).
    """
    letters = [re.escape(c) for c in re.sub(r"[-_]", "", name)]
    pattern = re.compile(rf"^{'[-_]?'.join(letters)}([-_.].*)?\.(pth\.tar|pth|pt|zip)$", re.IGNORECASE)
    for d in checkpoint_dirs():
        if d.is_dir():
            found = sorted(p for p in d.iterdir() if p.is_file() and pattern.match(p.name))
            if found:
                return found[0]
    return None


def missing_weights_message(name: str = "2DFAN4") -> str:
    where = checkpoint_dirs()[0]
    return (
        f"face-alignment weights {name} not found locally; download {FAN_URL_HINT} on a machine with network "
        f"and put the file in {where} (or set TORCH_HOME; a TorchScript 2DFAN4-….zip of face-alignment is read too)"
    )


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n or n.startswith("code/") for n in z.namelist())


def read_fan_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """FAN weights from either release format, with any 'module.' prefix removed."""
    path = Path(path)
    if _is_torchscript(path):
        state = torch.jit.load(str(path), map_location="cpu").state_dict()
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    if not isinstance(state, dict) or "conv1.weight" not in {k.removeprefix("module.") for k in state}:
        raise ValueError(f"{path}: not a face-alignment FAN state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _n_modules(state: dict) -> int:
    return 1 + max(int(m.group(1)) for k in state if (m := re.match(r"m(\d+)\.", k)))


class Fan2DBackbone(nn.Module):
    """face-alignment's FAN: conv4 features (256 ch) and the last stack's 68 heatmaps, one pass."""

    feature_channels = 256

    def __init__(self, num_modules: int = 4):
        super().__init__()
        from face_alignment.models.fan import FAN

        self.fan = FAN(num_modules)

    @classmethod
    def from_local_weights(cls, name: str = "2DFAN4", path: str | os.PathLike | None = None) -> "Fan2DBackbone":
        path = Path(path) if path is not None else fan_weights_path(name)
        if path is None:
            raise FileNotFoundError(missing_weights_message(name))
        state = read_fan_state_dict(path)
        model = cls(_n_modules(state))
        model.fan.load_state_dict(state)
        return model

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fan = self.fan
        x = F.relu(fan.bn1(fan.conv1(x)), True)
        x = F.avg_pool2d(fan.conv2(x), 2, stride=2)
        features = fan.conv4(fan.conv3(x))
        previous, out = features, None
        for i in range(fan.num_modules):
            ll = fan._modules[f"top_m_{i}"](fan._modules[f"m{i}"](previous))
            ll = F.relu(fan._modules[f"bn_end{i}"](fan._modules[f"conv_last{i}"](ll)), True)
            out = fan._modules[f"l{i}"](ll)
            if i < fan.num_modules - 1:
                previous = previous + fan._modules[f"bl{i}"](ll) + fan._modules[f"al{i}"](out)
        return features, out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]
