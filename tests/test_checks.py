"""Every check can fail, with the same semantics whichever backend ran: a failed blocking check keeps the key
from being done (no meta.json) and says why and what to change."""
import numpy as np
import pytest
from PIL import Image

from bench.chroma_vector import flat_illustration
from v2v_resources import imaging
from v2v_resources.errors import BadInputError, QualityError
from v2v_resources.phases import Engines, photo, vector_svg
from v2v_resources.phases.base import is_done
from v2v_resources.settings import load_settings


def _stage(home, key: str, data: bytes, suffix: str = ".png"):
    path = home.path("photo", key, "source" + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _png(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_decodable_fails_on_a_corrupt_file_and_keeps_the_reason(home):
    settings = load_settings()
    _stage(home, "broken", _png(np.zeros((64, 64, 3), np.uint8))[:60])
    out = photo.run(home, "broken", settings)
    checks = {c.name: c for c in out.checks}
    assert not checks["decodable"].passed and "truncated or corrupt" in checks["decodable"].description
    assert not is_done(home, "photo", "broken")
    with pytest.raises(BadInputError, match="re-copy or re-export"):
        out.raise_if_blocked()


def test_has_content_fails_on_a_flat_frame(home):
    settings = load_settings()
    _stage(home, "flat", _png(np.full((128, 160, 3), 90, np.uint8)))
    out = photo.run(home, "flat", settings)
    checks = {c.name: c for c in out.checks}
    assert checks["decodable"].passed and not checks["has_content"].passed
    with pytest.raises(QualityError, match="has_content"):
        out.raise_if_blocked()
    rng = np.random.default_rng(0)
    _stage(home, "textured", _png(rng.integers(0, 255, (128, 160, 3), dtype=np.uint8)))
    assert not photo.run(home, "textured", settings).failed_checks and is_done(home, "photo", "textured")


def test_svg_valid_fails_when_validation_finds_a_problem(home, monkeypatch):
    """The vectorizer reports validation problems instead of raising, so the check is what fails; an invalid
    SVG never reaches its final name."""
    from v2v_resources.vector import engine as vector_engine

    settings = load_settings(overrides={"phase3": {"output_long_side": 512, "preview_long_side": 128},
                                        "phase4": {"trace_long_side": 512, "preview_long_side": 128}})
    engines = Engines(settings, home.cache)
    ill, mask = flat_illustration(256, engines.palette, seed=1)
    raster = engines.get("palette_raster").run(ill, mask).raster
    imaging.save_png(home.path("palette_raster", "k", "raster.png"), raster)
    real = vector_engine.trace
    monkeypatch.setattr(vector_engine, "trace",
                        lambda *a: real(*a).replace("</svg>", "<script>alert(1)</script></svg>"))
    out = vector_svg.run(home, "k", settings, engines.get("vector_svg"))
    checks = {c.name: c for c in out.checks}
    assert not checks["svg_valid"].passed and "script" in checks["svg_valid"].description
    assert "svg" not in out.files and not home.path("vector_svg", "k", "k.svg").exists()
    assert not is_done(home, "vector_svg", "k")
    monkeypatch.setattr(vector_engine, "trace", real)
    good = vector_svg.run(home, "k", settings, engines.get("vector_svg"))
    assert {c.name: c.passed for c in good.checks}["svg_valid"] and home.path("vector_svg", "k", "k.svg").exists()
