"""`v2v demo`: sample photos → inbox → the inbox sensor → one batch run of the whole chain through Dagster.

The terminal gets one line per image as it finishes, a progress bar and a summary. Everything the run prints
(Dagster's event log, engine logs, warnings, its step processes included) goes to a file under
`$V2V_HOME/logs/`, whose path is printed; `--verbose` shows it all on the terminal instead.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from v2v_resources.storage import Home

from .summary import image_line, image_status

POLL_S = 0.5


@contextmanager
def run_output_to(log_path: Path, verbose: bool) -> Iterator[IO[str]]:
    """Yield the terminal; unless verbose, file descriptors 1 and 2 (inherited by every step process) point
    at `log_path` meanwhile."""
    if verbose:
        yield sys.stdout
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    os.dup2(log_fd, 1), os.dup2(log_fd, 2)
    try:
        yield terminal
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
        terminal.close()


def follow(home: Home, keys: list[str], phases: tuple[str, ...], done: threading.Event, out: IO[str]) -> None:
    """Print each image's line once it is finished or failed, under a progress bar over image × phase."""
    from tqdm import tqdm

    reported: set[str] = set()
    with tqdm(total=len(keys) * len(phases), unit="step", file=out, leave=False, dynamic_ncols=True,
              bar_format="{l_bar}{bar}| {n}/{total} image-phases [{elapsed}]") as bar:
        while True:
            finished = done.is_set()
            progress = 0
            for key in keys:
                st = image_status(home, key)
                progress += len(phases) if (st["failed"] or "vector_svg" in st) else len(st["done"])
                if key not in reported and (st["failed"] or phases[-1] in st):
                    reported.add(key)
                    bar.write(image_line(st), file=out)
            bar.update(progress - bar.n)
            if finished:
                break
            time.sleep(POLL_S)
    for key in keys:
        if key not in reported:
            print(image_line(image_status(home, key)), file=out)


def run_demo(home: Home, n: int, seed: int, verbose: bool) -> int:
    import dagster as dg

    from v2v_resources.phases import REGISTRY
    from v2v_resources.samples import generate_samples

    from .definitions import build_resources, defs, process_images_job
    from .partitions import images_partitions
    from .sensors import tick_inbox

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for p in generate_samples(Path(tmp), n, seed=seed):
            if p.suffix == ".jpg":
                os.replace(p, home.inbox / p.name)
    old = time.time() - 60  # the files are complete: let the sensor take them on its first look
    for p in home.inbox.iterdir():
        os.utime(p, (old, old))
    log_path = home.root / "logs" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}.log"
    ok, total = 0, 0
    with dg.DagsterInstance.get() as instance, run_output_to(log_path, verbose) as out:
        result = tick_inbox(instance, defs, build_resources(str(home.root)))
        keys = [k for req in result.dynamic_partitions_requests or [] for k in req.partition_keys]
        if not result.run_requests:
            print("demo: these samples were processed before; their results:", file=out)
            keys = list(instance.get_dynamic_partitions(images_partitions.name))[-n:]
        for rr in result.run_requests:
            batch = keys[keys.index(rr.tags["dagster/asset_partition_range_start"]):
                         keys.index(rr.tags["dagster/asset_partition_range_end"]) + 1]
            print(f"demo: one batch run over {len(batch)} images through Dagster", file=out)
            done = threading.Event()
            watcher = threading.Thread(target=follow, args=(home, batch, REGISTRY.names, done, out), daemon=True)
            watcher.start()
            try:
                run = dg.execute_job(dg.reconstructable(process_images_job), instance=instance,
                                     tags={**rr.tags, "dagster/sensor_name": "inbox_sensor"}, raise_on_error=False)
            finally:
                done.set()
                watcher.join()
            print(f"demo: run {run.run_id[:8]} {'succeeded' if run.success else 'FAILED'}", file=out)
        if not result.run_requests:
            for key in keys:
                print(image_line(image_status(home, key)), file=out)
        total = len(keys)
        ok = sum("vector_svg" in image_status(home, k) for k in keys)
        print(f"demo: {ok}/{total} SVGs in {time.perf_counter() - t0:.0f} s under {home.storage / 'vector_svg'}",
              file=out)
        if not verbose:
            print(f"demo: run log {log_path}", file=out)
        print(f"demo: browse it with `make ui` (DAGSTER_HOME={home.dagster_home})", file=out)
    return 0 if ok == total else 1
