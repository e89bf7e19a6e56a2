"""Safe decoding of awkward inputs, partition keys and atomic writes."""
import numpy as np
import pytest

from v2v_resources.errors import BadInputError
from v2v_resources.imaging import decode_photo, iou, partition_key, safe_stem
from v2v_resources.storage import TMP_PREFIX, atomic_path, remove_orphan_temps

from bad_inputs import corpus


@pytest.mark.parametrize("name, data, expected", corpus(), ids=[c[0] for c in corpus()])
def test_decode_corpus(name, data, expected):
    if expected == "ok":
        photo = decode_photo(data, name=name)
        assert photo.rgb.dtype == np.uint8 and photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3
    else:
        with pytest.raises(BadInputError) as e:
            decode_photo(data, name=name)
        msg = str(e.value)
        assert expected in msg and name in msg and "[intake]" in msg and "fix:" in msg


def test_awkward_modes_are_converted_faithfully():
    cases = {n: d for n, d, _ in corpus()}
    rot = decode_photo(cases["exif-rotated.jpg"])
    assert rot.rgb.shape[:2] == (256, 192) and rot.info["exif_transposed"]
    cut = decode_photo(cases["rgba-cutout.png"])
    assert cut.alpha is not None and 0.2 < (cut.alpha > 127).mean() < 0.5
    assert decode_photo(cases["rgba-empty-alpha.png"]).alpha is None
    sixteen = decode_photo(cases["sixteen-bit.png"])
    assert sixteen.rgb.max() > 200  # scaled from 16 bits, not clipped to white or black
    gif = decode_photo(cases["animated.gif"])
    assert gif.info["frames"] == 2  # the first frame is used, and the count is recorded
    cmyk = decode_photo(cases["cmyk.jpg"])
    red = cmyk.rgb[96, 128]
    assert red[0] > 150 and red[1] < 90  # the red block stays red through CMYK


def test_partition_keys_are_safe_and_stable():
    assert safe_stem("My Car (1) ünïcode; rm -rf $HOME.jpg") == "my-car-1-unicode-rm-rf-home"
    k = partition_key("../../etc/passwd.jpg", "ab" * 32)
    assert "/" not in k and k.endswith("-" + "ab" * 5) and k == partition_key("../../etc/passwd.jpg", "ab" * 32)
    assert partition_key("$$$ ###.jpg", "0" * 64) == "image-0000000000"


def test_atomic_writes_leave_no_partial_file(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert not target.exists() and not list(tmp_path.iterdir())
    (tmp_path / f"{TMP_PREFIX}orphan.png").write_bytes(b"x")
    assert remove_orphan_temps(tmp_path) == 1


def test_iou():
    a = np.zeros((10, 10), bool)
    a[:5] = True
    b = np.zeros((10, 10), bool)
    b[:, :5] = True
    assert iou(a, a) == 1.0 and abs(iou(a, b) - 25 / 75) < 1e-9
    with pytest.raises(ValueError):
        iou(a, b[:5])
