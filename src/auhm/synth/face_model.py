"""A procedural 3D-ish face: 68 iBUG landmarks plus skin-feature polylines on a head surface.

Canonical face space: x to the image right, y down, z towards the camera; the outer eye corners
sit near x = ±0.75, the brows near y = −0.55, the chin at y ≈ 1.0 (face half-width ≈ 1). Each AU
is a displacement field at intensity 5 (scaled linearly by intensity / 5) on the landmarks it
moves in FACS; the skin-feature points (wrinkle lines, folds, lid creases, hairline) are skinned
to the landmarks, so forehead lines rise with the brows and the nasolabial fold follows the lip
corner. The appearance half of each AU (wrinkles, furrows, teeth) is drawn by :mod:`auhm.synth.drawing` (``Renderer``).

Pose: yaw > 0 turns the nose to the image right, pitch > 0 tilts it up, roll > 0 turns the face
clockwise in the image; rotation is about a pivot behind the face, projection is weak-perspective.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from auhm.targets import MAX_INTENSITY

# Every AU the synthetic faces can show (the union of the corpora's AUs, paper Table 1).
RENDERED_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 10, 12, 14, 15, 17, 20, 25, 26)

# The landmarks each AU moves (FACS), as this model implements it. Tests hold the model to it:
# an AU alone moves these and leaves every other landmark where it was.
AU_MOVES: dict[int, tuple[int, ...]] = {
    1: (19, 20, 21, 22, 23, 24),  # inner brow raiser: inner/middle brow up
    2: (17, 18, 19, 24, 25, 26),  # outer brow raiser: outer brow up
    4: tuple(range(17, 27)),  # brow lowerer: brows down, inner ends together
    5: (37, 38, 43, 44),  # upper lid raiser: upper lids up
    6: (36, 40, 41, 45, 46, 47),  # cheek raiser: lower lids and outer corners pushed up
    9: (30, 31, 32, 33, 34, 35, 50, 51, 52, 61, 62, 63),  # nose wrinkler: nose wings and upper lip up
    10: (31, 35, 49, 50, 51, 52, 53, 61, 62, 63),  # upper lip raiser
    12: (48, 49, 53, 54, 55, 59, 60, 64),  # lip corner puller: corners up and out
    14: (48, 54, 60, 64),  # dimpler: corners tightened inwards and back
    15: (48, 54, 55, 59, 60, 64),  # lip corner depressor: corners down
    17: (7, 8, 9, 49, 50, 51, 52, 53, 55, 56, 57, 58, 59, 61, 62, 63, 65, 66, 67),  # chin raiser
    20: (48, 49, 53, 54, 55, 59, 60, 64),  # lip stretcher: corners sideways
    25: (55, 56, 57, 58, 59, 61, 62, 63, 65, 66, 67),  # lips part
    26: tuple(range(3, 14)) + (55, 56, 57, 58, 59, 65, 66, 67),  # jaw drop: jaw and lower lip down
}


@dataclass(frozen=True)
class Identity:
    """What makes one synthetic person look unlike another; drawn once per subject."""

    jaw_width: float = 0.95
    chin_drop: float = 1.3  # eye line to chin
    squareness: float = 2.6  # superellipse exponent of the jaw (larger: squarer)
    forehead: float = 0.85  # eye line to hairline
    eye_spacing: float = 1.0
    eye_open: float = 0.07  # half-height of the eye opening
    brow_height: float = 0.24  # eye line to brow
    brow_thickness: float = 0.06
    nose_length: float = 0.5
    nose_width: float = 0.2
    mouth_width: float = 0.38
    mouth_height: float = 0.6  # eye line (y = −0.3) to mouth line is mouth_height + 0.28
    lip_thickness: float = 0.07
    skin: tuple[int, int, int] = (224, 180, 150)
    hair: tuple[int, int, int] = (60, 40, 25)
    iris: tuple[int, int, int] = (70, 90, 60)
    lips: tuple[int, int, int] = (180, 95, 90)
    clothes: tuple[int, int, int] = (40, 70, 120)
    glasses: tuple[int, int, int] | None = None
    bald: bool = False

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Identity":
        tone = rng.uniform()  # 0 light … 1 dark
        light, dark = np.array([238, 200, 172]), np.array([92, 60, 42])
        skin = light + tone * (dark - light) + rng.normal(0, 8, 3)
        hairs = [(25, 20, 18), (70, 45, 28), (120, 80, 45), (200, 170, 110), (150, 60, 30), (160, 160, 160)]
        hair = np.array(hairs[rng.integers(len(hairs))]) + rng.normal(0, 6, 3)
        lips = skin * np.array([0.82, 0.58, 0.6]) + np.array([25, 0, 5])
        glasses = tuple(int(v) for v in rng.integers(10, 120, 3)) if rng.uniform() < 0.3 else None
        clip = lambda c: tuple(int(v) for v in np.clip(c, 0, 255))  # noqa: E731
        return cls(
            jaw_width=rng.uniform(0.86, 1.04),
            chin_drop=rng.uniform(1.2, 1.42),
            squareness=rng.uniform(2.0, 3.4),
            forehead=rng.uniform(0.75, 0.95),
            eye_spacing=rng.uniform(0.92, 1.08),
            eye_open=rng.uniform(0.055, 0.08),
            brow_height=rng.uniform(0.2, 0.28),
            brow_thickness=rng.uniform(0.045, 0.08),
            nose_length=rng.uniform(0.44, 0.56),
            nose_width=rng.uniform(0.17, 0.25),
            mouth_width=rng.uniform(0.33, 0.44),
            mouth_height=rng.uniform(0.56, 0.66),
            lip_thickness=rng.uniform(0.055, 0.09),
            skin=clip(skin),
            hair=clip(hair),
            iris=clip(rng.uniform([30, 30, 20], [120, 140, 110])),
            lips=clip(lips),
            clothes=clip(rng.uniform(20, 220, 3)),
            glasses=glasses,
            bald=bool(rng.uniform() < 0.08),
        )


def _surface_z(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth of the head surface (an ellipsoid) under a canonical (x, y)."""
    r = 1.0 - (x / 1.08) ** 2 - ((y + 0.05) / 1.45) ** 2
    return 0.8 * np.sqrt(np.clip(r, 0.02, None))


def _arc(x0: float, x1: float, y: float, bow: float, n: int) -> np.ndarray:
    """n points from x0 to x1 at height y, bowed by ``bow`` (negative: up in the middle)."""
    s = np.linspace(0, 1, n)
    return np.stack([x0 + (x1 - x0) * s, y + bow * np.sin(np.pi * s)], 1)


@dataclass
class FaceModel:
    """One identity's neutral 3D shape and its per-AU displacement fields (landmarks + features)."""

    identity: Identity
    points: np.ndarray = field(init=False)  # (N, 3): 68 landmarks, then feature points
    features: dict[str, list[slice]] = field(init=False)  # polylines of feature points, by name
    au_fields: np.ndarray = field(init=False)  # (len(RENDERED_AUS), N, 3), displacement at intensity 5

    def __post_init__(self) -> None:
        lm = _landmarks_2d(self.identity)
        feats = _features_2d(self.identity, lm)
        pts2 = [lm]
        self.features = {}
        start = 68
        for name, lines in feats.items():
            self.features[name] = []
            for line in lines:
                pts2.append(line)
                self.features[name].append(slice(start, start + len(line)))
                start += len(line)
        p2 = np.concatenate(pts2).astype(np.float64)
        z = _surface_z(p2[:, 0], p2[:, 1])
        z[27:31] += np.linspace(0.05, 0.32, 4)  # nose bridge to tip stands out
        z[31:36] += np.array([0.08, 0.14, 0.17, 0.14, 0.08])
        z[36:48] -= 0.04  # eyes sit in their sockets
        z[48:68] += 0.05  # lips
        self.points = np.concatenate([p2, z[:, None]], 1)
        self.au_fields = self._au_fields()

    # -- AU displacement fields ------------------------------------------------------------
    def _au_fields(self) -> np.ndarray:
        idn = self.identity
        n = len(self.points)
        lm_fields = {au: np.zeros((68, 3)) for au in RENDERED_AUS}

        def move(au: int, idx, dx=0.0, dy=0.0, dz=0.0) -> None:
            lm_fields[au][list(idx)] += np.array([dx, dy, dz])

        # brows: index 0..4 = 17..21 (subject's right = image left), 22..26 mirror
        for i, w in zip((19, 20, 21), (0.45, 0.8, 1.0)):
            move(1, [i, 43 - i], dy=-0.16 * w)
        move(1, [21], dx=0.015)
        move(1, [22], dx=-0.015)
        for i, w in zip((17, 18, 19), (1.0, 0.85, 0.4)):
            move(2, [i, 43 - i], dy=-0.17 * w)
        move(4, range(17, 27), dy=0.09)
        for i, w in zip((19, 20, 21), (0.3, 0.7, 1.0)):
            move(4, [i], dx=0.09 * w, dy=0.03 * w)
            move(4, [43 - i], dx=-0.09 * w, dy=0.03 * w)
        move(5, [37, 38, 43, 44], dy=-0.065)
        move(6, [40, 41, 46, 47], dy=-0.045)
        move(6, [36, 45], dy=-0.018)
        move(9, [30], dy=-0.025)
        move(9, [31, 32, 33, 34, 35], dy=-0.06)
        move(9, [31], dx=-0.02)
        move(9, [35], dx=0.02)
        move(9, [50, 51, 52, 61, 62, 63], dy=-0.04)
        move(10, [31], dx=-0.02, dy=-0.025)
        move(10, [35], dx=0.02, dy=-0.025)
        move(10, [50, 51, 52], dy=-0.09)
        move(10, [49, 53], dy=-0.06)
        move(10, [61, 62, 63], dy=-0.08)
        w = idn.mouth_width
        move(12, [48, 60], dx=-0.13 * w / 0.38, dy=-0.14)
        move(12, [54, 64], dx=0.13 * w / 0.38, dy=-0.14)
        move(12, [49, 59], dx=-0.04, dy=-0.045)
        move(12, [53, 55], dx=0.04, dy=-0.045)
        move(14, [48, 60], dx=0.045, dz=-0.04)
        move(14, [54, 64], dx=-0.045, dz=-0.04)
        move(15, [48, 60], dy=0.13)
        move(15, [54, 64], dy=0.13)
        move(15, [55, 59], dy=0.04)
        move(17, [7, 9], dy=-0.035)
        move(17, [8], dy=-0.05)
        move(17, [55, 56, 57, 58, 59, 65, 66, 67], dy=-0.05, dz=0.04)
        move(17, [49, 50, 51, 52, 53, 61, 62, 63], dy=-0.025)
        move(20, [48, 60], dx=-0.12, dy=0.02)
        move(20, [54, 64], dx=0.12, dy=0.02)
        move(20, [49, 59], dx=-0.05)
        move(20, [53, 55], dx=0.05)
        move(25, [61, 62, 63], dy=-0.03)
        move(25, [65, 66, 67], dy=0.13)
        move(25, [56, 57, 58], dy=0.11)
        move(25, [55, 59], dy=0.05)
        jaw = np.arange(3, 14)
        drop = 0.3 * np.sin(np.pi * (jaw - 2) / 12)
        for j, d in zip(jaw, drop):
            move(26, [j], dy=d)
        move(26, [56, 57, 58, 65, 66, 67], dy=0.22)
        move(26, [55, 59], dy=0.16)

        # features follow the landmarks near them (Gaussian weights, attached ones exactly)
        skin = self._skinning()
        out = np.zeros((len(RENDERED_AUS), n, 3))
        for k, au in enumerate(RENDERED_AUS):
            out[k, :68] = lm_fields[au]
            out[k, 68:] = skin @ lm_fields[au]
        return out

    def _skinning(self) -> np.ndarray:
        p = self.points[68:, :2]
        lm = self.points[:68, :2]
        d2 = ((p[:, None, :] - lm[None]) ** 2).sum(-1)
        w = np.exp(-d2 / (2 * 0.09**2))
        w[:, :17] *= 0.3  # the jaw line pulls little on the cheeks …
        w[:, 27:31] *= 0.3  # … and the nose bridge stays put under the brows
        return w / np.maximum(w.sum(1, keepdims=True), 1.0)

    # -- geometry per frame ----------------------------------------------------------------
    def deform(self, intensities: np.ndarray) -> np.ndarray:
        """(F, len(RENDERED_AUS)) intensities 0–5 → (F, N, 3) shapes."""
        a = np.clip(np.asarray(intensities, np.float64), 0, MAX_INTENSITY) / MAX_INTENSITY
        return self.points[None] + np.tensordot(a, self.au_fields, axes=1)


def rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(F, 3, 3) rotations, degrees; pitch first, then yaw, then roll."""
    y, p, r = (np.deg2rad(np.asarray(v, np.float64)) for v in (yaw, pitch, roll))
    one, zero = np.ones_like(y), np.zeros_like(y)
    ry = np.stack([np.stack([np.cos(y), zero, np.sin(y)], -1), np.stack([zero, one, zero], -1),
                   np.stack([-np.sin(y), zero, np.cos(y)], -1)], -2)
    rp = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, np.cos(p), -np.sin(p)], -1),
                   np.stack([zero, np.sin(p), np.cos(p)], -1)], -2)
    rr = np.stack([np.stack([np.cos(r), -np.sin(r), zero], -1), np.stack([np.sin(r), np.cos(r), zero], -1),
                   np.stack([zero, zero, one], -1)], -2)
    return rr @ ry @ rp


PIVOT = np.array([0.0, 0.1, -0.45])  # rotation centre, inside the head


def project(shapes: np.ndarray, yaw, pitch, roll, scale, cx, cy) -> tuple[np.ndarray, np.ndarray]:
    """Rotate (F, N, 3) shapes and project them to frame pixels → ((F, N, 2) xy, (F, N) depth)."""
    rot = rotation(yaw, pitch, roll)
    p = np.einsum("fij,fnj->fni", rot, shapes - PIVOT) + PIVOT
    s = np.asarray(scale, np.float64)[:, None]
    xy = np.stack([p[..., 0] * s + np.asarray(cx)[:, None], p[..., 1] * s + np.asarray(cy)[:, None]], -1)
    return xy, p[..., 2]


# -- the neutral shape --------------------------------------------------------------------
def _landmarks_2d(idn: Identity) -> np.ndarray:
    lm = np.zeros((68, 2))
    eye_y = -0.3
    # jaw 0..16: superellipse from the subject's right ear (image left) round the chin
    phi = np.linspace(0, np.pi, 17)
    e = 2.0 / idn.squareness
    c, s = np.cos(phi), np.sin(phi)
    lm[:17, 0] = -idn.jaw_width * np.sign(c) * np.abs(c) ** e
    lm[:17, 1] = eye_y + 0.05 + (idn.chin_drop - 0.05) * np.abs(s) ** e
    # brows 17..21 (image left), 22..26
    by = eye_y - idn.brow_height
    xs = np.linspace(-0.88, -0.16, 5) * idn.eye_spacing
    arch = -0.07 * np.sin(np.pi * np.linspace(0.15, 1.0, 5))
    lm[17:22] = np.stack([xs, by + arch + np.linspace(0.04, 0, 5)], 1)
    lm[22:27] = lm[17:22][::-1] * np.array([-1, 1])
    # nose 27..35
    lm[27:31, 0] = 0
    lm[27:31, 1] = eye_y + np.linspace(0.0, idn.nose_length, 4)
    ny = eye_y + idn.nose_length + 0.09
    nw = idn.nose_width
    lm[31:36] = np.stack([np.array([-1, -0.5, 0, 0.5, 1]) * nw, ny + np.array([-0.03, 0.0, 0.015, 0.0, -0.03])], 1)
    # eyes: 36..41 image-left eye (outer corner first), 42..47 mirror
    ex, ew, eo = 0.53 * idn.eye_spacing, 0.21, idn.eye_open
    right = np.array([[ex + ew, 0], [ex + 0.4 * ew, -eo], [ex - 0.4 * ew, -eo], [ex - ew, 0],
                      [ex - 0.4 * ew, 0.8 * eo], [ex + 0.4 * ew, 0.8 * eo]])
    lm[36:42] = right * np.array([-1, 1]) + np.array([0, eye_y])
    lm[42:48] = lm[36:42][[3, 2, 1, 0, 5, 4]] * np.array([-1, 1])
    # mouth: outer 48..59 from the image-left corner, inner 60..67
    my = eye_y + idn.mouth_height + 0.28
    mw, lt = idn.mouth_width, idn.lip_thickness
    ox = np.array([-1, -0.62, -0.25, 0, 0.25, 0.62, 1, 0.62, 0.3, 0, -0.3, -0.62]) * mw
    oy = np.array([0, -0.9, -1.1, -0.95, -1.1, -0.9, 0, 1.0, 1.3, 1.35, 1.3, 1.0]) * lt + my
    lm[48:60] = np.stack([ox, oy], 1)
    ix = np.array([-0.88, -0.35, 0, 0.35, 0.88, 0.35, 0, -0.35]) * mw
    iy = np.array([0, -0.05, -0.05, -0.05, 0, 0.05, 0.05, 0.05]) * lt + my
    lm[60:68] = np.stack([ix, iy], 1)
    return lm


def _features_2d(idn: Identity, lm: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Polylines on the skin, in canonical (x, y); the renderer draws them by name."""
    by = lm[17:27, 1].min()
    f: dict[str, list[np.ndarray]] = {}
    phi = np.linspace(np.pi, 0, 15)
    fw = idn.jaw_width * 1.0
    f["forehead"] = [np.stack([fw * np.cos(phi), -0.25 - (0.18 + idn.forehead) * np.sin(phi) ** 0.8], 1)]
    f["hair"] = [np.stack([1.13 * fw * np.cos(phi), -0.1 - (0.72 + idn.forehead) * np.sin(phi) ** 0.7], 1)]
    f["brow_upper"] = [lm[17:22] + [0, -0.5 * idn.brow_thickness], lm[22:27] + [0, -0.5 * idn.brow_thickness]]
    f["brow_lower"] = [lm[17:22] + [0, 0.5 * idn.brow_thickness], lm[22:27] + [0, 0.5 * idn.brow_thickness]]
    f["lid_crease"] = [lm[[36, 37, 38, 39]] + [0, -0.055], lm[[42, 43, 44, 45]] + [0, -0.055]]
    lines_c = [_arc(-0.26, 0.26, by - 0.17 - 0.075 * k, -0.03, 7) for k in range(3)]
    lines_l = [_arc(-0.78 + 0.04 * k, -0.36, by - 0.15 - 0.075 * k, -0.025, 5) for k in range(2)]
    lines_r = [l * [-1, 1] for l in lines_l]
    f["au1_lines"] = lines_c
    f["au2_lines"] = lines_l + lines_r
    g = [np.stack([np.full(4, x), np.linspace(by + 0.02, by + 0.2, 4)], 1) for x in (-0.07, 0.07)]
    g.append(_arc(-0.1, 0.1, -0.3, 0.02, 3))
    f["au4_lines"] = g
    ex = lm[36, 0]
    crow = [np.array([[ex - 0.06, -0.3 + d * 0.6], [ex - 0.2, -0.3 + d * 1.6]]) for d in (-0.06, 0.0, 0.06)]
    f["au6_lines"] = crow + [c * [-1, 1] for c in crow]
    f["au6_lower"] = [lm[[36, 41, 40, 39]] + [0.0, 0.065], lm[[42, 47, 46, 45]] + [0.0, 0.065]]
    nb = lm[28:30, 1]
    f["au9_lines"] = [_arc(-0.09, 0.09, y, -0.015, 3) for y in np.linspace(nb[0] - 0.04, nb[1] + 0.02, 3)]
    f["au9_lines"] += [np.array([[-0.2, lm[29, 1]], [-0.12, lm[28, 1] - 0.02]]), np.array([[0.2, lm[29, 1]], [0.12, lm[28, 1] - 0.02]])]
    nw, mw, my = idn.nose_width, idn.mouth_width, lm[48, 1]
    fold = np.array([[-nw - 0.05, lm[31, 1] - 0.04], [-nw - 0.12, (lm[31, 1] + my) / 2], [-mw - 0.08, my + 0.06]])
    f["nasolabial"] = [fold, fold * [-1, 1]]
    dimple = np.array([[-mw - 0.05, my - 0.06], [-mw - 0.07, my], [-mw - 0.05, my + 0.05]])
    f["au14_lines"] = [dimple, dimple * [-1, 1]]
    marion = np.array([[-mw - 0.02, my + 0.05], [-mw - 0.02, my + 0.22]])
    f["au15_lines"] = [marion, marion * [-1, 1]]
    chin_y = lm[57, 1] + 0.12
    f["au17_lines"] = [_arc(-0.2, 0.2, chin_y, -0.05, 7)]
    f["chin_boss"] = [np.array([[x, chin_y + 0.1 + 0.03 * abs(x) / 0.12] for x in (-0.12, -0.04, 0.04, 0.12)])]
    f["au20_lines"] = [np.array([[-mw - 0.03, my - 0.02], [-mw - 0.14, my + 0.01]]), np.array([[mw + 0.03, my - 0.02], [mw + 0.14, my + 0.01]])]
    ny = lm[31, 1]
    f["nose_side"] = [np.array([[-0.07, -0.2], [-0.09, ny - 0.18], [-nw * 0.85, ny - 0.06]]),
                      np.array([[0.07, -0.2], [0.09, ny - 0.18], [nw * 0.85, ny - 0.06]])]
    f["cheek"] = [np.array([[-0.55, -0.05]]), np.array([[0.55, -0.05]])]
    f["ear"] = [np.array([[-fw - 0.05, -0.25], [-fw - 0.03, 0.1]]), np.array([[fw + 0.05, -0.25], [fw + 0.03, 0.1]])]
    f["neck"] = [np.array([[-0.55, 0.8], [-0.6, 1.9], [0.6, 1.9], [0.55, 0.8]])]
    f["shoulders"] = [np.array([[-0.6, 1.55], [-1.9, 2.0], [-2.2, 3.5], [2.2, 3.5], [1.9, 2.0], [0.6, 1.55]])]
    return f
