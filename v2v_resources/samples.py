"""Synthetic vehicle photos with ground truth, for demos, tests and benchmarks without a camera.

Each seed draws a street scene (sky, clouds, buildings, trees, road) and a car in side view whose body type,
colour, size and position vary: windows, two wheels with hubcaps, a licence plate with characters, a brand
badge, a text decal, a side mirror, lights, shading, a specular streak, a ground shadow and sensor noise.
The ground truth is the vehicle silhouette and the boxes of the parts phase I is meant to erase.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .imaging import save_mask
from .storage import write_bytes_atomic, write_json_atomic

JPEG_QUALITY = 92
BODY_COLORS = [  # RGB paints, muted as real car paints are
    (178, 34, 34), (30, 60, 140), (20, 110, 150), (200, 200, 205), (40, 40, 45), (235, 190, 40),
    (30, 110, 60), (120, 20, 40), (230, 120, 30), (90, 95, 105), (240, 240, 236), (70, 40, 120),
]
DECALS = ["GT", "SPORT", "HYBRID", "TURBO", "4X4", "RS", "ECO"]
BODY_TYPES = {  # (rear cabin start, roof start, roof end, windshield base, cabin height / body height)
    "sedan": (0.20, 0.33, 0.62, 0.76, 0.80),
    "hatchback": (0.05, 0.10, 0.58, 0.72, 0.85),
    "suv": (0.04, 0.06, 0.70, 0.80, 0.95),
}


@dataclass
class _Car:
    x0: float          # rear end, in pixels
    length: float
    ground: float      # y where the tyres touch the road
    bottom: float      # y of the body's lower edge
    height: float      # body height (below the beltline)
    facing_right: bool

    def x(self, u: float) -> float:
        """u runs 0 (rear) → 1 (front)."""
        return self.x0 + (u if self.facing_right else 1 - u) * self.length

    def pt(self, u: float, v: float) -> tuple[float, float]:
        """v runs 0 (body bottom) → 1 (beltline) and above into the cabin."""
        return self.x(u), self.bottom - v * self.height

    def poly(self, uv: list[tuple[float, float]]) -> np.ndarray:
        return np.array([self.pt(u, v) for u, v in uv], dtype=np.float64)


def _chaikin(points: np.ndarray, rounds: int) -> np.ndarray:
    """Corner cutting on a closed polygon: a few rounds turn a sketch into smooth car curves."""
    for _ in range(rounds):
        nxt = np.roll(points, -1, axis=0)
        points = np.stack([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt], axis=1).reshape(-1, 2)
    return points


def _fill(mask_shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    m = np.zeros(mask_shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_8, shift=4)
    return m > 0


def _circle(mask_shape: tuple[int, int], center: tuple[float, float], r: float) -> np.ndarray:
    m = np.zeros(mask_shape, np.uint8)
    cv2.circle(m, (round(center[0] * 16), round(center[1] * 16)), round(r * 16), 255, -1, cv2.LINE_8, shift=4)
    return m > 0


def _paint(img: np.ndarray, mask: np.ndarray, color, soften: bool = True) -> None:
    """Paint `color` (an RGB triple or an H×W×3 array) through `mask`, anti-aliased at its edge."""
    x, y, bw, bh = cv2.boundingRect(mask.view(np.uint8))
    if bw == 0:
        return
    y0, y1 = max(y - 2, 0), min(y + bh + 2, mask.shape[0])
    x0, x1 = max(x - 2, 0), min(x + bw + 2, mask.shape[1])
    a = mask[y0:y1, x0:x1].astype(np.float32)
    if soften:
        a = cv2.GaussianBlur(a, (3, 3), 0.7)
    a = a[..., None]
    src = color[y0:y1, x0:x1] if np.ndim(color) == 3 else np.asarray(color, np.float32)
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - a) + src * a


def _text(img: np.ndarray, text: str, org: tuple[int, int], font: int, scale: float, color, thickness: int) -> None:
    """Anti-aliased text on the float canvas (cv2.putText only draws on 8-bit images)."""
    ink = np.zeros(img.shape[:2], np.uint8)
    cv2.putText(ink, text, org, font, scale, 255, thickness, cv2.LINE_AA)
    x, y, w, h = cv2.boundingRect(ink)
    a = ink[y:y + h, x:x + w].astype(np.float32)[..., None] / 255
    img[y:y + h, x:x + w] = img[y:y + h, x:x + w] * (1 - a) + np.asarray(color, np.float32) * a


def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _scene(rng: np.random.Generator, w: int, h: int, horizon: int, paint: np.ndarray) -> np.ndarray:
    img = np.zeros((h, w, 3), np.float32)
    top = np.array([rng.uniform(60, 110), rng.uniform(120, 160), rng.uniform(200, 240)], np.float32)
    low = np.array([rng.uniform(180, 215), rng.uniform(200, 225), rng.uniform(225, 245)], np.float32)
    t = np.linspace(0, 1, horizon, dtype=np.float32)[:, None, None]
    img[:horizon] = top * (1 - t) + low * t
    clouds = np.zeros((h, w), np.float32)
    for _ in range(rng.integers(2, 6)):
        c = (int(rng.uniform(0, w)), int(rng.uniform(0, horizon * 0.6)))
        cv2.ellipse(clouds, c, (int(rng.uniform(40, 140)), int(rng.uniform(12, 30))), 0, 0, 360, 1.0, -1)
    clouds = cv2.GaussianBlur(clouds, (0, 0), 9)[..., None] * 0.8
    img[:] = img * (1 - clouds) + 250 * clouds
    sky = img.copy()
    # a skyline that runs off both edges of the frame, as streets do
    x = int(-rng.uniform(0, 60))
    while x < w:
        bw, bh = int(rng.uniform(60, 180)), int(rng.uniform(0.15, 0.55) * horizon)
        if rng.random() < 0.25:  # a tree instead of a building
            trunk = np.zeros((h, w), bool)
            trunk[horizon - bh // 3:horizon, x + bw // 2 - 5:x + bw // 2 + 5] = True
            _paint(img, trunk, (90, 60, 40))
            crown = _circle((h, w), (x + bw / 2, horizon - bh / 3 - bw / 3), bw / 2.2)
            _paint(img, crown, tuple(rng.uniform([30, 90, 30], [70, 140, 60])))
        else:
            g = rng.uniform(110, 200)
            facade = np.zeros((h, w), bool)
            facade[horizon - bh:horizon, max(x, 0):x + bw] = True
            _paint(img, facade, (g + rng.uniform(-20, 20), g + rng.uniform(-15, 15), g + rng.uniform(-20, 10)), False)
            for wy in range(horizon - bh + 10, horizon - 18, 26):
                for wx in range(x + 10, x + bw - 16, 24):
                    if 0 <= wx and wx + 12 < w:
                        img[wy:wy + 14, wx:wx + 12] = (70, 85, 100)
        x += bw + int(rng.uniform(0, 30))
    haze = rng.uniform(0.45, 0.65)  # distance washes the skyline towards the sky
    img[:] = img * (1 - haze) + sky * haze
    # pavement strip, then asphalt with a dashed lane line
    walk = horizon + int(0.05 * h)
    img[horizon:walk] = rng.uniform(150, 185)
    # dark asphalt or light concrete, whichever the paint stands out from (a lot is chosen for the photo)
    luma = float(paint @ np.array([0.299, 0.587, 0.114], np.float32))
    road = max((rng.uniform(60, 95), rng.uniform(150, 185)), key=lambda tone: abs(tone - luma))
    t = np.linspace(0, 1, h - walk, dtype=np.float32)[:, None, None]
    img[walk:] = road * (1 - 0.15 * t)
    lane_y = int(walk + 0.35 * (h - walk))
    for lx in range(int(-rng.uniform(0, 80)), w, 160):
        img[lane_y:lane_y + 6, max(lx, 0):max(lx + 90, 0)] = (215, 215, 205)
    # the camera focuses on the car: depth of field softens the scene behind it
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(1.5, 3.0) * w / 1024)


def draw_sample(seed: int, size: tuple[int, int] = (1024, 768)) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """One synthetic photo: (H×W×3 uint8 RGB, H×W bool vehicle mask, parts [{label, box}]). `size` is (w, h)."""
    w, h = size
    rng = np.random.default_rng(seed)
    horizon = int(h * rng.uniform(0.42, 0.55))
    paint = np.asarray(BODY_COLORS[rng.integers(len(BODY_COLORS))], np.float32)
    paint = np.clip(paint + rng.uniform(-12, 12, 3), 0, 255)
    img = _scene(rng, w, h, horizon, paint)

    kind = list(BODY_TYPES)[rng.integers(len(BODY_TYPES))]
    c_rear, r_rear, r_front, c_front, cabin_ratio = BODY_TYPES[kind]
    length = w * rng.uniform(0.55, 0.76)
    margin = 0.08 * w
    x0 = rng.uniform(margin, w - margin - length)
    ground = h * rng.uniform(0.80, 0.90)
    radius = length * rng.uniform(0.085, 0.10)
    height = length * rng.uniform(0.17, 0.21) * (1.15 if kind == "suv" else 1.0)
    car = _Car(x0, length, ground, ground - radius * 0.55, height, bool(rng.random() < 0.5))
    ch = cabin_ratio * rng.uniform(0.85, 1.05)   # cabin height, in body heights

    # ground shadow first: it lies on the road and is not part of the vehicle
    shadow = np.zeros((h, w), np.float32)
    cv2.ellipse(shadow, (int(car.x(0.5)), int(ground)), (int(length * 0.52), int(radius * 0.35)),
                0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), radius * 0.25)[..., None] * 0.4
    img *= 1 - shadow

    outline = car.poly([(0.01, 0.06), (0.0, 0.45), (0.02, 0.95), (0.10, 1.0), (c_rear, 1.0),
                        (r_rear, 1 + ch), (r_front, 1 + ch), (c_front, 1.0), (0.93, 0.86),
                        (1.0, 0.62), (0.995, 0.08), (0.92, 0.0), (0.08, 0.0)])
    body = _fill((h, w), _chaikin(outline, 4))
    # paint shading: lighter towards the shoulder, darker towards the sills
    ys = np.arange(h, dtype=np.float32)[:, None, None]
    shade = np.clip(1.12 - 0.35 * (ys - (car.bottom - car.height)) / car.height, 0.7, 1.15)
    _paint(img, body, np.broadcast_to(np.clip(paint * shade, 0, 255), (h, w, 3)))

    # windows with a B-pillar, then door seams and handles
    glass_top, glass_low = 1 + ch * 0.9, 1.05
    d = 0.02
    window = car.poly([(c_rear + 2 * d, glass_low), (r_rear + d, glass_top), (r_front - d, glass_top),
                       (c_front - 2 * d, glass_low)])
    glass = _fill((h, w), _chaikin(window, 2))
    g = np.broadcast_to((np.clip(60 + 40 * (ys - (car.bottom - car.height * glass_top)) / car.height, 40, 120)
                         * np.array([0.8, 0.9, 1.1], np.float32)), (h, w, 3))
    _paint(img, glass, g)
    pillar_u = (r_rear + r_front) / 2
    pillar = _fill((h, w), car.poly([(pillar_u - 0.012, glass_low), (pillar_u - 0.012, glass_top + 0.05),
                                     (pillar_u + 0.012, glass_top + 0.05), (pillar_u + 0.012, glass_low)]))
    _paint(img, pillar & glass, (35, 35, 38))
    for u in (pillar_u - 0.005, c_front - 0.01):
        seam = np.zeros((h, w), np.uint8)
        cv2.line(seam, (int(car.x(u)), int(car.bottom - car.height * 0.1)),
                 (int(car.x(u)), int(car.bottom - car.height * 1.0)), 1, 2)
        _paint(img, (seam > 0) & body, paint * 0.55)
        hu = u - 0.06
        handle = car.poly([(hu, 0.78), (hu + 0.045, 0.78), (hu + 0.045, 0.72), (hu, 0.72)])
        _paint(img, _fill((h, w), handle), paint * 0.6)
    # specular streak along the shoulder
    streak = np.zeros((h, w), np.float32)
    cv2.line(streak, (int(car.x(0.08)), int(car.bottom - car.height * 0.82)),
             (int(car.x(0.9)), int(car.bottom - car.height * 0.78)), 1.0, max(2, int(car.height * 0.05)))
    streak = cv2.GaussianBlur(streak, (0, 0), car.height * 0.03)[..., None] * 0.6 * body[..., None]
    img[:] = img * (1 - streak) + 255 * streak
    # lights
    _paint(img, _fill((h, w), _chaikin(car.poly([(0.955, 0.74), (0.99, 0.66), (0.985, 0.55), (0.93, 0.62)]), 2)),
           (250, 245, 215))
    _paint(img, _fill((h, w), _chaikin(car.poly([(0.005, 0.75), (0.05, 0.78), (0.05, 0.62), (0.005, 0.60)]), 2)),
           (200, 25, 30))

    # wheels: dark arch cut into the body, tyre, rim with spokes, hub
    wheel_mask = np.zeros((h, w), bool)
    for u in (rng.uniform(0.17, 0.21), rng.uniform(0.78, 0.82)):
        c = (car.x(u), ground - radius)
        _paint(img, _circle((h, w), c, radius * 1.12) & body, (22, 22, 24))
        tyre = _circle((h, w), c, radius)
        wheel_mask |= tyre
        _paint(img, tyre, (32, 32, 34))
        rim_tone = rng.uniform(150, 210)
        _paint(img, _circle((h, w), c, radius * 0.62), (rim_tone, rim_tone, rim_tone + 5))
        spokes = np.zeros((h, w), np.uint8)
        phase = rng.uniform(0, 2 * np.pi)
        for k in range(5):
            a = phase + k * 2 * np.pi / 5
            cv2.line(spokes, (int(c[0]), int(c[1])), (int(c[0] + np.cos(a) * radius * 0.58),
                                                      int(c[1] + np.sin(a) * radius * 0.58)), 1, max(2, int(radius * 0.1)))
        _paint(img, (spokes > 0) & ~_circle((h, w), c, radius * 0.15), (rim_tone - 70,) * 3)
        _paint(img, _circle((h, w), c, radius * 0.15), (rim_tone + 30,) * 3)

    parts: list[dict] = []
    # side mirror just ahead of the windshield base, standing proud of the beltline
    mirror = _fill((h, w), _chaikin(car.poly([(c_front - 0.035, 0.98), (c_front - 0.035, 1.22),
                                              (c_front + 0.02, 1.20), (c_front + 0.025, 1.02)]), 2))
    _paint(img, mirror, paint * 0.8 if rng.random() < 0.5 else (30, 30, 32))
    parts.append({"label": "side view mirror", "box": _box(mirror)})

    # licence plate on the rear bumper: white or yellow, dark characters
    plate_uv = [(0.012, 0.44), (0.095, 0.44), (0.095, 0.22), (0.012, 0.22)]
    plate = _fill((h, w), car.poly(plate_uv))
    plate_color = (245, 245, 240) if rng.random() < 0.6 else (245, 205, 40)
    _paint(img, plate, plate_color, soften=False)
    bx1, by1, bx2, by2 = _box(plate)
    chars = "".join(rng.choice(list(string.ascii_uppercase + string.digits), 6))
    scale = (by2 - by1) / 40
    (tw, th), _ = cv2.getTextSize(chars, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    scale *= min(1.0, 0.9 * (bx2 - bx1) / max(tw, 1))
    (tw, th), _ = cv2.getTextSize(chars, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    org = (bx1 + (bx2 - bx1 - tw) // 2, by1 + (by2 - by1 + th) // 2)
    _text(img, chars, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 30), max(1, round(scale * 2)))
    parts.append({"label": "license plate", "box": [bx1, by1, bx2, by2], "text": chars})

    # brand badge on the nose: a chrome oval with a letter
    bc = car.pt(0.955, 0.45)
    br = radius * 0.22
    badge = np.zeros((h, w), np.uint8)
    cv2.ellipse(badge, (int(bc[0]), int(bc[1])), (int(br * 1.4), int(br)), 0, 0, 360, 1, -1)
    _paint(img, badge > 0, (215, 215, 222))
    letter = str(rng.choice(list(string.ascii_uppercase)))
    fs = br / 16
    (lw, lh), _ = cv2.getTextSize(letter, cv2.FONT_HERSHEY_DUPLEX, fs, 1)
    _text(img, letter, (int(bc[0] - lw / 2), int(bc[1] + lh / 2)), cv2.FONT_HERSHEY_DUPLEX, fs, (60, 60, 70), 1)
    parts.append({"label": "brand badge", "box": _box(badge > 0)})

    # a text decal on the doors, between the wheels
    decal = str(rng.choice(DECALS))
    anchor = car.pt(rng.uniform(0.42, 0.55), 0.35)
    fs = car.height / 120
    thick = max(1, round(fs * 2))
    (dw, dh), base = cv2.getTextSize(decal, cv2.FONT_HERSHEY_TRIPLEX, fs, thick)
    ink = (245, 245, 245) if paint.mean() < 140 else (25, 25, 30)
    org = (int(anchor[0] - dw / 2), int(anchor[1] + dh / 2))
    _text(img, decal, org, cv2.FONT_HERSHEY_TRIPLEX, fs, ink, thick)
    parts.append({"label": "text", "box": [org[0], org[1] - dh - thick, org[0] + dw, org[1] + base],
                  "text": decal})

    vehicle = body | wheel_mask | mirror
    # optics and sensor: a touch of lens blur, then noise
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += rng.standard_normal(img.shape, dtype=np.float32) * 3.0
    rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return rgb, vehicle, parts


def generate_samples(out_dir: Path, n: int, seed: int = 0, size: tuple[int, int] = (1024, 768)) -> list[Path]:
    """Write `n` photos `sample-<seed>.jpg`, each with `.mask.png` and `.json` ground truth beside it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(seed, seed + n):
        rgb, mask, parts = draw_sample(s, size)
        name = f"sample-{s:05d}"
        jpg = out_dir / f"{name}.jpg"
        mask_path = save_mask(out_dir / f"{name}.mask.png", mask)
        truth = {"image": jpg.name, "vehicle_mask": mask_path.name, "vehicle_box": _box(mask),
                 "parts": parts, "size": [int(size[0]), int(size[1])], "seed": s}
        write_json_atomic(out_dir / f"{name}.json", truth)
        # the photo is written last: a folder watcher that sees it finds its ground truth already there
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        write_bytes_atomic(jpg, buf.tobytes())
        paths.append(jpg)
    return paths
