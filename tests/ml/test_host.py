"""`v2v host` on CPU with tiny models: same outputs as in-process, SDXL batched across concurrent requests,
probes, auth and bad requests."""
from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest

from host_helpers import ML, arrays, free_port, photos, same_but_rounding, thread_host
from v2v_resources.errors import BadInputError, ConfigError
from v2v_resources.settings import deep_merge, load_settings

FILES = {"clean_plate": ["clean.png", "vehicle_mask.png", "erased_mask.png"],
         "illustration": ["illustration.png", "mask.png"], "palette_raster": ["raster.png", "preview.png"]}


@pytest.fixture(scope="module")
def run_settings():
    return load_settings(overrides=ML)


@pytest.fixture(scope="module")
def engines(run_settings, tiny_root, tiny_manifest):
    from v2v_resources.host.engines import ResidentEngines

    return ResidentEngines(run_settings, models_root=tiny_root, manifest=tiny_manifest)


def host_settings(**host):
    return load_settings(overrides=deep_merge(ML, {"host": {"warmup": False, **host}}))


def _client(url, **kw):
    from v2v_resources.host.client import HostClient

    return HostClient(url, retries=kw.pop("retries", 0), **kw)


def test_host_outputs_equal_the_in_process_path(engines, run_settings, tiny_root, tiny_manifest, tmp_path):
    from v2v_resources.phases import REGISTRY, Engines, PhaseOutcome
    from v2v_resources.storage import Home

    via_host, local = Home(tmp_path / "a").ensure(), Home(tmp_path / "b").ensure()
    keys = photos(via_host, 2)
    assert photos(local, 2) == keys
    s, dump = run_settings, run_settings.model_dump(mode="json")
    with thread_host(engines, host_settings(warmup=True)) as (url, service), _client(url) as client:
        assert set(service.timings) >= {"phase1_s", "sdxl_batch1_s", "sdxl_batch8_s", "warmup_s"}
        for phase in FILES:
            for key in keys:                       # one at a time: batches of 1
                out = PhaseOutcome.from_dict(client.run(phase, str(via_host.root), key, dump))
                assert out.key == key and out.asset == phase and out.backend == "ml" and out.thumbnail
    in_process = Engines(s, local.cache, models_root=tiny_root, manifest=tiny_manifest)   # what no host runs
    for phase in FILES:
        for key in keys:
            REGISTRY[phase].run(local, key, s, in_process.get(phase))
    for phase, names in FILES.items():
        for key in keys:
            for a, b in zip(arrays(via_host, phase, key, names), arrays(local, phase, key, names)):
                assert np.array_equal(a, b), (phase, key)
            assert via_host.read_json(phase, key)["metadata"].keys() == local.read_json(phase, key)["metadata"].keys()


def test_concurrent_requests_share_sdxl_calls_and_retries_rejoin_later_batches(engines, run_settings, tmp_path):
    from v2v_resources.storage import Home

    home = Home(tmp_path / "h").ensure()
    keys = photos(home, 4)
    dump = run_settings.model_dump(mode="json")
    unet_calls = []
    hook = engines.steerer.pipe.unet.register_forward_hook(lambda *_: unet_calls.append(1))
    # a long max wait: the batch is cut by max_batch, never by the clock
    with thread_host(engines, host_settings(max_batch=4, max_wait_ms=30000)) as (url, service), \
            _client(url) as client:
        for key in keys:
            client.run("clean_plate", str(home.root), key, dump)
        results, threads = {}, [threading.Thread(target=lambda k=k: results.__setitem__(
            k, client.run("illustration", str(home.root), k, dump))) for k in keys]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        metrics = httpx.get(f"{url}/metrics").text
        batches = list(engines.batcher.batch_sizes)
    hook.remove()
    # random weights fail the IoU check: 3 attempts each (seeds 42, 43, 44), each attempt index one batch of 4
    assert all(r["metadata"]["attempts"] == 3 for r in results.values()) and len(results) == 4
    assert [a["seed"] for a in results[keys[0]]["extra"]["attempts"]] == [42, 43, 44]
    assert batches == [4, 4, 4]
    steps = run_settings.phase2.sdxl.steps
    assert len(unet_calls) == 3 * steps          # one at a time it would be 4 images x 3 attempts x steps
    assert "v2v_host_sdxl_batch_size_count 3.0" in metrics and "v2v_host_iou_retries_total 8.0" in metrics
    assert 'v2v_host_requests_total{outcome="ok",phase="illustration"} 4.0' in metrics


def test_phase_one_of_two_requests_interleaves_and_sam_keeps_each_embedding(engines, run_settings, car,
                                                                          monkeypatch, tmp_path):
    """Each phase-I model has a lock of its own: while one request is inside LaMa, another runs GroundingDINO
    (a lock around the whole of phase I would make the second wait for the first to finish). SAM keeps the
    embedding of each image in flight, so interleaved requests encode each image once."""
    view = engines.view(run_settings, tmp_path)
    detector, segmenter, inpainter = (getattr(engines.sanitizer, p)._engine
                                      for p in ("detector", "segmenter", "inpainter"))
    in_lama, other_detected, release = threading.Event(), threading.Event(), threading.Event()
    inpaint, detect = inpainter.inpaint, detector.detect

    def held_inpaint(*a, **k):
        if not in_lama.is_set():        # the first request stays inside LaMa until the test lets it go
            in_lama.set()
            release.wait(30)
        return inpaint(*a, **k)

    def watched_detect(*a, **k):
        if in_lama.is_set():
            other_detected.set()
        return detect(*a, **k)

    monkeypatch.setattr(inpainter, "inpaint", held_inpaint)
    monkeypatch.setattr(detector, "detect", watched_detect)
    rgb = np.roll(car[0], 5, axis=1)          # images no other test of this module's engines embedded
    images = [rgb, np.ascontiguousarray(rgb[:, ::-1])]
    encodes = []
    hook = segmenter.vram.acquire("sam").image_encoder.register_forward_hook(lambda *_: encodes.append(1))
    try:
        results = [None, None]
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, view.sanitizer.sanitize(images[i])))
                   for i in range(2)]
        threads[0].start()
        assert in_lama.wait(60)
        threads[1].start()
        detected = other_detected.wait(30)
        release.set()
        for t in threads:
            t.join(120)
        assert detected, "the second request's GroundingDINO waited for the first one's LaMa"
        assert all(r is not None and r.clean.shape == rgb.shape for r in results)
        assert len(encodes) == 2                  # vehicle box and part boxes of each image on one embedding
        for img in images:                        # both embeddings are still there for a silhouette
            view.sanitizer.silhouette(img, results[0].vehicle_mask)
        assert len(encodes) == 2
    finally:
        hook.remove()


def test_a_batch_gives_each_image_what_a_call_of_its_own_gives(engines, car):
    st = engines.steerer
    rgb, mask = car
    ctrls = [st.controls(np.roll(rgb, 9 * i, axis=1), np.roll(mask, 9 * i, axis=1), (64, 48)) for i in range(3)]
    alone = [st.generate(c, (64, 48), 10 + i, (0.6, 0.4)) for i, c in enumerate(ctrls)]
    together = st.generate_batch([st.job(c, 10 + i) for i, c in enumerate(ctrls)], (64, 48), (0.6, 0.4))
    assert np.abs(alone[0].astype(int) - alone[1].astype(int)).mean() > 5
    assert all(same_but_rounding(a, b) for a, b in zip(alone, together))


def test_probes_auth_and_bad_requests_leave_the_host_up(engines, run_settings, tmp_path):
    from v2v_resources.storage import Home

    home = Home(tmp_path / "h").ensure()
    key = photos(home, 1)[0]
    dump = run_settings.model_dump(mode="json")
    with thread_host(engines, host_settings(), token="s3cret") as (url, _):
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        ready = httpx.get(f"{url}/ready")
        assert ready.status_code == 200 and ready.json()["ready"] and ready.json()["backends"]["phase2"] == "ml"
        body = {"phase": "clean_plate", "key": key, "home": str(home.root), "settings": dump}
        assert httpx.post(f"{url}/v1/run", json=body).status_code == 401
        assert httpx.post(f"{url}/v1/run", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
        with _client(url, token="") as anon, pytest.raises(ConfigError, match="V2V_HOST_TOKEN"):
            anon.run("clean_plate", str(home.root), key, dump)
        with _client(url, token="s3cret") as client:
            with pytest.raises(BadInputError, match="upstream file missing") as e:
                client.run("illustration", str(home.root), key, dump)       # phase I not run yet
            assert "clean.png" in str(e.value) and e.value.phase == "illustration"
            with pytest.raises(BadInputError, match="upstream file missing"):
                client.run("clean_plate", str(home.root), "no-such-key", dump)
            r = httpx.post(f"{url}/v1/run", json=body | {"phase": "vector"}, headers={"Authorization": "Bearer s3cret"})
            assert r.status_code == 400 and "clean_plate" in r.json()["fix"]
            with pytest.raises(ConfigError, match="phase2.sdxl.steps"):
                client.run("clean_plate", str(home.root), key, deep_merge(dump, {"phase2": {"sdxl": {"steps": 0}}}))
            with pytest.raises(ConfigError, match="phase2.sdxl.scheduler host 'unipc' vs run 'euler'"):
                client.run("clean_plate", str(home.root), key,
                           deep_merge(dump, {"phase2": {"sdxl": {"scheduler": "euler"}}}))
            with pytest.raises(BadInputError, match="unsafe partition key"):
                client.run("clean_plate", str(home.root), "../etc", dump)
            out = client.run("clean_plate", str(home.root), key, dump)      # still up, still serving
            assert out["asset"] == "clean_plate" and home.path("clean_plate", key, "meta.json").is_file()
        metrics = httpx.get(f"{url}/metrics").text
        for name in ("v2v_host_queue_depth", "v2v_host_sdxl_batch_size", "v2v_host_phase_seconds",
                     "v2v_host_vram_bytes", "v2v_host_iou_retries_total", "v2v_host_ready 1.0"):
            assert name in metrics
        assert 'v2v_host_requests_total{outcome="404",phase="clean_plate"} 1.0' in metrics


def test_doctor_reports_each_configured_host(engines):
    """`v2v doctor` lists every host of host.urls: a ready one passes, one nobody serves fails, naming it."""
    from v2v_resources.models.doctor import check_hosts

    settings = host_settings()
    assert [c.level for c in check_hosts(settings.host)] == ["ok"]        # none configured: in-process
    with thread_host(engines, settings) as (url, _):
        dead = f"http://127.0.0.1:{free_port()}"
        checks = check_hosts(settings.host.model_copy(update={"urls": [url, dead], "retries": 0}))
    assert [(c.topic, c.level) for c in checks] == [(f"model host {url}", "ok"), (f"model host {dead}", "fail")]
    assert "unreachable" in checks[1].detail
