"""The Palette value object."""
import numpy as np
import pytest

from v2v_resources.errors import ConfigError
from v2v_resources.palette import Palette


def test_from_hex_normalises_and_validates():
    p = Palette.from_hex("ff0000, #00ff00 0000FF")
    assert p.colors == ("#FF0000", "#00FF00", "#0000FF")
    assert p.rgb.tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]] and p.rgb.dtype == np.uint8
    assert p.contains("00ff00") and p.index_of("#0000ff") == 2 and len(p) == 3
    with pytest.raises(ConfigError, match="repeats"):
        Palette.from_hex(["#FF0000", "ff0000"])
    with pytest.raises(ConfigError, match="entry 2"):
        Palette.from_hex(["#FF0000", "red"])
    with pytest.raises(ConfigError, match="2–64"):
        Palette.from_hex(["#FF0000"])


def test_named_palettes_load_and_digest_depends_on_order():
    for name in ("default15", "automotive15"):
        p = Palette.parse(name)
        assert len(p) == 15 and p.name == name
    a = Palette.from_hex("#000000,#FFFFFF")
    assert a.digest == Palette.from_hex("000000 ffffff").digest
    assert a.digest != Palette.from_hex("#FFFFFF,#000000").digest
    with pytest.raises(ConfigError, match="unknown palette"):
        Palette.parse("../etc/passwd")
