"""AU intensity trajectories: sparse episodes (onset, apex, offset) that co-occur like real ones.

Most frames are 0, as in DISFA. Episodes come from expression prototypes (a smile pulls 12 with
6, a surprise 1 with 2, 5 and often 25 + 26 …), each member AU with its own intensity and a few
frames of timing jitter, plus isolated single-AU episodes so every AU is also seen alone. Each
subject gets its own prototype rates, so base rates differ between people and nothing is tied to
the time within a video.
"""

from __future__ import annotations

import numpy as np

from auhm.synth.face_model import RENDERED_AUS
from auhm.targets import MAX_INTENSITY

# prototype → {AU: (probability the AU joins, intensity relative to the episode's apex)}
PROTOTYPES: dict[str, dict[int, tuple[float, float]]] = {
    "smile": {12: (1.0, 1.0), 6: (0.75, 0.8), 25: (0.4, 0.6), 10: (0.15, 0.5)},
    "laugh": {12: (1.0, 1.0), 6: (1.0, 0.95), 25: (1.0, 0.9), 26: (0.8, 0.8)},
    "surprise": {1: (1.0, 1.0), 2: (0.9, 0.9), 5: (0.7, 0.8), 25: (0.6, 0.7), 26: (0.55, 0.7)},
    "frown": {4: (1.0, 1.0), 17: (0.35, 0.6), 5: (0.2, 0.5)},
    "sad": {1: (0.85, 0.8), 4: (0.6, 0.6), 15: (1.0, 1.0), 17: (0.6, 0.7)},
    "disgust": {9: (1.0, 1.0), 10: (0.7, 0.8), 4: (0.4, 0.5), 17: (0.3, 0.5), 15: (0.2, 0.5)},
    "fear": {1: (1.0, 0.9), 2: (0.7, 0.7), 4: (0.6, 0.6), 5: (0.9, 0.9), 20: (1.0, 1.0), 25: (0.8, 0.7)},
    "dimple": {14: (1.0, 1.0), 12: (0.3, 0.4), 17: (0.25, 0.5)},
    "talk": {25: (1.0, 1.0), 26: (0.6, 0.8)},
}


def _envelope(n: int, start: float, onset: float, apex: float, offset: float) -> np.ndarray:
    """0 → 1 (smoothstep onset), hold, 1 → 0 (smoothstep offset), over frames 0..n-1."""
    t = np.arange(n, dtype=np.float64)
    up = np.clip((t - start) / max(onset, 1e-6), 0, 1)
    down = np.clip((start + onset + apex + offset - t) / max(offset, 1e-6), 0, 1)
    s = lambda u: u * u * (3 - 2 * u)  # noqa: E731
    return s(np.minimum(up, down))


def au_trajectories(rng: np.random.Generator, frames: int, fps: float, activity: float = 1.0) -> np.ndarray:
    """(frames, len(RENDERED_AUS)) float32 continuous intensities in [0, 5].

    ``activity`` scales every rate; about a fifth of frames carry a given AU at ≥ 1 on average.
    """
    col = {au: k for k, au in enumerate(RENDERED_AUS)}
    out = np.zeros((frames, len(RENDERED_AUS)))
    seconds = frames / fps

    def add(au: int, start: float, on: float, hold: float, off: float, apex: float) -> None:
        env = _envelope(frames, start, on, hold, off) * apex
        out[:, col[au]] = np.maximum(out[:, col[au]], env)

    def timing() -> tuple[float, float, float]:
        return rng.uniform(0.3, 1.0) * fps, rng.uniform(0.4, 2.5) * fps, rng.uniform(0.4, 1.2) * fps

    # per-subject expressiveness: prototype rates in episodes per minute, log-uniform
    for name, members in PROTOTYPES.items():
        rate = activity * np.exp(rng.uniform(np.log(0.6), np.log(4.0)))
        for _ in range(rng.poisson(rate * seconds / 60)):
            start = rng.uniform(-2 * fps, frames)
            on, hold, off = timing()
            apex = rng.uniform(1.0, 5.0)
            for au, (p, rel) in members.items():
                if rng.uniform() < p:
                    jitter = rng.normal(0, 0.15 * fps)
                    scale = rel * rng.uniform(0.75, 1.15)
                    add(au, start + jitter, on * rng.uniform(0.8, 1.2), hold, off * rng.uniform(0.8, 1.2), apex * scale)
    for au in RENDERED_AUS:  # isolated episodes: every AU also appears on its own
        rate = activity * np.exp(rng.uniform(np.log(0.8), np.log(3.5)))
        for _ in range(rng.poisson(rate * seconds / 60)):
            add(au, rng.uniform(-2 * fps, frames), *timing(), rng.uniform(0.8, 5.0))
    return np.clip(out, 0, MAX_INTENSITY).astype(np.float32)


def smooth_signal(rng: np.random.Generator, frames: int, fps: float, period: tuple[float, float] = (2.0, 12.0), parts: int = 3) -> np.ndarray:
    """A smooth wandering signal in [−1, 1]: a sum of slow sinusoids with random phases."""
    t = np.arange(frames) / fps
    amp = rng.uniform(0.3, 1.0, parts)
    freq = 1.0 / rng.uniform(*period, parts)
    phase = rng.uniform(0, 2 * np.pi, parts)
    x = (amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t[None] + phase[:, None])).sum(0)
    return x / amp.sum()


def integer_labels(intensities: np.ndarray) -> np.ndarray:
    """What a coder writes down: the continuous value rounded half up to 0–5."""
    return np.clip(np.floor(np.asarray(intensities, np.float64) + 0.5), 0, 5).astype(np.int64)
