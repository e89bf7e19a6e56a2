"""Exact CIEDE2000 mapping: equal to scikit-image brute force, and its lookup table cached on disk."""
import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from v2v_resources.chroma.mapping import UNKNOWN, PaletteMapper, brute_force_indices, pack_rgb, unpack_rgb
from v2v_resources.errors import BadInputError
from v2v_resources.palette import Palette

PALETTE = Palette.from_name("default15")


def skimage_reference(img: np.ndarray, palette: Palette) -> np.ndarray:
    lab, pal = rgb2lab(img), rgb2lab(palette.rgb)
    return np.argmin(np.stack([deltaE_ciede2000(lab, pal[k][None, None]) for k in range(len(palette))]), axis=0)


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
    path = tmp_path / "lut" / f"{PALETTE.digest}.npy"
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
