"""Lite phase II: flat illustration inside the vehicle, background outside, silhouette kept and measured;
and the de-shined Canny edge map it shares with the ml steer."""
import numpy as np
import pytest

from v2v_resources.errors import BadInputError
from v2v_resources.imaging import iou
from v2v_resources.samples import draw_sample
from v2v_resources.sanitize.lite import GrabCutSanitizer
from v2v_resources.settings import load_settings
from v2v_resources.steer.edges import canny_edges
from v2v_resources.steer.lite import FlatteningSteerer, absorb_small_regions, majority_filter, outlines


def unique_colors(pixels: np.ndarray) -> int:
    return len(np.unique(pixels.astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])))


@pytest.fixture(scope="module")
def settings():
    return load_settings()


@pytest.fixture(scope="module")
def steerer(settings):
    return FlatteningSteerer(settings.phase2, GrabCutSanitizer(settings.phase1))


@pytest.fixture(scope="module")
def sample():
    return draw_sample(0)


def test_illustration_is_flat_on_the_background_with_the_same_silhouette(steerer, settings, sample):
    rgb, truth, _ = sample
    result = steerer.steer(rgb, truth)
    out = result.illustration
    assert out.shape == (768, 1024, 3) and out.dtype == np.uint8      # long side = generation_long_side
    assert result.mask.shape == out.shape[:2] and np.array_equal(result.mask, truth)
    background = np.frombuffer(bytes.fromhex(settings.phase2.background[1:]), np.uint8)
    assert (out[~result.mask] == background).all()
    # k flat colours, plus their darkened outline shades
    k = result.metrics["clusters"]
    assert 2 <= k <= settings.phase2.lite.clusters
    assert unique_colors(out[result.mask]) <= 2 * k
    assert unique_colors(rgb[truth]) > 100 * unique_colors(out[result.mask])
    assert result.silhouette_iou >= 0.85 and result.passed
    assert result.backend == "lite" and len(result.attempts) == 1
    assert result.attempts[0]["iou"] == pytest.approx(result.silhouette_iou, abs=1e-4)


def test_chain_from_the_lite_sanitizer(steerer):
    rgb, truth, _ = draw_sample(2)
    plate = steerer.sanitizer.sanitize(rgb)
    result = steerer.steer(plate.clean, plate.vehicle_mask)
    assert result.passed and result.silhouette_iou >= 0.85
    assert iou(result.mask, truth) >= 0.85


def test_generation_size_is_a_multiple_of_8_and_seeded(settings):
    cfg = settings.phase2.model_copy(update={"generation_long_side": 256})
    steerer = FlatteningSteerer(cfg, GrabCutSanitizer(settings.phase1))
    rgb, truth, _ = draw_sample(3, (333, 251))
    a = steerer.steer(rgb, truth, seed=3)
    b = steerer.steer(rgb, truth, seed=3)
    h, w = a.illustration.shape[:2]
    assert max(h, w) == 256 and h % 8 == 0 and w % 8 == 0
    assert np.array_equal(a.illustration, b.illustration)
    assert a.attempts[0]["seed"] == 3


def test_a_lost_silhouette_fails_after_one_weaker_retry(steerer, settings):
    # a white vehicle on the white background: no edge is left for the silhouette to follow
    img = np.full((384, 512, 3), 255, np.uint8)
    mask = np.zeros((384, 512), bool)
    mask[150:260, 100:400] = True
    result = steerer.steer(img, mask)
    assert not result.passed and result.silhouette_iou < settings.phase2.iou_retry.iou_threshold
    passes = settings.phase2.lite.bilateral_passes
    assert [a["bilateral_passes"] for a in result.attempts] == [passes, passes // 2]
    assert result.silhouette_iou == pytest.approx(max(a["iou"] for a in result.attempts), abs=1e-4)


def test_bad_mask_is_refused(steerer, sample):
    rgb, truth, _ = sample
    with pytest.raises(BadInputError, match=r"\[steer\]"):
        steerer.steer(rgb, np.zeros_like(truth))
    with pytest.raises(BadInputError, match=r"\[steer\]"):
        steerer.steer(rgb, truth[:10])


def test_majority_filter_removes_speckle():
    labels = np.zeros((20, 20), np.int64)
    labels[:, 10:] = 1
    labels[5, 3] = 1                          # a lone speck in region 0
    out = majority_filter(labels, 2, 5)
    assert out[5, 3] == 0 and (out[:, :8] == 0).all() and (out[:, 12:] == 1).all()


def test_canny_edges_are_binary_and_trace_the_vehicle(settings, sample):
    rgb, truth, _ = sample
    edges = canny_edges(rgb, settings.phase2.canny)
    assert edges.shape == truth.shape and edges.dtype == np.uint8
    assert set(np.unique(edges)) == {0, 255}
    # most of the vehicle's outline has an edge within 3 px
    t = truth.astype(np.uint8)
    outline = (t - np.roll(t, 1, 0)) | (t - np.roll(t, 1, 1))
    near = np.zeros_like(truth)
    ys, xs = np.nonzero(edges)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            near[np.clip(ys + dy, 0, truth.shape[0] - 1), np.clip(xs + dx, 0, truth.shape[1] - 1)] = True
    assert near[outline > 0].mean() > 0.7


def test_deshine_drops_a_faint_highlight_and_keeps_the_body_edge(settings):
    import cv2
    # navy paint over black tyre rubber, with a faint specular streak across the paint
    img = np.full((200, 300, 3), (60, 90, 150), np.float32)
    img[170:] = (5, 5, 5)
    streak = np.zeros((200, 300), np.float32)
    cv2.line(streak, (20, 100), (280, 96), 1.0, 6)
    streak = cv2.GaussianBlur(streak, (0, 0), 1.0)[..., None] * 0.4
    img = np.clip(img * (1 - streak) + 255 * streak, 0, 255).astype(np.uint8)
    cfg = settings.phase2.canny
    plain = cv2.Canny(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cfg.low, cfg.high) > 0
    deshined = canny_edges(img, cfg) > 0
    assert plain[80:120].sum() > 400 and deshined[80:120].sum() < 0.1 * plain[80:120].sum()
    assert deshined[165:175].any(axis=0).mean() > 0.95


def test_a_shaded_noisy_panel_becomes_a_few_clean_bands_with_crisp_outlines(steerer, settings):
    import cv2
    # one door panel: a vertical shading gradient with sensor noise and reflections, a dark window above
    rng = np.random.default_rng(5)
    img = np.full((384, 512, 3), 235, np.float32)
    mask = np.zeros((384, 512), bool)
    mask[120:300, 60:460] = True
    ramp = np.linspace(1.15, 0.7, 180, dtype=np.float32)[:, None, None]
    img[120:300, 60:460] = np.array((90, 140, 220), np.float32) * ramp
    img[120:170, 120:400] = (20, 22, 28)
    for _ in range(40):   # small specular blotches
        cv2.circle(img, (int(rng.integers(70, 450)), int(rng.integers(180, 290))), int(rng.integers(2, 5)),
                   (150, 180, 230), -1)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    result = steerer.steer(img, mask)
    out, mask = result.illustration, result.mask          # at the generation size, twice the input
    colors = out[mask].astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    # every flat patch is at least min_region_px: no posterised speckle
    lite = settings.phase2.lite
    codes = np.full(mask.shape, -1, np.int64)
    codes[mask] = colors
    flat_sizes = []
    for c in np.unique(colors):
        n, _, stats, _ = cv2.connectedComponentsWithStats((codes == c).astype(np.uint8), connectivity=4)
        # outline runs are one pixel thin: only patches at least 3 px each way are flat regions
        flat_sizes += [a for x, y, w, h, a in stats[1:] if w >= 3 and h >= 3]
    assert min(flat_sizes) >= lite.min_region_px * 0.75        # an outline may take a ring off a patch
    assert len(flat_sizes) <= 40                                # tone bands, the window, the blotches
    # the window's lower edge (row 340 at this size) is one unbroken outline on the panel's side: a darkened
    # panel colour, unlike both the window and the panel
    band = out[336:346, 260:780].astype(int)
    window, panel = out[320, 520].astype(int), out[360, 520].astype(int)
    line = (np.abs(band - window).sum(axis=2) > 30) & (np.abs(band - panel).sum(axis=2) > 30)
    assert line.any(axis=0).mean() > 0.95


def test_small_patches_join_their_neighbours_and_outlines_follow_lightness_steps():
    labels = np.zeros((40, 40), np.int64)
    labels[:, 20:] = 1
    labels[10:12, 5:7] = 1                 # a 4-px speck of label 1 inside region 0
    inside = np.ones((40, 40), bool)
    out = absorb_small_regions(labels, inside, 2, 10)
    assert (out[:, :20] == 0).all() and (out[:, 20:] == 1).all()
    edge = outlines(out, inside, np.array([80.0, 30.0]), 10)
    assert edge[:, 19].all() and edge.sum() == 40            # drawn once, on the lighter side
    assert not outlines(out, inside, np.array([50.0, 45.0]), 10).any()
