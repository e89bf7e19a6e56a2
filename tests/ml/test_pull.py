"""`v2v models pull` end to end against a local Hugging Face endpoint (tests/hf_endpoint.py) serving tiny models in
the published layouts, and `pull --from DIR|ARCHIVE`: every failure mode is one line, keeps nothing half-written
under a model's path, and a retry completes."""
from __future__ import annotations

import errno
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import endpoint_manifest
from hf_endpoint import COMMIT
from v2v_resources.errors import ModelMissingError, TransientError, V2VError
from v2v_resources.models import hub
from v2v_resources.models.checksum import sha256_file
from v2v_resources.models.manifest import LOCK_NAME, Lock
from v2v_resources.models.pull import pull
from v2v_resources.models.verify import ModelStore, State

DEPTH_REPO = "depth-anything/Depth-Anything-V2-Small-hf"
DEPTH_WEIGHTS = f"/{DEPTH_REPO}/resolve/{COMMIT}/model.safetensors"     # snapshots resolve the commit first
SAM_URL = "/files/sam_vit_h_4b8939.pth"


def _cli(argv) -> int:
    from v2v_assets.cli import main

    return main(argv)


def _leftovers(vol: Path) -> list[str]:
    return sorted(p.name for p in vol.rglob(".v2v-*") if p.name != ".sha256-cache.json")


@pytest.fixture
def volume(tmp_path, tiny_manifest, hub_server):
    """An empty volume and the endpoint manifest; the server's faults are cleared afterwards."""
    vol = tmp_path / "vol"
    vol.mkdir()
    yield vol, endpoint_manifest(tiny_manifest, hub_server.url, tmp_path / "models.yaml")
    hub_server.heal()


def _pull(vol, manifest, server, names, **kw):
    lines: list[str] = []
    pull(ModelStore(vol, manifest), names, endpoint=server.url, progress=False, echo=lines.append, **kw)
    return lines


def _one_line(e: pytest.ExceptionInfo) -> str:
    line = e.value.one_line()
    assert "\n" not in line
    return line


def test_every_model_is_pulled_in_its_published_layout(pulled, tiny_root, tiny_manifest, tiny_hub):
    """The shipped manifest's repos and allow patterns against the published layouts, offline variables set."""
    from huggingface_hub import constants

    vol, manifest, log = pulled
    assert constants.HF_HUB_OFFLINE          # the suite's offline setting is back after the pull
    tiny = yaml.safe_load(tiny_manifest.read_text())["models"]
    store = ModelStore(vol, manifest)
    assert {st.name: st.state for st in store.verify_all()} == {
        n: State.MISSING if n == "style-lora" else State.PRESENT for n in tiny}
    for name, entry in tiny.items():
        if name == "style-lora":
            continue
        # byte for byte what the writer installs, LaMa included: the pull-time conversion is deterministic
        assert store.status(name).files == (entry.get("files") or {".": entry["sha256"]}), name
    assert (vol / "stable-diffusion-xl-base-1.0/unet/diffusion_pytorch_model.fp16.safetensors").is_file()
    assert not list(vol.rglob("README.md")) and not list(vol.rglob("*.pt")) and _leftovers(vol) == []
    lama = Lock(vol).info("lama")
    assert lama["source_sha256"] == sha256_file(tiny_hub / "files/big-lama.pt")
    assert lama["converted_from"] == "torchscript"
    assert sum("downloaded" in line for line in log) == 8


def test_verify_and_second_pull_on_the_pulled_volume(pulled, capsys):
    vol, manifest, _ = pulled
    args = ["--models", str(vol), "--manifest", str(manifest)]
    assert _cli(["models", "verify", *args]) == 0          # the style LoRA is the user's: optional, missing
    out = capsys.readouterr().out
    assert "all required models verified" in out and out.count("present ") == 8
    assert _cli(["models", "pull", "--quiet", "sam", "sdxl", *args]) == 0
    assert capsys.readouterr().out.count("already present") == 2


def test_interrupted_download_resumes(volume, hub_server):
    vol, manifest = volume
    size = (hub_server.folder / "files/sam_vit_h_4b8939.pth").stat().st_size
    hub_server.cut_after(SAM_URL, size // 2)
    with pytest.raises(TransientError) as e:
        _pull(vol, manifest, hub_server, ["sam"])
    assert "interrupted" in _one_line(e) and "resumes" in _one_line(e)
    assert not (vol / "sam/sam_vit_h_4b8939.pth").exists()
    assert (vol / "sam/.v2v-partial-sam_vit_h_4b8939.pth").stat().st_size == size // 2
    _pull(vol, manifest, hub_server, ["sam"])
    assert hub_server.requests_for(SAM_URL)[-1][2] == f"bytes={size // 2}-"
    assert ModelStore(vol, manifest).status("sam").ok and _leftovers(vol) == []


def test_interrupted_hub_snapshot_resumes(volume, hub_server):
    """huggingface_hub retries a dropped connection within the call; when the transfer still fails, the files
    already complete stay in the staging folder and the next pull fetches only the rest (this huggingface_hub
    deletes a half file when it gives up, so that one file starts again)."""
    vol, manifest = volume
    size = (hub_server.folder / DEPTH_REPO / "model.safetensors").stat().st_size
    hub_server.cut_after(DEPTH_WEIGHTS, size // 3)       # the connection drops mid-file …
    hub_server.fail(DEPTH_WEIGHTS)                       # … and the resumed request finds the server busy
    with pytest.raises(TransientError) as e:
        _pull(vol, manifest, hub_server, ["depth"])
    line = _one_line(e)
    assert DEPTH_REPO in line and hub_server.url in line and "resumes" in line
    assert not (vol / "depth-anything-v2-small").exists()
    assert (vol / ".v2v-partial-depth-anything-v2-small/config.json").is_file()
    before = len(hub_server.log)
    _pull(vol, manifest, hub_server, ["depth"])
    again = [(m, p) for m, p, _ in hub_server.log[before:] if m == "GET" and "/resolve/" in p]
    assert again == [("GET", DEPTH_WEIGHTS)]            # config files kept from the first attempt
    assert ModelStore(vol, manifest).status("depth").ok and _leftovers(vol) == []


def test_wrong_digest_keeps_nothing(volume, hub_server):
    vol, manifest = volume
    hub_server.corrupt(SAM_URL)                      # the manifest pins SAM's digest
    with pytest.raises(ModelMissingError) as e:
        _pull(vol, manifest, hub_server, ["sam"])
    assert "expects" in _one_line(e) and "nothing was kept" in _one_line(e)
    hub_server.corrupt(DEPTH_WEIGHTS)                # the Hub's tree lists each LFS file's sha256
    with pytest.raises(ModelMissingError) as e:
        _pull(vol, manifest, hub_server, ["depth"])
    assert "model.safetensors" in _one_line(e) and DEPTH_REPO in _one_line(e)
    assert list(vol.rglob("*.pth")) == [] and not (vol / "depth-anything-v2-small").exists()
    assert _leftovers(vol) == []
    hub_server.heal()
    _pull(vol, manifest, hub_server, ["sam", "depth"])
    assert all(st.ok for st in ModelStore(vol, manifest).verify_all(["sam", "depth"]))


def test_full_disk_keeps_nothing(volume, hub_server, monkeypatch):
    import huggingface_hub.file_download as fd

    vol, manifest = volume

    def full(resp, out, bar):
        out.write(resp.read(1000))
        raise OSError(errno.ENOSPC, "No space left on device")

    def hub_full(url, temp_file, **kw):
        temp_file.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hub, "_stream", full)
    monkeypatch.setattr(fd, "http_get", hub_full)
    for name in ("esrgan", "depth"):
        with pytest.raises(TransientError) as e:
            _pull(vol, manifest, hub_server, [name])
        assert "disk full" in _one_line(e) and "free space" in _one_line(e)
    assert [p for p in vol.rglob("*") if p.is_file() and p.name != ".sha256-cache.json"] == []
    monkeypatch.undo()
    _pull(vol, manifest, hub_server, ["esrgan", "depth"])
    assert all(st.ok for st in ModelStore(vol, manifest).verify_all(["esrgan", "depth"]))


def test_partial_folder_is_installed_again(volume, hub_server):
    vol, manifest = volume
    _pull(vol, manifest, hub_server, ["depth"])
    (vol / "depth-anything-v2-small/model.safetensors").unlink()     # a copy that stopped half-way
    store = ModelStore(vol, manifest)
    assert store.status("depth", refresh=True).state is State.MISSING
    with pytest.raises(ModelMissingError, match="model.safetensors is missing.*v2v models pull depth"):
        store.require("depth")
    lines = _pull(vol, manifest, hub_server, ["depth"])
    assert any("missing at" in line and "installing it again" in line for line in lines)
    assert ModelStore(vol, manifest).status("depth").ok and _leftovers(vol) == []


def test_hub_errors_are_one_line(volume, hub_server, capsys):
    vol, manifest = volume
    data = yaml.safe_load(manifest.read_text())
    data["models"]["depth"]["source"]["repo"] = "nobody/no-such-model"
    manifest.write_text(yaml.safe_dump(data))
    args = ["models", "pull", "--quiet", "depth", "--endpoint", hub_server.url, "--models", str(vol),
            "--manifest", str(manifest)]
    assert _cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("v2v: error:") and "nobody/no-such-model" in err
    assert hub_server.url in err and "HF_ENDPOINT" in err and not (vol / "depth-anything-v2-small").exists()


# -- pull --from DIR|ARCHIVE ---------------------------------------------------------------------------------

def _pack(src: Path, out: Path) -> Path:
    if out.suffix == ".zip":
        with zipfile.ZipFile(out, "w") as z:
            for p in sorted(src.rglob("*")):
                z.write(p, p.relative_to(src).as_posix())
    else:
        with tarfile.open(out, "w") as t:
            t.add(src, arcname=".")
    return out


@pytest.mark.parametrize("kind", ["dir", "tar", "zip"])
def test_pull_from_a_copied_volume(pulled, tmp_path, kind):
    src, manifest, _ = pulled
    names = ["sam", "lama", "depth", "controlnet-canny"]
    if kind != "dir":
        part = tmp_path / "part"
        for n in names:
            p = ModelStore(src, manifest).path(n)
            dst = part / p.relative_to(src)
            shutil.copytree(p, dst) if p.is_dir() else (dst.parent.mkdir(parents=True, exist_ok=True),
                                                        shutil.copy(p, dst))
        shutil.copy(src / LOCK_NAME, part / LOCK_NAME)
        source = _pack(part, tmp_path / f"models.{kind}")
    else:
        source = src
    vol = tmp_path / "offline"
    lines: list[str] = []
    pull(ModelStore(vol, manifest), names, source=source, progress=False, echo=lines.append)
    store = ModelStore(vol, manifest)
    assert all(st.ok for st in store.verify_all(names)) and _leftovers(vol) == []
    assert store.status("lama").files == ModelStore(src, manifest).status("lama").files
    assert Lock(vol).info("lama")["source_sha256"] == Lock(src).info("lama")["source_sha256"]
    assert sum("copied" in line for line in lines) == len(names)


def test_pull_from_refuses_a_damaged_copy(pulled, tmp_path, capsys):
    src, manifest, _ = pulled
    copy = tmp_path / "copy"
    shutil.copytree(src / "depth-anything-v2-small", copy / "depth-anything-v2-small")
    shutil.copy(src / LOCK_NAME, copy / LOCK_NAME)
    f = copy / "depth-anything-v2-small/model.safetensors"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    vol = tmp_path / "offline"
    args = ["models", "pull", "depth", "--from", str(copy), "--models", str(vol), "--manifest", str(manifest)]
    assert _cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "model.safetensors" in err and "nothing was kept" in err
    assert not (vol / "depth-anything-v2-small").exists() and _leftovers(vol) == []
    with pytest.raises(V2VError, match="not in the source"):
        pull(ModelStore(vol, manifest), ["sam"], source=copy, progress=False, echo=lambda *_: None)
    with pytest.raises(V2VError, match="not a readable"):
        (tmp_path / "junk.tar").write_bytes(b"junk")
        pull(ModelStore(vol, manifest), ["sam"], source=tmp_path / "junk.tar", progress=False, echo=lambda *_: None)

