"""Read the tensors of a TorchScript archive without running it, and rewrite them as safetensors.

A TorchScript archive (`torch.jit.save`, e.g. big-lama.pt) is a zip: `<name>/data.pkl` pickles the module tree,
`<name>/data/<key>` holds the raw storages and `<name>/code/` the TorchScript program. `torch.jit.load` compiles
and can run that program; here only data.pkl is unpickled, by an unpickler that builds every `__torch__` class as
an inert attribute holder and allows no other global than the tensor rebuild function, so no code from the file
is ever imported or executed. The module tree's tensor attributes are its state_dict.
"""
from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch

from ..errors import ModelMissingError
from ..storage import atomic_path

PHASE = "models"


class _ScriptObject:
    """Stands in for every scripted class: keeps the attributes the archive gives it, has no behaviour."""

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.__dict__.update(state)


_ALLOWED = {("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
            ("collections", "OrderedDict"): OrderedDict}


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        if module == "torch" and name.endswith("Storage") and isinstance(getattr(torch, name, None), type):
            return getattr(torch, name)                      # the legacy storage classes only name a dtype
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a weights archive")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        raw = self.archive.read(f"{self.prefix}/data/{key}")
        untyped = torch.UntypedStorage.from_buffer(raw, dtype=torch.uint8) if raw else torch.UntypedStorage(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)     # TypedStorage is what _rebuild_tensor_v2 takes
            return torch.storage.TypedStorage(wrap_storage=untyped, dtype=storage_type.dtype, _internal=True)


def _flatten(obj: _ScriptObject, prefix: str, out: dict[str, torch.Tensor]) -> None:
    for key, value in vars(obj).items():
        if isinstance(value, torch.Tensor):
            out[prefix + key] = value
        elif isinstance(value, _ScriptObject):
            _flatten(value, f"{prefix}{key}.", out)


def torchscript_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The parameters and buffers of the TorchScript archive at `path`, by their state_dict names."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkls = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
            if len(pkls) != 1:
                raise ValueError("no <name>/data.pkl at the archive's top level")
            prefix = pkls[0].split("/")[0]
            root = _ArchiveUnpickler(archive.read(pkls[0]), archive, prefix).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, ValueError, KeyError, EOFError) as e:
        raise ModelMissingError(f"not a TorchScript weights archive: {e}", file=str(path), phase=PHASE,
                                fix="pull it again; if it persists the source changed, check configs/models.yaml")
    if not isinstance(root, _ScriptObject):
        raise ModelMissingError("the archive holds no scripted module", file=str(path), phase=PHASE,
                                fix="point the manifest at a torch.jit.save archive")
    out: dict[str, torch.Tensor] = {}
    _flatten(root, "", out)
    return out


def torchscript_to_safetensors(src: str | Path, dst: str | Path) -> Path:
    """Write the archive's tensors to `dst` (atomically, keys sorted, so the same archive gives the same bytes)."""
    from safetensors.torch import save_file

    sd = torchscript_state_dict(src)
    with atomic_path(Path(dst)) as tmp:
        save_file({k: sd[k].contiguous() for k in sorted(sd)}, str(tmp))
    return Path(dst)
