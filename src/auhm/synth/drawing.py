"""Drawing synthetic face videos with OpenCV primitives on uint8 frames.

Everything per subject (background, noise bank, colours) is made once; per frame the renderer
draws ~60 anti-aliased polygons and lines, shades the head inside its bounding box only, and
applies a colour lookup table, noise and blur to the whole frame — no per-pixel Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from auhm.synth.episodes import smooth_signal
from auhm.synth.face_model import RENDERED_AUS, FaceModel, project

_SHIFT = 4  # sub-pixel bits for cv2 drawing
SHIFT = _SHIFT
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA
# An occluder hides the face in a frame when it covers at least this many of the 68 landmarks.
OCCLUDED_MIN_LANDMARKS = 4


@dataclass(frozen=True)
class Difficulty:
    """How far nuisance factors range; ``medium`` is the default corpus."""

    yaw: float  # max |degrees|
    pitch: float
    roll: float
    scale: tuple[float, float]  # face half-width as a fraction of the frame height
    wander: float  # how far the face centre moves, fraction of the frame
    light: float  # strength of directional shading on the head
    tint: float  # colour cast of the light
    clutter: int  # background shapes
    occlusion: float  # expected fraction of frames with an occluder in view
    noise: float  # sensor noise, grey levels (sigma)
    blur: float  # max Gaussian blur sigma, pixels
    quality: int  # codec quantiser (MPEG-4 qscale 2 best … 31) / JPEG quality = 100 − 3·quality


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty(15, 8, 8, (0.24, 0.28), 0.05, 0.2, 0.05, 6, 0.0, 2.0, 0.6, 3),
    "medium": Difficulty(25, 14, 14, (0.2, 0.28), 0.1, 0.35, 0.12, 14, 0.08, 4.0, 1.0, 5),
    "hard": Difficulty(35, 20, 20, (0.17, 0.3), 0.16, 0.55, 0.2, 26, 0.2, 7.0, 1.6, 8),
}


@dataclass
class Motion:
    """Per-frame nuisance: head pose, placement, light and focus, all smooth over time."""

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    scale: np.ndarray  # pixels per canonical unit
    cx: np.ndarray
    cy: np.ndarray
    light_angle: np.ndarray  # radians, direction the light comes from in the image
    light_gain: np.ndarray  # overall brightness
    blur: np.ndarray  # Gaussian sigma, pixels
    pan_x: np.ndarray  # background offset
    pan_y: np.ndarray

    @classmethod
    def sample(cls, rng: np.random.Generator, frames: int, fps: float, width: int, height: int, d: Difficulty) -> "Motion":
        sig = lambda lo=2.0, hi=12.0: smooth_signal(rng, frames, fps, (lo, hi))  # noqa: E731
        bias = lambda r: rng.uniform(-0.35, 0.35) * r  # noqa: E731  # per-video preferred pose
        yaw = np.clip(bias(d.yaw) + 0.8 * d.yaw * sig(), -d.yaw, d.yaw)
        pitch = np.clip(bias(d.pitch) + 0.8 * d.pitch * sig(), -d.pitch, d.pitch)
        roll = np.clip(bias(d.roll) + 0.8 * d.roll * sig(), -d.roll, d.roll)
        base = rng.uniform(*d.scale)
        scale = height * base * (1 + 0.08 * sig(4, 15))
        cx = width * (0.5 + rng.uniform(-0.08, 0.08) + d.wander * sig(3, 14))
        cy = height * (0.47 + rng.uniform(-0.04, 0.04) + 0.6 * d.wander * sig(3, 14))
        light_angle = rng.uniform(0, 2 * np.pi) + 0.8 * sig(5, 20)
        light_gain = rng.uniform(0.85, 1.1) + 0.1 * sig(3, 10)
        blur = np.clip(d.blur * (0.5 * sig(1, 6) + rng.uniform(-0.2, 0.3)), 0, d.blur)
        pan = 6 * d.wander / 0.1
        return cls(yaw, pitch, roll, scale, cx, cy, light_angle, light_gain, blur, pan * sig(4, 16), pan * sig(4, 16))


@dataclass(frozen=True)
class Occluder:
    """A hand or a bar that passes in front of the face for a while."""

    start: int
    length: int
    kind: str  # "hand" | "bar"
    colour: tuple[int, int, int]
    target: int  # landmark it heads for
    side: float  # angle it comes from, radians
    angle: float  # bar orientation


def random_occluder(rng: np.random.Generator, length: int, starts: tuple[int, int]) -> Occluder:
    """A hand (skin of any tone) or a bar of any colour, heading for the nose, mouth, an eye or the
    jaw, in view from a first frame drawn in ``starts`` (low inclusive, high exclusive)."""
    kind = "hand" if rng.uniform() < 0.6 else "bar"
    if kind == "hand":
        c = np.array([230, 190, 160]) + rng.uniform(0, 1) * (np.array([95, 62, 45]) - [230, 190, 160])
    else:
        c = rng.uniform(10, 240, 3)
    return Occluder(int(rng.integers(*starts)), length, kind, tuple(int(v) for v in c),
                    int(rng.choice([30, 62, 37, 44, 8, 2, 14])), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi))


def sample_occluders(rng: np.random.Generator, frames: int, fps: float, d: Difficulty) -> list[Occluder]:
    out = []
    mean_len = 1.5 * fps
    for _ in range(rng.poisson(d.occlusion * frames / mean_len)):
        length = int(rng.uniform(0.6, 1.4) * mean_len)
        out.append(random_occluder(rng, length, (-length // 3, frames)))
    return out


def _background(rng: np.random.Generator, width: int, height: int, clutter: int) -> np.ndarray:
    """A room-ish backdrop: a colour gradient with furniture-like shapes, slightly out of focus."""
    c0, c1 = rng.uniform(30, 220, 3), rng.uniform(30, 220, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    img = (c0 * (1 - ramp) + c1 * ramp).astype(np.float32) * np.ones((1, width, 1), np.float32)
    img = np.ascontiguousarray(img.astype(np.uint8))
    for _ in range(clutter):
        col = tuple(int(v) for v in rng.uniform(0, 255, 3))
        kind = rng.integers(4)
        x, y = int(rng.uniform(0, width)), int(rng.uniform(0, height))
        s = int(rng.uniform(0.05, 0.35) * min(width, height))
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + s, y + int(s * rng.uniform(0.3, 2))), col, -1)
        elif kind == 1:
            cv2.circle(img, (x, y), s // 2, col, -1, _AA)
        elif kind == 2:
            cv2.line(img, (x, y), (x + int(rng.normal(0, s)), y + int(rng.normal(0, s))), col, int(rng.integers(1, 6)), _AA)
        else:
            pts = (np.array([x, y]) + rng.normal(0, s / 2, (int(rng.integers(3, 6)), 2))).astype(np.int32)
            cv2.fillPoly(img, [pts], col, _AA)
    return cv2.GaussianBlur(img, (0, 0), 1.2)


def _mix(a, b, t: float) -> tuple[int, int, int]:
    t = min(max(float(t), 0.0), 1.0)
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))


def _scaled(c, k: float) -> tuple[int, int, int]:
    return tuple(min(max(int(v * k), 0), 255) for v in c)


def noise_bank(rng: np.random.Generator, n: int, width: int, height: int, sigma: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """n frames of sensor noise, each as (positive, negative) uint8 parts: added, then subtracted."""
    noise = rng.normal(0, sigma, (n, height, width, 3))
    return [(np.clip(x, 0, 255).astype(np.uint8), np.clip(-x, 0, 255).astype(np.uint8)) for x in noise]


class Renderer:
    """Draws one subject's video: frame(t) → RGB uint8 and whether the face is occluded.

    ``noise``: a ``noise_bank`` to draw each frame's sensor noise from (by default four frames
    drawn for this subject; renderers of a few frames each share one instead).
    """

    def __init__(self, model: FaceModel, intensities: np.ndarray, motion: Motion, occluders: list[Occluder],
                 width: int, height: int, difficulty: Difficulty, rng: np.random.Generator,
                 noise: list[tuple[np.ndarray, np.ndarray]] | None = None):
        self.model, self.motion, self.occluders = model, motion, occluders
        self.intensities = np.asarray(intensities, np.float32)
        self.w, self.h, self.d = width, height, difficulty
        shapes = model.deform(self.intensities)
        self.xy, _ = project(shapes, motion.yaw, motion.pitch, motion.roll, motion.scale, motion.cx, motion.cy)
        self._pts = np.round(self.xy * _ONE).astype(np.int32)
        self._col = {au: k for k, au in enumerate(RENDERED_AUS)}
        self._pad = int(np.ceil(np.abs(np.concatenate([motion.pan_x, motion.pan_y, [0]])).max())) + 1
        self._bg = _background(rng, width + 2 * self._pad, height + 2 * self._pad, difficulty.clutter)
        self._noise = noise if noise is not None else noise_bank(rng, 4, width, height, difficulty.noise)
        self._noise_pick = rng.integers(0, len(self._noise), len(self.intensities))
        self._tint = rng.uniform(-1, 1, 3) * difficulty.tint
        idn = model.identity
        self.skin = idn.skin
        self.crease = _scaled(idn.skin, 0.35)
        self.highlight = _mix(idn.skin, (255, 255, 255), 0.35)
        dark_hair = _scaled(idn.hair, 0.6) if sum(idn.hair) > 360 else idn.hair
        self.brow = _mix(dark_hair, (20, 15, 10), 0.3)

    @property
    def landmarks(self) -> np.ndarray:
        """(F, 68, 2) float32 true landmarks in frame pixels."""
        return self.xy[:, :68].astype(np.float32)

    # -- helpers ---------------------------------------------------------------------------
    def _feat(self, t: int, name: str) -> list[np.ndarray]:
        return [self._pts[t, s] for s in self.model.features[name]]

    def _au(self, t: int, au: int) -> float:
        return float(self.intensities[t, self._col[au]])

    def _lines(self, img, lines, strength: float, width_px: float) -> None:
        """Creases: darker with intensity, with a thin highlight above for relief."""
        if strength <= 0.15:
            return
        a = 0.3 + 0.7 * strength / 5
        th = 1 + int(strength >= 2) + int(strength >= 4 and width_px >= 4)
        col = _mix(self.skin, self.crease, a)
        hi = _mix(self.skin, self.highlight, a)
        up = np.array([0, -_ONE], np.int32)
        cv2.polylines(img, [l + up for l in lines], False, hi, 1, _AA, _SHIFT)
        cv2.polylines(img, lines, False, col, th, _AA, _SHIFT)

    # -- one frame -------------------------------------------------------------------------
    def frame(self, t: int) -> tuple[np.ndarray, bool]:
        img = self.backdrop(t)
        occluded = self.draw(img, t)
        return self.camera(img, t), occluded

    def backdrop(self, t: int) -> np.ndarray:
        """The background of frame t (panned), a fresh array to draw people on."""
        m = self.motion
        px, py = self._pad + int(round(m.pan_x[t])), self._pad + int(round(m.pan_y[t]))
        return self._bg[py:py + self.h, px:px + self.w].copy()

    def silhouette(self, t: int) -> list[np.ndarray]:
        """The polygons (fixed-point, ``SHIFT`` bits) of everything this person draws at frame t but
        occluders: what hides a person behind it."""
        F = lambda name: self._feat(t, name)  # noqa: E731
        return [*F("shoulders"), *F("neck"), *F("hair"), np.concatenate([self._pts[t, :17], F("forehead")[0][::-1]])]

    def draw(self, img: np.ndarray, t: int) -> bool:
        """Draw this person (body, head, face, occluders) at frame t onto ``img``, before the camera;
        whether an occluder hides the face."""
        m, p = self.motion, self._pts[t]
        idn = self.model.identity
        scale = float(m.scale[t])
        F = lambda name: self._feat(t, name)  # noqa: E731

        # body, hair, ears, face
        cv2.fillPoly(img, F("shoulders"), idn.clothes, _AA, _SHIFT)
        cv2.fillPoly(img, F("neck"), _scaled(self.skin, 0.8), _AA, _SHIFT)
        hair_col = _scaled(self.skin, 0.93) if idn.bald else idn.hair
        cv2.fillPoly(img, F("hair"), hair_col, _AA, _SHIFT)
        for ear in F("ear"):
            c = (ear[0] + ear[1]) // 2
            cv2.ellipse(img, (int(c[0]), int(c[1])), (max(1, int(0.1 * scale * _ONE)), max(1, int(abs(ear[1][1] - ear[0][1]) // 2))),
                        0, 0, 360, _scaled(self.skin, 0.9), -1, _AA, _SHIFT)
        face = np.concatenate([p[:17], F("forehead")[0][::-1]])
        cv2.fillPoly(img, [face], self.skin, _AA, _SHIFT)

        # cheek bulge (AU6) and blush
        au6 = self._au(t, 6)
        r = int(0.2 * scale * _ONE)
        for c in F("cheek"):
            col = _mix(self.skin, (210, 120, 110), 0.12)
            col = _mix(col, self.highlight, 0.15 + 0.5 * au6 / 5)
            cv2.ellipse(img, tuple(int(v) for v in c[0]), (r, int(r * (0.75 - 0.12 * au6 / 5))), 0, 0, 360, col, -1, _AA, _SHIFT)

        # appearance of the AUs: wrinkles, furrows, folds
        self._lines(img, F("au1_lines"), self._au(t, 1), scale * 0.05)
        self._lines(img, F("au2_lines"), self._au(t, 2), scale * 0.05)
        self._lines(img, F("au4_lines"), self._au(t, 4), scale * 0.05)
        self._lines(img, F("au6_lines"), au6, scale * 0.05)
        self._lines(img, F("au6_lower"), au6, scale * 0.05)
        self._lines(img, F("au9_lines"), self._au(t, 9), scale * 0.05)
        fold = max(self._au(t, 10), self._au(t, 12), 0.6 * au6, 0.6 * self._au(t, 9))
        cv2.polylines(img, F("nasolabial"), False, _mix(self.skin, self.crease, 0.12), 1, _AA, _SHIFT)
        self._lines(img, F("nasolabial"), fold, scale * 0.06)
        self._lines(img, F("au14_lines"), self._au(t, 14), scale * 0.06)
        self._lines(img, F("au15_lines"), self._au(t, 15), scale * 0.05)
        self._lines(img, F("au20_lines"), self._au(t, 20), scale * 0.05)
        au17 = self._au(t, 17)
        self._lines(img, F("au17_lines"), max(au17, 1.2), scale * 0.05)
        if au17 > 0.3:
            dot = _mix(self.skin, self.crease, 0.1 + 0.5 * au17 / 5)
            for q in F("chin_boss")[0]:
                cv2.circle(img, (int(q[0]), int(q[1])), max(1, int(0.022 * scale * _ONE)), dot, -1, _AA, _SHIFT)

        # nose
        cv2.polylines(img, F("nose_side"), False, _mix(self.skin, self.crease, 0.35), 1, _AA, _SHIFT)
        cv2.polylines(img, [p[31:36]], False, _mix(self.skin, self.crease, 0.6), 1, _AA, _SHIFT)
        nr = max(1, int(0.028 * scale * _ONE))
        for a, b in ((31, 32), (34, 35)):
            c = (p[a] + 2 * p[b]) // 3
            cv2.ellipse(img, (int(c[0]), int(c[1])), (int(nr * 1.4), nr), 0, 0, 360, _scaled(self.skin, 0.35), -1, _AA, _SHIFT)
        cv2.circle(img, (int(p[30][0]), int(p[30][1])), max(1, int(0.04 * scale * _ONE)), _mix(self.skin, self.highlight, 0.4), -1, _AA, _SHIFT)

        # eyes, lids, brows
        cv2.polylines(img, F("lid_crease"), False, _mix(self.skin, self.crease, 0.4), 1, _AA, _SHIFT)
        for eye in (p[36:42], p[42:48]):
            self._eye(img, eye, scale)
        brows = [np.concatenate([u, l[::-1]]) for u, l in zip(F("brow_upper"), F("brow_lower"))]
        cv2.fillPoly(img, brows, self.brow, _AA, _SHIFT)

        self._mouth(img, p, scale)

        if idn.glasses is not None:
            self._glasses(img, p, scale, idn.glasses)

        self._shade(img, t, p, face)
        return self._occlude(img, t, p, scale)

    def _roi(self, points: np.ndarray) -> tuple[int, int, int, int] | None:
        """Pixel box (x0, y0, x1, y1) around fixed-point polygon points, inside the frame; None if tiny."""
        e = points.astype(np.int64)
        x0, y0 = (e.min(0) >> _SHIFT) - 1
        x1, y1 = (e.max(0) >> _SHIFT) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.w), min(y1, self.h)
        return None if x1 - x0 < 2 or y1 - y0 < 2 else (int(x0), int(y0), int(x1), int(y1))

    def _eye(self, img, eye: np.ndarray, scale: float) -> None:
        roi = self._roi(eye)
        if roi is None:
            return
        x0, y0, x1, y1 = roi
        sub = img[y0:y1, x0:x1]
        local = (eye - np.array([x0 << _SHIFT, y0 << _SHIFT])).astype(np.int32)
        mask = np.zeros(sub.shape[:2], np.uint8)
        cv2.fillPoly(mask, [local], 255, _AA, _SHIFT)
        tmp = np.empty_like(sub)
        tmp[:] = (235, 230, 225)
        corner = (local[0] + local[3]) // 2
        width = np.hypot(*((local[3] - local[0]) / _ONE))
        ir = max(1, int(0.26 * width * _ONE))
        cen = (int(corner[0]), int(corner[1] + 0.02 * scale * _ONE))
        cv2.circle(tmp, cen, ir, self.model.identity.iris, -1, _AA, _SHIFT)
        cv2.circle(tmp, cen, max(1, ir // 2), (15, 10, 10), -1, _AA, _SHIFT)
        a = mask[..., None].astype(np.uint16)
        sub[:] = ((tmp * a + sub * (255 - a)) // 255).astype(np.uint8)
        cv2.polylines(img, [eye[[0, 1, 2, 3]]], False, (25, 18, 15), 2 if scale > 40 else 1, _AA, _SHIFT)
        cv2.polylines(img, [eye[[3, 4, 5, 0]]], False, _mix(self.skin, self.crease, 0.55), 1, _AA, _SHIFT)

    def _mouth(self, img, p: np.ndarray, scale: float) -> None:
        lips = self.model.identity.lips
        cv2.fillPoly(img, [p[48:60]], lips, _AA, _SHIFT)
        cv2.fillPoly(img, [np.concatenate([p[48:55], p[60:65][::-1]])], _scaled(lips, 0.85), _AA, _SHIFT)
        inner = p[60:68]
        gap = (inner[5:8, 1].astype(np.float64).mean() - inner[1:4, 1].mean()) / _ONE
        cv2.fillPoly(img, [inner], (60, 20, 25), _AA, _SHIFT)
        cv2.polylines(img, [inner], True, _scaled(lips, 0.45), 1, _AA, _SHIFT)
        if gap > 1.5:
            roi = self._roi(inner)
            if roi is None:
                return
            x0, y0, x1, y1 = roi
            sub = img[y0:y1, x0:x1]
            off = np.array([x0 << _SHIFT, y0 << _SHIFT])
            local = (inner - off).astype(np.int32)
            mask = np.zeros(sub.shape[:2], np.uint8)
            cv2.fillPoly(mask, [local], 255, 8, _SHIFT)
            tmp = sub.copy()
            tooth = int(min(gap * 0.5, 0.09 * scale) * _ONE)
            upper = local[[0, 1, 2, 3, 4]]
            cv2.fillPoly(tmp, [np.concatenate([upper, upper[::-1] + [0, tooth]])], (238, 234, 220), _AA, _SHIFT)
            cv2.polylines(tmp, [np.stack([upper[2], upper[2] + [0, tooth]])], False, (190, 185, 175), 1, _AA, _SHIFT)
            if gap > 5:
                lower = local[[4, 5, 6, 7, 0]]
                lt = int(tooth * 0.5)
                cv2.fillPoly(tmp, [np.concatenate([lower, lower[::-1] - [0, lt]])], (225, 220, 205), _AA, _SHIFT)
            sel = mask > 0
            sub[sel] = tmp[sel]

    def _glasses(self, img, p: np.ndarray, scale: float, colour) -> None:
        th = 2 if scale > 45 else 1
        for eye in (p[36:42], p[42:48]):
            c = eye.mean(0)
            d = (eye[3] - eye[0]).astype(np.float64)
            ang = float(np.degrees(np.arctan2(d[1], d[0])))
            ax = (int(abs(np.hypot(*d)) * 0.75), int(0.17 * scale * _ONE))
            cv2.ellipse(img, (int(c[0]), int(c[1])), ax, ang, 0, 360, colour, th, _AA, _SHIFT)
        a, b = p[39] - [0, int(0.05 * scale * _ONE)], p[42] - [0, int(0.05 * scale * _ONE)]
        cv2.line(img, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), colour, th, _AA, _SHIFT)

    def _shade(self, img, t: int, p: np.ndarray, face: np.ndarray) -> None:
        """Directional light on the head only: brighter on one side, darker on the other."""
        m = self.motion
        hair = self._feat(t, "hair")[0]
        allp = np.concatenate([face, hair, self._feat(t, "neck")[0]]) >> _SHIFT
        x0, y0 = np.maximum(allp.min(0) - 2, 0)
        x1, y1 = np.minimum(allp.max(0) + 3, [self.w, self.h])
        if x1 - x0 < 4 or y1 - y0 < 4:
            return
        sub = img[y0:y1, x0:x1]
        mask = np.zeros(sub.shape[:2], np.uint8)
        off = np.array([x0 << _SHIFT, y0 << _SHIFT], np.int32)
        for poly in (face, hair, self._feat(t, "neck")[0]):  # one call would XOR the overlaps
            cv2.fillPoly(mask, [poly - off], 255, 8, _SHIFT)
        cx, cy = (p[30] - off) / _ONE
        s = float(m.scale[t])
        ang = m.light_angle[t]
        gx = (np.arange(x1 - x0, dtype=np.float32) - cx) * (np.cos(ang) / s)
        gy = (np.arange(y1 - y0, dtype=np.float32) - cy) * (np.sin(ang) / s)
        g = np.clip(np.add.outer(gy, gx), -1.2, 1.2)
        g *= mask.astype(np.float32) * (self.d.light / 255)
        g += 1
        sub[:] = cv2.multiply(sub, cv2.merge([g, g, g]), dtype=cv2.CV_8U)

    def _occlude(self, img, t: int, p: np.ndarray, scale: float) -> bool:
        active = [o for o in self.occluders if o.start <= t < o.start + o.length]
        if not active:
            return False
        mask = np.zeros((self.h, self.w), np.uint8)
        for o in active:
            u = (t - o.start) / max(o.length - 1, 1)
            reach = np.sin(np.pi * u) ** 0.5  # slides in, stays, slides out
            target = p[o.target].astype(np.float64) / _ONE
            far = np.array([np.cos(o.side), np.sin(o.side)]) * 2.2 * scale
            c = target + far * (1 - reach)
            polys = []
            if o.kind == "hand":
                palm = cv2.ellipse2Poly((int(c[0]), int(c[1])), (int(0.42 * scale), int(0.5 * scale)), int(np.degrees(o.angle)), 0, 360, 20)
                polys.append(palm)
                for k in range(4):
                    a = o.angle + (k - 1.5) * 0.28 - np.pi / 2
                    base = c + 0.45 * scale * np.array([np.cos(a), np.sin(a)])
                    tip = c + 0.95 * scale * np.array([np.cos(a), np.sin(a)])
                    cv2.line(img, tuple(int(v) for v in base), tuple(int(v) for v in tip), o.colour, max(2, int(0.14 * scale)), _AA)
                    cv2.line(mask, tuple(int(v) for v in base), tuple(int(v) for v in tip), 255, max(2, int(0.14 * scale)))
            else:
                rect = ((float(c[0]), float(c[1])), (2.6 * scale, 0.3 * scale), float(np.degrees(o.angle)))
                polys.append(cv2.boxPoints(rect).astype(np.int32))
            cv2.fillPoly(img, polys, o.colour, _AA)
            cv2.fillPoly(mask, polys, 255)
        lm = np.round(self.xy[t, :68]).astype(np.int64)
        inside = (lm[:, 0] >= 0) & (lm[:, 0] < self.w) & (lm[:, 1] >= 0) & (lm[:, 1] < self.h)
        covered = mask[lm[inside, 1], lm[inside, 0]] > 0
        return int(covered.sum()) >= OCCLUDED_MIN_LANDMARKS

    def camera(self, img, t: int) -> np.ndarray:
        """Light colour and gain (one lookup table), sensor noise, focus blur."""
        gain = self.motion.light_gain[t] * (1 + self._tint)
        lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * gain[None, :], 0, 255).astype(np.uint8)
        img = cv2.LUT(img, lut.reshape(1, 256, 3))
        pos, neg = self._noise[self._noise_pick[t]]
        img = cv2.subtract(cv2.add(img, pos), neg)
        sigma = float(self.motion.blur[t])
        if sigma > 0.3:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        return img
