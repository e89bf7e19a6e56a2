import os
import tempfile
import warnings
from pathlib import Path

import pytest

# The suite must not depend on the machine it runs on: no weights, config files, hub caches or Dagster home of
# its own leak in (a machine with weights under /models would otherwise switch `auto` to ml). Set before any
# v2v module is imported; subprocesses inherit it.
_ISOLATED = Path(tempfile.mkdtemp(prefix="v2v-tests-"))
for var in ("V2V_CONFIG", "V2V_CONFIG_DIR", "V2V_MODELS_MANIFEST", "DAGSTER_HOME", "HF_ENDPOINT", "HF_TOKEN"):
    os.environ.pop(var, None)
os.environ.update({"V2V_MODELS": str(_ISOLATED / "models-none"), "V2V_HOME": str(_ISOLATED / "home"),
                   "HF_HOME": str(_ISOLATED / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
warnings.filterwarnings("ignore", category=DeprecationWarning)


@pytest.fixture(autouse=True)
def _dagster_context_settled():
    """Dagster keeps the entered instance's state storage in a context variable, and a context manager left
    open (an instance entered inside one) puts an older, disposed instance's storage back whenever the garbage
    collector closes it, possibly during a later test ("Attempted to resolve undefined DagsterInstance
    weakref", seen once in CI). So each test ends with a collection and the next starts with none set."""
    yield
    import gc

    from dagster._core.storage.defs_state import base    # no public way to clear it

    gc.collect()
    base._current_storage.set(None)


@pytest.fixture
def home(tmp_path, monkeypatch):
    from v2v_resources.storage import Home

    h = Home(tmp_path / "v2v").ensure()
    monkeypatch.setenv("V2V_HOME", str(h.root))
    return h


@pytest.fixture
def instance(tmp_path):
    import dagster as dg

    d = tmp_path / "dagster_home"
    d.mkdir()
    with dg.instance_for_test(temp_dir=str(d)) as inst:
        yield inst


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """Four synthetic photos (with ground truth), drawn once per session."""
    from v2v_resources.samples import generate_samples

    d = tmp_path_factory.mktemp("samples")
    generate_samples(d, 4, seed=0)
    return d
