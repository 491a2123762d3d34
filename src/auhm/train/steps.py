"""One optimisation step: the batch on the device, the heatmap targets, the masked loss."""

from __future__ import annotations

import torch

from auhm.device import autocast_context, model_input
from auhm.targets.heatmaps import au_heatmaps, au_target_mask, landmark_heatmaps, masked_mse


def batch_to_device(batch: dict, device: torch.device, channels_last: bool) -> tuple[torch.Tensor, dict]:
    """uint8 HWC crops → float B×3×S×S in [0, 1] on the device (converted there: 4× less to copy)."""
    images = model_input(batch["image"], device, channels_last)
    rest = {k: batch[k].to(device, non_blocking=True) for k in ("landmarks", "labels", "negative")}
    return images, rest


def training_loss(outputs: dict, batch: dict, model, task: str) -> torch.Tensor:
    """Masked heatmap MSE against targets built here from (landmarks, intensities); regression: masked MSE."""
    landmarks, labels = batch["landmarks"].float(), batch["labels"].float()
    size = model.input_size
    if task == "landmarks":
        target = landmark_heatmaps(landmarks, size, model.map_size) * (~batch["negative"]).float()[:, None, None, None]
        return torch.nn.functional.mse_loss(outputs["heatmaps"].float(), target)
    mask = au_target_mask(labels)
    if model.output_kind == "regression":
        return masked_mse(outputs["intensities"].float(), torch.nan_to_num(labels), mask)
    target = au_heatmaps(landmarks, labels, model.aus, size, model.map_size)
    return masked_mse(outputs["heatmaps"].float(), target, mask)


def train_step(net, model, images: torch.Tensor, batch: dict, optimizer, scaler, device: torch.device, precision: str, task: str) -> torch.Tensor:
    """One optimisation step (forward under autocast, loss in fp32, scaled backward); returns the loss."""
    with autocast_context(device, precision):
        outputs = net(images)
    loss = training_loss(outputs, batch, model, task)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss
