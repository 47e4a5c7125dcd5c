"""Deterministic cartoon cats and dogs in a cartoon park: a stand-in for pet-park CCTV crops.

What it can stand for: a binary classifier's whole path (dataset layout, training, ONNX
export, edge inference, drift detection) exercised offline, reproducibly and without
licensed data. The label lives only in anatomy -- cats have pointed upright ears, almond
slit-pupil eyes, a small triangular nose and whiskers; dogs have floppy (sometimes upright
but rounded) ears, a long muzzle with a round nose and sometimes a tongue. Everything else
(fur colour and pattern, pose, scale, position, park clutter, occluders, sensor noise,
JPEG softness) is drawn from the same distributions for both classes, so the shortcut a
model may take is shape, not colour or context.

What it cannot stand for: real photographs. The animals are flat OpenCV cartoons with a
frontal face; real breeds, fur texture, lighting, viewpoints and the long tail of CCTV
failures are absent. Accuracy measured here says the pipeline works, not that a model is
good on real cameras -- use real photos for that.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

from ._draw import F32, U8, check_bgr, check_choice, col, pt, smooth_noise
from .shifts import SHIFTS, apply_shift

LABELS = ("cat", "dog")

# One fur palette (BGR) for both classes: colour must carry no label information.
FUR = np.array(
    [[40, 110, 220], [30, 30, 35], [130, 130, 135], [235, 235, 240], [40, 70, 120],
     [170, 210, 235], [80, 140, 200], [60, 80, 90], [110, 150, 175]], dtype=np.float32)
CAT_IRIS = [(60, 200, 120), (40, 200, 230), (30, 140, 220), (220, 170, 90)]
PINK = (150, 140, 230)


def park_background(rng: np.random.Generator, height: int, width: int) -> U8:
    """Grass with patches, maybe a path, a bench, a tree and random clutter."""
    m = min(height, width)
    green = np.array([rng.uniform(35, 75), rng.uniform(105, 165), rng.uniform(55, 115)])
    tone = 1.0 + 0.22 * smooth_noise(rng, height, width, 5)
    grass = green[None, None, :] * tone[..., None] + rng.normal(0, 12, (height, width, 3))
    img: U8 = np.clip(grass, 0, 255).astype(np.uint8)  # noise above: blade-scale texture
    if rng.random() < 0.5:  # gravel path: a thick sine-shaped band
        xs = np.linspace(-0.1, 1.1, 12) * width
        y0, amp, ph = rng.uniform(0.2, 0.8) * height, rng.uniform(0, 0.2) * height, rng.random()
        ys = y0 + amp * np.sin(2 * np.pi * (xs / width + ph))
        pts = np.stack([xs, ys], 1).astype(np.int32)
        sand = (rng.uniform(120, 160), rng.uniform(160, 190), rng.uniform(180, 215))
        cv2.polylines(img, [pts], False, sand, int(rng.uniform(0.12, 0.3) * m), cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 5))):  # balls, rocks, litter
        c = col(rng.uniform(0, 255, 3))
        x, y, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.02, 0.08) * m
        if rng.random() < 0.5:
            cv2.circle(img, pt(x, y), max(1, int(r)), c, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, pt(x - r, y - r / 2), pt(x + r, y + r / 2), c, -1)
    if rng.random() < 0.35:  # bench: slats and legs
        x, y, bw = rng.uniform(0, 0.7) * width, rng.uniform(0.05, 0.7) * height, 0.35 * m
        wood = col((rng.uniform(30, 60), rng.uniform(60, 100), rng.uniform(100, 150)))
        for k in range(3):
            yy = y + k * 0.06 * m
            cv2.rectangle(img, pt(x, yy), pt(x + bw, yy + 0.04 * m), wood, -1)
        for xx in (x + 0.05 * bw, x + 0.9 * bw):
            cv2.rectangle(img, pt(xx, y), pt(xx + 0.03 * m, y + 0.3 * m), (40, 40, 40), -1)
    if rng.random() < 0.35:  # tree: trunk plus a clump of foliage discs
        x, y = rng.uniform(0, width), rng.uniform(0.1, 0.6) * height
        cv2.rectangle(img, pt(x - 0.03 * m, y), pt(x + 0.03 * m, height), (30, 60, 90), -1)
        for _ in range(6):
            c = col((rng.uniform(20, 50), rng.uniform(70, 120), rng.uniform(20, 60)))
            p = pt(x + rng.normal(0, 0.08 * m), y + rng.normal(0, 0.06 * m))
            cv2.circle(img, p, int(rng.uniform(0.07, 0.13) * m), c, -1, cv2.LINE_AA)
    return img


def _fur_pattern(rng: np.random.Generator, size: int, base: F32) -> F32:
    """Fur colour field: solid, tabby stripes, patches or a white bib (same odds per class)."""
    img = np.broadcast_to(base, (size, size, 3)).astype(np.float32).copy()
    kind = rng.choice(["solid", "stripes", "patches", "bib"], p=[0.3, 0.25, 0.25, 0.2])
    if kind == "stripes":
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        a, f = rng.uniform(0, np.pi), rng.uniform(8, 16)
        wave = np.sin(2 * np.pi * f * (xx * np.cos(a) + yy * np.sin(a)) + rng.uniform(0, 6))
        img *= np.where(wave > 0.3, rng.uniform(0.45, 0.7), 1.0)[..., None]
    elif kind == "patches":
        other = FUR[rng.integers(len(FUR))]
        blobs = smooth_noise(rng, size, size, int(rng.integers(3, 7))) > 0.4
        img[blobs] = other
    elif kind == "bib":
        c = pt(size * rng.uniform(0.4, 0.6), size * rng.uniform(0.55, 0.75))
        bib = np.zeros((size, size), np.uint8)
        cv2.ellipse(bib, c, pt(0.14 * size, 0.22 * size), 0, 0, 360, 1, -1)
        img[bib > 0] = (235, 235, 240)
    return img


def _ear_triangle(hx: float, hy: float, ax: float, ay: float, side: int, ang: float,
                  height: float, half: float) -> NDArray[np.int32]:
    """Triangle standing on the head outline at `ang` degrees from vertical."""
    t = math.radians(ang) * side
    bx, by = hx + ax * math.sin(t) * 0.85, hy - ay * math.cos(t) * 0.85
    nx, ny, tx, ty = math.sin(t), -math.cos(t), math.cos(t), math.sin(t)
    return np.array([pt(bx - tx * half, by - ty * half), pt(bx + tx * half, by + ty * half),
                     pt(bx + nx * height, by + ny * height)], np.int32)


class _Head(NamedTuple):
    x: float
    y: float
    ax: float  # half-width of the head ellipse
    ay: float  # half-height
    r: float  # the head's nominal radius: every facial feature scales with it


class _Silhouette(NamedTuple):
    head: _Head
    ears: list[NDArray[np.int32]]  # cat ear triangles (empty for dogs)
    upright_dog: bool


def _silhouette(cat: bool, s: float, rng: np.random.Generator, mask: U8) -> _Silhouette:
    """Draw body, legs, tail, ears and head into ``mask``; return where the head is."""
    sitting = rng.random() < 0.6
    r = s * rng.uniform(0.17, 0.21)
    hx, hy = (s * rng.uniform(0.45, 0.55), s * 0.34) if sitting else (s * 0.3, s * 0.42)
    # Cats: narrower face; dogs: broader. Ranges overlap on purpose.
    ax = r * (rng.uniform(0.88, 1.02) if cat else rng.uniform(0.98, 1.15))
    ay = r * (rng.uniform(0.85, 0.95) if cat else rng.uniform(0.9, 1.02))
    bw = rng.uniform(0.85, 1.0) if cat else rng.uniform(0.95, 1.1)
    if sitting:
        body = (pt(s * 0.5, s * 0.66), pt(s * 0.23 * bw, s * 0.27))
        legs = [(s * 0.42, s * 0.86), (s * 0.58, s * 0.86)]
        tail0 = np.array([s * 0.68, s * 0.8])
    else:
        body = (pt(s * 0.58, s * 0.62), pt(s * 0.32, s * 0.16 * bw))
        legs = [(s * 0.32, s * 0.72), (s * 0.42, s * 0.74)]
        tail0 = np.array([s * 0.86, s * 0.6])
    # Tail: cats long and thin, dogs shorter and thicker; a bent polyline either way.
    ln = s * (rng.uniform(0.25, 0.38) if cat else rng.uniform(0.14, 0.26))
    th = max(2, int(s * (rng.uniform(0.03, 0.045) if cat else rng.uniform(0.045, 0.065))))
    a0, bend = rng.uniform(-1.6, -0.2), rng.uniform(-1.2, 1.2)
    ang = a0 + bend * np.linspace(0, 1, 8)[:, None]
    tail = (tail0 + np.cumsum(np.hstack([np.cos(ang), np.sin(ang)]) * ln / 8, 0)).astype(np.int32)
    cv2.polylines(mask, [np.vstack([tail0.astype(np.int32)[None], tail])], False, 255, th)
    cv2.ellipse(mask, body[0], body[1], 0, 0, 360, 255, -1, cv2.LINE_AA)
    for lx, ly in legs:
        cv2.ellipse(mask, pt(lx, ly), pt(s * 0.055, s * 0.1), 0, 0, 360, 255, -1)
    ears: list[NDArray[np.int32]] = []
    upright_dog = (not cat) and rng.random() < 0.25  # shepherd-type ears blur the line
    if cat:
        ears = [_ear_triangle(hx, hy, ax, ay, side, rng.uniform(28, 48),
                              r * rng.uniform(0.6, 0.9), r * rng.uniform(0.28, 0.38))
                for side in (-1, 1)]
        cv2.fillPoly(mask, ears, 255, cv2.LINE_AA)
    elif upright_dog:
        for side in (-1, 1):
            t = math.radians(rng.uniform(25, 40)) * side
            c = pt(hx + ax * math.sin(t) * 1.05, hy - ay * math.cos(t) * 1.05)
            cv2.ellipse(mask, c, pt(r * 0.3, r * 0.55), math.degrees(t), 0, 360, 255, -1)
    cv2.ellipse(mask, pt(hx, hy), pt(ax, ay), 0, 0, 360, 255, -1, cv2.LINE_AA)
    return _Silhouette(_Head(hx, hy, ax, ay, r), ears, upright_dog)


def _floppy_ears(img: U8, mask: U8, head: _Head, fur_c: F32, dark: tuple[int, int, int],
                 rng: np.random.Generator) -> None:
    """Dog ears hanging over the sides of the head (they widen the silhouette too)."""
    ear_c = col(np.clip(fur_c * rng.uniform(0.5, 0.95), 0, 255))
    for side in (-1, 1):
        c = pt(head.x + side * head.ax * rng.uniform(0.8, 0.95),
               head.y + head.r * rng.uniform(0.05, 0.3))
        axes = pt(head.r * rng.uniform(0.25, 0.35), head.r * rng.uniform(0.55, 0.75))
        a = side * rng.uniform(5, 25)
        for tgt, colour in ((img, ear_c), (mask, 255)):
            cv2.ellipse(tgt, c, axes, a, 0, 360, colour, -1, cv2.LINE_AA)
        cv2.ellipse(img, c, axes, a, 0, 360, dark, 1, cv2.LINE_AA)


def _eyes(img: U8, cat: bool, head: _Head, rng: np.random.Generator) -> None:
    r = head.r
    ey = head.y - r * rng.uniform(0.0, 0.15)
    for side in (-1, 1):
        ex = head.x + side * r * rng.uniform(0.34, 0.42)
        if cat:  # almond eye with a vertical slit pupil (dilated round in ~20 %)
            tilt = -side * rng.uniform(8, 20)
            cv2.ellipse(img, pt(ex, ey), pt(r * 0.2, r * 0.12), tilt, 0, 360,
                        CAT_IRIS[int(rng.integers(len(CAT_IRIS)))], -1, cv2.LINE_AA)
            pw = r * (0.1 if rng.random() < 0.2 else rng.uniform(0.03, 0.05))
            cv2.ellipse(img, pt(ex, ey), pt(pw, r * 0.11), 0, 0, 360, (10, 10, 10), -1)
            cv2.ellipse(img, pt(ex, ey), pt(r * 0.2, r * 0.12), tilt, 0, 360, (20, 20, 20), 1)
        else:  # round dark eye with a catch-light
            er = r * rng.uniform(0.1, 0.14)
            cv2.circle(img, pt(ex, ey), max(1, int(er)), (20, 35, 60), -1, cv2.LINE_AA)
            cv2.circle(img, pt(ex, ey), max(1, int(er * 0.55)), (5, 5, 5), -1, cv2.LINE_AA)
            cv2.circle(img, pt(ex - er * 0.3, ey - er * 0.3), max(1, int(er * 0.3)),
                       (240, 240, 240), -1)


def _cat_nose(img: U8, head: _Head, light: tuple[int, int, int],
              rng: np.random.Generator) -> None:
    hx, r = head.x, head.r
    ny = head.y + r * 0.3
    for side in (-1, 1):  # muzzle pads, then whiskers fanning out of them
        cv2.circle(img, pt(hx + side * r * 0.11, ny + r * 0.12), int(r * 0.13), light,
                   -1, cv2.LINE_AA)
    wc = (235, 235, 235) if rng.random() < 0.7 else (25, 25, 25)
    wl = r * rng.uniform(0.9, 1.3)
    for side in (-1, 1):
        for k in (-1, 0, 1):
            a = math.radians(k * 14 + rng.normal(0, 4))
            p0 = (hx + side * r * 0.15, ny + r * 0.12)
            p1 = (p0[0] + side * wl * math.cos(a), p0[1] + wl * math.sin(a))
            cv2.line(img, pt(*p0), pt(*p1), wc, 1, cv2.LINE_AA)
    tri = np.array([pt(hx - r * 0.09, ny - r * 0.04), pt(hx + r * 0.09, ny - r * 0.04),
                    pt(hx, ny + r * 0.08)], np.int32)
    cv2.fillPoly(img, [tri], PINK if rng.random() < 0.6 else (50, 50, 60), cv2.LINE_AA)


def _dog_muzzle(img: U8, mask: U8, head: _Head, light: tuple[int, int, int],
                dark: tuple[int, int, int], rng: np.random.Generator) -> None:
    """A long muzzle reaching below the head outline, round black nose, maybe a tongue."""
    hx, r = head.x, head.r
    my, mh = head.y + r * rng.uniform(0.45, 0.6), r * rng.uniform(0.35, 0.5)
    mw = r * rng.uniform(0.36, 0.5)
    for tgt, colour in ((img, light), (mask, 255)):
        cv2.ellipse(tgt, pt(hx, my), pt(mw, mh), 0, 0, 360, colour, -1, cv2.LINE_AA)
    cv2.ellipse(img, pt(hx, my), pt(mw, mh), 0, 0, 360, dark, 1, cv2.LINE_AA)
    ny = my - mh * 0.45
    cv2.ellipse(img, pt(hx, ny), pt(r * 0.17, r * 0.12), 0, 0, 360, (15, 15, 15), -1,
                cv2.LINE_AA)
    cv2.line(img, pt(hx, ny), pt(hx, my + mh * 0.5), (20, 20, 20), 1, cv2.LINE_AA)
    if rng.random() < 0.4:
        tc = pt(hx + rng.normal(0, r * 0.05), my + mh * 0.95)
        for tgt, colour in ((img, (120, 110, 230)), (mask, 255)):
            cv2.ellipse(tgt, tc, pt(r * 0.14, r * 0.22), 0, 0, 180, colour, -1, cv2.LINE_AA)


def animal_layer(label: str, rng: np.random.Generator, size: int) -> tuple[F32, F32]:
    """One animal on a transparent square canvas: (BGR float image, alpha in [0, 1])."""
    check_choice(label, LABELS, "label")
    cat, s = label == "cat", float(size)
    fur_c = FUR[rng.integers(len(FUR))] * rng.uniform(0.85, 1.1)
    mask = np.zeros((size, size), np.uint8)
    shape = _silhouette(cat, s, rng, mask)
    head = shape.head

    fur = _fur_pattern(rng, size, fur_c)
    # Volume: darken toward the silhouette edge; outline helps the shape read at 96 px.
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), s * 0.03)
    shaded = fur * (0.7 + 0.3 * soft)[..., None]
    edge = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    shaded[edge] *= 0.55
    img: U8 = np.clip(shaded, 0, 255).astype(np.uint8)

    dark = col(fur_c * 0.35)
    if cat:
        for e in shape.ears:  # pink inner ear: the triangle shrunk toward its centroid
            inner = (e - e.mean(0)) * 0.55 + e.mean(0) + np.array([0, head.r * 0.08])
            cv2.fillPoly(img, [inner.astype(np.int32)], PINK, cv2.LINE_AA)
    elif not shape.upright_dog:
        _floppy_ears(img, mask, head, fur_c, dark, rng)
    _eyes(img, cat, head, rng)
    light = col(np.clip(fur_c * 0.5 + 120, 0, 255))
    if cat:
        _cat_nose(img, head, light, rng)
    else:
        _dog_muzzle(img, mask, head, light, dark, rng)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (3, 3), 0)
    return img.astype(np.float32), np.asarray(alpha, np.float32)


def composite(bg: U8, layer: F32, alpha: F32, matrix: NDArray[np.float64]) -> U8:
    """Warp the animal layer by a 2x3 affine `matrix` and alpha-blend it over `bg`."""
    h, w = bg.shape[:2]
    fg = cv2.warpAffine(layer, matrix, (w, h), flags=cv2.INTER_LINEAR)
    a = cv2.warpAffine(alpha, matrix, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    return np.clip(bg * (1 - a) + fg * a, 0, 255).astype(np.uint8)


def occlude(img: U8, rng: np.random.Generator) -> U8:
    """Fence bars or a bush in front of the animal, each in about a quarter of images."""
    h, w = img.shape[:2]
    m = min(h, w)
    out = img.copy()
    if rng.random() < 0.25:
        gap, bar = rng.uniform(0.18, 0.32) * m, max(2, int(rng.uniform(0.025, 0.05) * m))
        c = col(rng.uniform(40, 160, 3))
        for x in np.arange(rng.uniform(0, gap), w, gap):
            cv2.line(out, pt(x, 0), pt(x + rng.normal(0, 0.03 * m), h), c, bar, cv2.LINE_AA)
    if rng.random() < 0.25:
        x0, top = rng.uniform(0, w), h * rng.uniform(0.7, 0.9)
        for _ in range(int(rng.integers(5, 12))):
            c = col((rng.uniform(20, 60), rng.uniform(80, 140), rng.uniform(20, 70)))
            p = pt(x0 + rng.normal(0, 0.2 * w), rng.uniform(top, h))
            cv2.circle(out, p, int(rng.uniform(0.08, 0.16) * m), c, -1, cv2.LINE_AA)
    return out


def sensor(img: U8, rng: np.random.Generator, jpeg: bool = True,
           noise_rng: np.random.Generator | None = None) -> U8:
    """Exposure and white-balance jitter, optics softness, read noise, JPEG blockiness.

    `noise_rng` (default `rng`) draws only the read noise, so a video can keep one camera
    setting per segment and still get fresh noise every frame.
    """
    f = img.astype(np.float32) * rng.uniform(0.8, 1.2) * rng.uniform(0.92, 1.08, 3)
    sigma = rng.uniform(0.0, 1.0) * min(img.shape[:2]) / 128
    if sigma > 0.3:
        f = np.asarray(cv2.GaussianBlur(f, (0, 0), sigma), np.float32)
    read_sd, q = rng.uniform(2, 8), int(rng.uniform(35, 90))
    f += (noise_rng or rng).normal(0, read_sd, f.shape)
    out = np.clip(f, 0, 255).astype(np.uint8)
    if jpeg:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        out = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8) if ok else out
    return out


def placement(src: int, angle: float, scale: float, flip: bool,
              centre: NDArray[np.float64], stretch_x: float = 1.0) -> NDArray[np.float64]:
    """2x3 affine: rotate/scale (and mirror) a src-sized layer about its centre to `centre`.

    `stretch_x` widens the result after rotation (used for non-square video frames).
    """
    m = np.asarray(cv2.getRotationMatrix2D((src / 2, src / 2), angle, scale), np.float64)
    if flip:
        m[:, 0] *= -1
    m[0] *= stretch_x
    m[:, 2] += centre - (m[:, :2] @ np.array([src / 2, src / 2]) + m[:, 2])
    return m


def render_animal(label: str, rng: np.random.Generator, size: int = 128,
                  background: np.ndarray | None = None) -> np.ndarray:
    """One labelled HxWx3 uint8 BGR image of a cat or dog in a park (or on `background`)."""
    check_choice(label, LABELS, "label")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    if background is None:
        bg = park_background(rng, size, size)
    else:
        check_bgr(background, "background")
        bg = np.asarray(cv2.resize(background, (size, size), interpolation=cv2.INTER_AREA))
    layer, alpha = animal_layer(label, rng, size)
    angle, scale = float(np.clip(rng.normal(0, 12), -25, 25)), rng.uniform(0.75, 1.1)
    centre = size * (0.5 + rng.uniform(-0.12, 0.12, 2))
    img = composite(bg, layer, alpha, placement(size, angle, scale, rng.random() < 0.5, centre))
    return sensor(occlude(img, rng), rng)


def generate_dataset(out_dir: Path, n_per_class: int, seed: int = 0, size: int = 128,
                     shift: str | None = None, severity: float = 1.0) -> dict[str, int]:
    """Write `out_dir/{cat,dog}/{label}_{i:06d}.jpg`; returns images written per class.

    Image i of a class depends only on (seed, class, i), so a larger n extends a smaller
    one with the same first files, and the same seed gives byte-identical files.
    """
    if n_per_class < 0:
        raise ValueError(f"n_per_class must be >= 0, got {n_per_class}")
    if shift is not None:
        check_choice(shift, SHIFTS, "shift")
    counts: dict[str, int] = {}
    for ci, label in enumerate(LABELS):
        d = Path(out_dir) / label
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            img = render_animal(label, np.random.default_rng([seed, ci, i]), size)
            if shift is not None:
                img = apply_shift(img, shift, severity, np.random.default_rng([seed, ci, i, 1]))
            path = d / f"{label}_{i:06d}.jpg"
            if not cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 92]):
                raise OSError(f"could not write {path}")
        counts[label] = n_per_class
    return counts
