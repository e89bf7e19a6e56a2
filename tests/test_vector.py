"""Phase IV: vtracer under a time limit, palette-exact framed SVG, strokes, fidelity of the rendering."""
import numpy as np
import pytest
import vtracer

from bench.chroma_vector import flat_illustration
from v2v_resources.chroma.raster import PaletteRasterEngine, palette_indices
from v2v_resources.chroma.upscale import LanczosUpscaler
from v2v_resources.errors import ConfigError, EngineError
from v2v_resources.palette import Palette
from v2v_resources.settings import VTracer, load_settings
from v2v_resources.vector import document
from v2v_resources.vector.engine import Vectorizer
from v2v_resources.vector.safety import validate_svg
from v2v_resources.vector.strokes import centerlines
from v2v_resources.vector.trace import png_bytes, trace, vtracer_kwargs

PALETTE = Palette.from_name("default15")
SETTINGS = load_settings()


def phase4(strategy="none", **changes):
    strokes = SETTINGS.phase4.strokes.model_copy(update={"strategy": strategy})
    return SETTINGS.phase4.model_copy(update={"strokes": strokes, "preview_long_side": 300, **changes})


@pytest.fixture(scope="module")
def raster(tmp_path_factory):
    cfg = SETTINGS.phase3.model_copy(update={"output_long_side": 1600, "preview_long_side": 200})
    engine = PaletteRasterEngine(cfg, PALETTE, LanczosUpscaler(), tmp_path_factory.mktemp("cache"))
    return engine.run(*flat_illustration(400, PALETTE, seed=5)).raster


@pytest.fixture(scope="module")
def plain(raster, tmp_path_factory):
    return Vectorizer(phase4(), PALETTE, tmp_path_factory.mktemp("cache")).run(raster)


def test_every_vtracer_setting_is_a_valid_binding_keyword():
    kwargs = vtracer_kwargs(SETTINGS.phase4.vtracer)
    assert set(kwargs) == set(VTracer.model_fields) and "segment_length" not in kwargs
    tiny = np.zeros((8, 8, 4), np.uint8)
    tiny[2:6, 2:6] = (255, 0, 0, 255)
    assert "<svg" in vtracer.convert_raw_image_to_svg(png_bytes(tiny), img_format="png", **kwargs)


def test_time_limit_stops_a_slow_trace():
    noisy = np.random.default_rng(0).integers(0, 256, (1200, 1200, 4), dtype=np.uint8)
    noisy[..., 3] = 255
    with pytest.raises(EngineError, match=r"time limit of 0\.01 s"):
        trace(noisy, SETTINGS.phase4.vtracer, time_limit_s=0.01)


def test_svg_is_valid_palette_exact_and_faithful(raster, plain):
    m = plain.metrics
    assert validate_svg(plain.svg, PALETTE) == []
    root = document.parse(plain.svg)
    assert root.get("viewBox") == "0 0 1600 1200" and (root.get("width"), root.get("height")) == ("1600", "1200")
    assert "ns0:" not in plain.svg
    assert m["agreement"] >= 0.98 and m["silhouette_iou"] >= 0.97
    assert 0 < m["paths"] <= 1500 and m["svg_bytes"] <= 2_000_000
    assert {"seconds_trace", "seconds_strokes", "seconds_render", "seconds_fidelity"} <= m.keys()


def test_transparent_background_stays_transparent(raster, plain):
    preview = plain.preview
    assert preview.shape == (225, 300, 4)
    assert preview[0, 0, 3] == 0 and preview[-1, -1, 3] == 0      # no background path behind the car
    assert preview[112, 150, 3] == 255
    codes = palette_indices(preview, PALETTE)
    inner = preview[..., 3] == 255
    assert (codes[inner] < len(PALETTE)).mean() > 0.85            # flat palette fills (edges antialiased)


def test_outline_strokes_every_region_path(raster):
    result = Vectorizer(phase4("outline"), PALETTE).run(raster)
    root = document.parse(result.svg)
    paths = [el for el in root.iter() if el.tag.endswith("path")]
    assert paths and all(p.get("stroke") == "#000000" and p.get("vector-effect") == "non-scaling-stroke"
                         for p in paths)
    assert validate_svg(result.svg, PALETTE) == []
    m = result.metrics         # black lines over the boundaries: judged apart from the fills
    assert m["agreement_with_strokes"] < m["agreement"] and m["agreement"] >= 0.98


def test_centerlines_are_open_polylines_in_their_group(raster):
    result = Vectorizer(phase4("centerline"), PALETTE).run(raster)
    root = document.parse(result.svg)
    group = [el for el in root.iter() if el.get("id") == "centerlines"]
    assert len(group) == 1
    lines = list(group[0])
    assert len(lines) == result.metrics["centerline_paths"] > 0
    assert all(p.get("fill") == "none" and "Z" not in p.get("d").upper() for p in lines)
    assert validate_svg(result.svg, PALETTE) == []


def test_centerline_of_a_straight_boundary_is_one_straight_line():
    codes = np.zeros((100, 80), np.uint8)
    codes[:, 40:] = 1
    lines = centerlines(codes, tolerance=1.5, min_length=12)
    assert len(lines) == 1
    line = lines[0]
    assert len(line) == 2 and abs(line[0][0] - line[1][0]) < 1.0 and abs(line[0][1] - line[1][1]) > 95
    assert centerlines(codes, tolerance=1.5, min_length=200) == []


def test_near_colours_snap_to_the_palette():
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><path d="M0 0 L4 0 L4 4 Z" '
           'fill="#A52929"/><path d="M0 0 L1 0 L1 1 Z" fill="#03FEFE"/></svg>')
    root = document.parse(svg)
    assert document.snap_fills(root, PALETTE) == 2
    assert [p.get("fill") for p in root] == ["#A52A2A", "#00FFFF"]


def test_stroke_colour_outside_palette_is_refused():
    cfg = phase4("outline")
    cfg = cfg.model_copy(update={"strokes": cfg.strokes.model_copy(update={"color": "#123456"})})
    with pytest.raises(ConfigError, match="#123456"):
        Vectorizer(cfg, PALETTE)
