"""Exact penalised CIEDE2000 mapping: equal to scikit-image brute force plus the chroma penalty, its lookup table
cached on disk, and dark grey paint kept off purple."""
import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from v2v_resources.chroma.mapping import (CHROMA_PENALTY, CHROMA_SLACK, METRIC, NEUTRAL_CHROMA, UNKNOWN, PaletteMapper,
                                          brute_force_indices, pack_rgb, unpack_rgb)
from v2v_resources.errors import BadInputError
from v2v_resources.palette import Palette

PALETTE = Palette.from_name("default15")


def skimage_reference(img: np.ndarray, palette: Palette, penalty: float = CHROMA_PENALTY) -> np.ndarray:
    lab, pal = rgb2lab(img), rgb2lab(palette.rgb)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return np.argmin(np.stack([
        deltaE_ciede2000(lab, pal[k][None, None])
        + penalty * np.clip(1 - chroma / NEUTRAL_CHROMA, 0, 1)
        * np.maximum(np.hypot(pal[k, 1], pal[k, 2]) - chroma - CHROMA_SLACK, 0)
        for k in range(len(palette))]), axis=0)


def test_matches_brute_force_on_random_pixels_and_palette_colours(tmp_path):
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (320, 320, 3), dtype=np.uint8)          # 102,400 pixels
    img[0, :len(PALETTE)] = PALETTE.rgb
    mapper = PaletteMapper(PALETTE, tmp_path)
    got = mapper.indices(img)
    assert got.shape == img.shape[:2] and got.dtype == np.uint8
    assert np.array_equal(got, skimage_reference(img, PALETTE))
    assert np.array_equal(got, brute_force_indices(img, PALETTE))
    assert np.array_equal(got[0, :len(PALETTE)], np.arange(len(PALETTE)))     # each colour maps to itself


def test_custom_palette_and_gray_ramp():
    palette = Palette.from_hex("#101010, #F0F0F0, #C03020, #2050C0", name="four")
    ramp = np.stack([np.arange(256, dtype=np.uint8)] * 3, axis=-1)[None].repeat(3, axis=0)
    ramp[1, :, 0] = 255 - ramp[1, :, 0]
    got = PaletteMapper(palette).indices(ramp)
    assert np.array_equal(got, skimage_reference(ramp, palette))
    assert got[0, 0] == 0 and got[0, 255] == 1


def test_lookup_table_is_cached_on_disk_and_reused(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    first = PaletteMapper(PALETTE, tmp_path)
    expected = first.indices(img)
    assert first.computed_colors == len(np.unique(pack_rgb(img)))
    path = tmp_path / "lut" / f"{PALETTE.digest}-{METRIC}.npy"
    assert path.is_file() and path.stat().st_size >= 1 << 24
    second = PaletteMapper(PALETTE, tmp_path)
    assert np.array_equal(second.indices(img), expected)
    assert second.computed_colors == 0                     # every colour came from the file
    stored = np.load(path)
    assert (stored != UNKNOWN).sum() == first.computed_colors
    # Another palette never shares the table.
    other = PaletteMapper(Palette.from_name("automotive15"), tmp_path)
    other.indices(img)
    assert other.computed_colors > 0


def test_pack_roundtrip_and_bad_input():
    rgb = np.random.default_rng(2).integers(0, 256, (500, 3), dtype=np.uint8)
    assert np.array_equal(unpack_rgb(pack_rgb(rgb)), rgb)
    with pytest.raises(BadInputError, match="H×W×3 uint8"):
        PaletteMapper(PALETTE).indices(np.zeros((4, 4, 4), np.uint8))


def test_dark_grey_paint_stays_neutral_and_strong_colours_keep_their_hue():
    # dark slate greys of a real grey hatchback's paint: plain ΔE2000 maps them to purple #800080
    greys = np.array([[[60, 76, 82], [68, 73, 77], [61, 65, 66], [49, 67, 71], [83, 92, 95]]], np.uint8)
    plain = skimage_reference(greys, PALETTE, penalty=0.0)
    assert (np.array(PALETTE.colors)[plain[0]] == "#800080").any()
    got = np.array(PALETTE.colors)[PaletteMapper(PALETTE).indices(greys)[0]]
    assert set(got) <= {"#000000", "#808080"}
    # coloured paint (chroma above NEUTRAL_CHROMA) maps exactly as by plain ΔE2000
    strong = np.array([[[200, 20, 25], [20, 40, 200], [240, 200, 30], [20, 140, 60], [178, 34, 34]]], np.uint8)
    assert np.array_equal(PaletteMapper(PALETTE).indices(strong), skimage_reference(strong, PALETTE, penalty=0.0))
