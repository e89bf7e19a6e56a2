"""Phase III engine on generated flat illustrations: palette-exact raster and preview, background rules."""
import numpy as np
import pytest

from bench.chroma_vector import flat_illustration
from v2v_resources.chroma.despeckle import OUTSIDE
from v2v_resources.chroma.raster import PaletteRasterEngine, palette_indices, palette_report
from v2v_resources.chroma.upscale import LanczosUpscaler, Upscaler
from v2v_resources.errors import ConfigError, EngineError
from v2v_resources.palette import Palette
from v2v_resources.settings import load_settings

PALETTE = Palette.from_name("default15")


def phase3(**changes):
    cfg = load_settings().phase3
    return cfg.model_copy(update={"output_long_side": 640, "preview_long_side": 200, **changes})


@pytest.fixture(scope="module")
def illustration():
    return flat_illustration(160, PALETTE, seed=3)


@pytest.fixture(scope="module")
def transparent_result(illustration, tmp_path_factory):
    engine = PaletteRasterEngine(phase3(), PALETTE, LanczosUpscaler(), tmp_path_factory.mktemp("cache"))
    return engine.run(*illustration)


def test_lanczos_is_an_upscaler_by_four():
    up = LanczosUpscaler()
    assert isinstance(up, Upscaler)
    assert up.upscale(np.zeros((10, 7, 3), np.uint8)).shape == (40, 28, 3)


def test_raster_is_palette_exact_with_transparent_background(illustration, transparent_result):
    rgb, mask = illustration
    r = transparent_result
    assert r.raster.shape == (480, 640, 4)
    alpha = r.raster[..., 3]
    assert set(np.unique(alpha)) == {0, 255}
    report = palette_report(r.raster, PALETTE)
    assert report["palette_share"] == 1.0 and report["off_palette_px"] == 0
    assert 2 <= report["n_colors"] <= len(PALETTE) and report["colors_used"] == r.colors_used
    assert report["smallest_region_px"] >= r.metrics["min_area_px"]
    # The silhouette is the upscaled mask: corners transparent, the body opaque.
    assert alpha[0, 0] == 0 and alpha[240, 320] == 255
    big_mask = np.kron(mask, np.ones((4, 4), bool))
    assert (big_mask == (alpha == 255)).mean() > 0.99
    m = r.metrics
    assert m["palette_share"] == 1.0 and m["output_size"] == [640, 480]
    assert {"seconds_upscale", "seconds_map", "seconds_despeckle"} <= m.keys()


def test_preview_is_palette_exact_nearest(transparent_result):
    preview = transparent_result.preview
    assert preview.shape == (150, 200, 4)
    codes = palette_indices(preview, PALETTE)
    assert not (codes == len(PALETTE)).any()                  # no averaged, off-palette edge pixel
    assert set(np.unique(preview[..., 3])) == {0, 255}


def test_background_colour_fill_and_custom_palette(illustration, tmp_path):
    palette = Palette.from_hex(["#FFFFFF", "#000000", "#D02020", "#2040C0", "#30A050"], name="five")
    engine = PaletteRasterEngine(phase3(background="#FFFFFF"), palette, LanczosUpscaler(), tmp_path)
    r = engine.run(*illustration)
    assert (r.raster[..., 3] == 255).all()
    assert (r.raster[0, 0, :3] == 255).all()
    assert set(r.colors_used) <= set(palette.colors)
    assert palette_report(r.raster, palette)["palette_share"] == 1.0


def test_background_outside_palette_is_refused():
    with pytest.raises(ConfigError, match="#123456"):
        PaletteRasterEngine(phase3(background="#123456"), PALETTE, LanczosUpscaler())


def test_upscaler_of_wrong_factor_is_an_engine_error(illustration):
    class Twice:
        name = "twice"

        def upscale(self, rgb):
            return rgb.repeat(2, axis=0).repeat(2, axis=1)

    with pytest.raises(EngineError, match="twice"):
        PaletteRasterEngine(phase3(), PALETTE, Twice()).run(*illustration)


def test_report_sees_off_palette_pixels():
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[5, 5, :3] = (1, 2, 3)
    report = palette_report(rgba, PALETTE)
    assert report["off_palette_px"] == 1 and report["palette_share"] == pytest.approx(399 / 400)
    assert report["n_colors"] == 2 and report["smallest_region_px"] == 1
    assert palette_indices(np.zeros((2, 2, 4), np.uint8), PALETTE).tolist() == [[OUTSIDE] * 2] * 2
