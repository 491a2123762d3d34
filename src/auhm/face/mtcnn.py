"""MTCNN (Zhang et al., 2016): a cascade of three small CNNs that finds faces HOG misses.

A proposal net (P-Net) slides a 12-px window over an image pyramid, a refinement net (R-Net)
scores each proposal's 24-px crop and an output net (O-Net) its 48-px crop; each stage corrects
the boxes and drops overlaps. It finds dark-skinned, turned and partly hidden faces that dlib's
HOG scores below its threshold, at a CPU cost close to HOG's (figures in bench/RESULTS.md).

The weights are the ones the PyPI package ``facenet-pytorch`` ships (MIT, converted from the
authors' release); auhm reads its data files only, found by spec without importing it (its
code needs torchvision and pins an old torch), so install it with ``pip install --no-deps
facenet-pytorch==2.6.0``. The nets below are written to load those state dicts as they are.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from auhm.face.base import Detection
from auhm.face.boxes import box_iou
from auhm.face.detectors import MIN_FACE, BoxConvention, detection_scale, installed_file, register_detector

INSTALL_HINT = "pip install --no-deps facenet-pytorch==2.6.0 (auhm reads its MTCNN weights only)"
WEIGHT_FILES = {"pnet": "pnet.pt", "rnet": "rnet.pt", "onet": "onet.pt"}


def mtcnn_weights() -> Path | None:
    """The folder holding facenet-pytorch's MTCNN state dicts, or None where it is not installed."""
    folder = installed_file("facenet_pytorch", "data")
    return folder if folder is not None and all((folder / f).is_file() for f in WEIGHT_FILES.values()) else None


class Stage(nn.Module):
    """One net of the cascade: a trunk of layers run in order, then its heads on the trunk's
    output (face logits first, then box offsets). Dense layers flatten the feature map as the
    converted weights expect (width first)."""

    def __init__(self, trunk: list[tuple[str, nn.Module]], heads: list[tuple[str, nn.Module]]):
        super().__init__()
        self.trunk_names = [name for name, _ in trunk]
        self.head_names = [name for name, _ in heads]
        for name, layer in trunk + heads:
            self.add_module(name, layer)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        for name in self.trunk_names:
            layer = getattr(self, name)
            if isinstance(layer, nn.Linear) and x.dim() == 4:
                x = x.permute(0, 3, 2, 1).flatten(1)
            x = layer(x)
        return [getattr(self, name)(x) for name in self.head_names]


def _conv(name: str, cin: int, cout: int, k: int, pool: tuple[int, int] | None = None) -> list[tuple[str, nn.Module]]:
    n = name[-1]
    layers = [(name, nn.Conv2d(cin, cout, k)), (f"prelu{n}", nn.PReLU(cout))]
    if pool:
        layers.append((f"pool{n}", nn.MaxPool2d(pool[0], pool[1], ceil_mode=True)))
    return layers


def proposal_net() -> Stage:
    """P-Net: fully convolutional, one 12-px window every 2 px → face probability and box offsets."""
    trunk = _conv("conv1", 3, 10, 3, (2, 2)) + _conv("conv2", 10, 16, 3) + _conv("conv3", 16, 32, 3)
    return Stage(trunk, [("conv4_1", nn.Conv2d(32, 2, 1)), ("conv4_2", nn.Conv2d(32, 4, 1))])


def refine_net() -> Stage:
    """R-Net: a 24-px crop → face probability and box offsets."""
    trunk = _conv("conv1", 3, 28, 3, (3, 2)) + _conv("conv2", 28, 48, 3, (3, 2)) + _conv("conv3", 48, 64, 2)
    trunk += [("dense4", nn.Linear(576, 128)), ("prelu4", nn.PReLU(128))]
    return Stage(trunk, [("dense5_1", nn.Linear(128, 2)), ("dense5_2", nn.Linear(128, 4))])


def output_net() -> Stage:
    """O-Net: a 48-px crop → face probability, box offsets (and five points, unused here)."""
    trunk = _conv("conv1", 3, 32, 3, (3, 2)) + _conv("conv2", 32, 64, 3, (3, 2)) + _conv("conv3", 64, 64, 3, (2, 2))
    trunk += _conv("conv4", 64, 128, 2) + [("dense5", nn.Linear(1152, 256)), ("prelu5", nn.PReLU(256))]
    return Stage(trunk, [("dense6_1", nn.Linear(256, 2)), ("dense6_2", nn.Linear(256, 4)), ("dense6_3", nn.Linear(256, 10))])


def nms(boxes: np.ndarray, scores: np.ndarray, limit: float, by_smaller: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first: a box overlapping a kept
    one by more than ``limit`` goes (overlap over the union, or over the smaller box)."""
    order = np.argsort(-scores, kind="stable")
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.clip(np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        base = np.minimum(area[best], area[rest]) if by_smaller else area[best] + area[rest] - inter
        order = rest[inter <= limit * np.maximum(base, 1e-9)]
    return np.asarray(keep, np.int64)


def squared(boxes: np.ndarray) -> np.ndarray:
    """Each box made a square of its longer side, about the same centre."""
    centre = (boxes[:, :2] + boxes[:, 2:4]) / 2
    half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None] / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def corrected(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes moved by a stage's offsets (fractions of the box's width and height, per edge)."""
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    return boxes[:, :4] + offsets * np.concatenate([size, size], axis=1)


def crops(frame: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """(n, side, side, 3) crops of ``boxes`` (outside the frame: black), resized (area-averaged down)."""
    h, w = frame.shape[:2]
    out = np.zeros((len(boxes), side, side, 3), np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(np.round(boxes[:, :4]).astype(np.int64)):
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
            patch = frame[y0:y1, x0:x1]
        else:
            patch = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if cx1 > cx0 and cy1 > cy0:
                patch[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = frame[cy0:cy1, cx0:cx1]
        out[k] = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA if patch.shape[0] > side else cv2.INTER_LINEAR)
    return out


def _tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, h, w, 3) RGB → the nets' input: (n, 3, h, w), (x − 127.5) / 128."""
    return (torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() - 127.5) * 0.0078125


@register_detector("mtcnn")
class MtcnnDetector:
    """MTCNN on the frame's RGB pixels; its smallest window holds a 12-px face, so the pyramid
    starts where a ``min_face`` face is 12 px, and shrinks by ``factor`` down to the whole frame."""

    WINDOW = 12
    STRIDE, CELL = 2, 12
    LEAVE_OUT_IOU = 0.3  # a proposal overlapping a followed face more than this is that face
    AS_HOG = BoxConvention(shift_y=0.07, height=0.80, width=1.11)  # its boxes reach up the forehead: drawn as HOG's
    leaves_out = True
    install_hint = INSTALL_HINT

    @staticmethod
    def available() -> bool:
        return mtcnn_weights() is not None

    def __init__(self, min_face: float = MIN_FACE, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), factor: float = 0.709,
                 convention: BoxConvention = AS_HOG):
        folder = mtcnn_weights()
        if folder is None:
            raise RuntimeError(f"mtcnn detector: facenet-pytorch's weights are not installed; {INSTALL_HINT}")
        detection_scale((100, 100), min_face, self.WINDOW)  # a bad min_face fails here, not at the first frame
        self.min_face = min_face
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.convention = convention  # BoxConvention(): MTCNN's own boxes
        self.nets = {}
        for name, make in (("pnet", proposal_net), ("rnet", refine_net), ("onet", output_net)):
            net = make()
            net.load_state_dict(torch.load(folder / WEIGHT_FILES[name], map_location="cpu", weights_only=True))
            self.nets[name] = net.eval()

    def pyramid(self, frame: np.ndarray):
        """(image, x scale, y scale) from where a ``min_face`` face is 12 px, each level ``factor``
        of the one before (resized from it: cheap), while its short side holds a window."""
        h, w = frame.shape[:2]
        scale, image = self.WINDOW / float(self.min_face), frame
        while min(h, w) * scale >= self.WINDOW:
            size = (max(1, int(np.ceil(w * scale))), max(1, int(np.ceil(h * scale))))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if size[0] < image.shape[1] else cv2.INTER_LINEAR)
            yield image, size[0] / w, size[1] / h
            scale *= self.factor

    @torch.inference_mode()
    def __call__(self, frame: np.ndarray, leave_out: np.ndarray | None = None) -> list[Detection]:
        """Faces in ``frame``; proposals on the ``leave_out`` boxes (faces already followed) are
        dropped before the later stages, which cost most (the multi-face tracker's searches)."""
        boxes = self._proposals(frame)
        if leave_out is not None and len(leave_out) and len(boxes):
            boxes = boxes[box_iou(boxes[:, :4], np.asarray(leave_out, np.float64)).max(1) <= self.LEAVE_OUT_IOU]
        boxes = self._refined(frame, boxes, "rnet", 24, self.thresholds[1])
        boxes = self._refined(frame, boxes, "onet", 48, self.thresholds[2], last=True)
        return [(self.convention(b), float(b[4])) for b in boxes]

    def _proposals(self, frame: np.ndarray) -> np.ndarray:
        """P-Net's boxes over the pyramid (x0, y0, x1, y1, score), squared, in frame pixels."""
        found = []
        for image, sx, sy in self.pyramid(frame):
            logits, offsets = self.nets["pnet"](_tensor(image[None]))[:2]
            prob = torch.softmax(logits, dim=1)[0, 1].numpy()
            ys, xs = np.nonzero(prob > self.thresholds[0])
            if not len(ys):
                continue
            corner = np.stack([xs, ys], axis=1).astype(np.float64) * self.STRIDE
            scale = np.array([sx, sy])
            boxes = np.concatenate([np.floor((corner + 1) / scale), np.floor((corner + self.CELL) / scale)], axis=1)
            scores = prob[ys, xs].astype(np.float64)
            shift = offsets[0].numpy()[:, ys, xs].T.astype(np.float64)
            keep = nms(boxes, scores, 0.5)
            found.append(np.concatenate([boxes[keep], scores[keep, None], shift[keep]], axis=1))
        if not found:
            return np.zeros((0, 5))
        every = np.concatenate(found)
        every = every[nms(every[:, :4], every[:, 4], 0.7)]
        return np.concatenate([squared(corrected(every[:, :4], every[:, 5:9])), every[:, 4:5]], axis=1)

    def _refined(self, frame: np.ndarray, boxes: np.ndarray, net: str, side: int, threshold: float, last: bool = False) -> np.ndarray:
        """The boxes a later stage keeps, corrected by it (squared, except after the last)."""
        if not len(boxes):
            return boxes
        logits, offsets = self.nets[net](_tensor(crops(frame, boxes, side)))[:2]
        prob = torch.softmax(logits, dim=1)[:, 1].numpy().astype(np.float64)
        keep = prob > threshold
        moved = corrected(boxes[keep, :4], offsets.numpy()[keep].astype(np.float64))
        scores = prob[keep]
        if last:
            order = nms(moved, scores, 0.7, by_smaller=True)
            return np.concatenate([moved[order], scores[order, None]], axis=1)
        order = nms(boxes[keep, :4], scores, 0.7)
        return np.concatenate([squared(moved[order]), scores[order, None]], axis=1)
