"""Eight tiny trainings on 1, 2 and 3 simulated Ray nodes of 1 CPU each (issue 29).

    python bench/ray_nodes.py [--nodes 1 2 3] [--max-size PX] [--out FILE.json]

For each node count: a fresh :class:`LocalCluster` of tests/cluster_local.py on this machine (a head
without CPUs, so it runs no training, and N worker nodes with 1 CPU each, each its own ``ray
start`` process group), a daemon with ``--ray ADDRESS --ray-cpus 1`` on a fresh store, and the
eight images of ../shared/images submitted at once (preset tiny, ``--max-size`` to shrink them
further). Reported per run:

* wall seconds from the first submit to the last result, and trainings per hour;
* CPU seconds of every process this bench started (the daemon, its Ray driver, the nodes' GCS,
  raylets and workers), summed from ``/proc`` once a second over the descendants of this process
  (a process that exits loses at most its last second);
* the most trainings ``jobs`` listed as running at once, and on how many distinct nodes;
* the load average before and after.

Every torch pool has one thread. On a machine with fewer free cores than nodes the nodes share
them: the wall time then shows the contention, the CPU seconds the work.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from protocol.wire import Image
from singan_cli.demo import serve_subprocess

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' Ray nodes, shared with this bench
from cluster_local import LocalCluster  # noqa: E402

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
_TICK = os.sysconf("SC_CLK_TCK")


def wire_image(path: Path) -> Image:
    with PILImage.open(path) as im:
        array = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    return Image("image", array.shape[1], array.shape[0], "RGB", array.tobytes())


class CpuMeter:
    """CPU seconds of this process's descendants (not itself), sampled once a second from /proc."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}  # pid -> its latest utime + stime, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "CpuMeter":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._sample()

    def _sample(self) -> None:
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)  # ppid, cpu
        mine = {os.getpid()}
        changed = True
        while changed:
            new = {pid for pid, (ppid, _) in stats.items() if ppid in mine and pid not in mine}
            changed = bool(new)
            mine |= new
        for pid in mine - {os.getpid()}:
            self.seen[pid] = max(self.seen.get(pid, 0.0), stats[pid][1])


def run(nodes: int, images: list[Path], params: dict, workdir: Path) -> dict:
    load_before = os.getloadavg()
    with CpuMeter() as meter, LocalCluster(0, workdir) as cluster:
        for _ in range(nodes):
            cluster.add_node(1)
        env = dict(os.environ, OMP_NUM_THREADS="1", **cluster.env)
        with serve_subprocess(
            workdir, "cpu", ["--log-level", "info", "--ray", cluster.address, "--ray-cpus", "1"], env
        ) as client:
            deadline = time.monotonic() + 600
            while client.hello()["cluster"]["cpus"] < nodes:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster did not reach {nodes} CPUs in 600 s")
                time.sleep(1)
            cpu_start, start = meter.seconds, time.perf_counter()
            jobs = [client.submit("train", {"name": path.stem, **params}, [wire_image(path)]) for path in images]
            most, node_ids = 0, set()
            while not all(job.done for job in jobs):
                client.poll(0.5)
                running = [
                    j for j in client.jobs() if j["op"] == "train" and j["phase"] == "training" and j.get("node_id")
                ]
                most = max(most, len(running))
                node_ids |= {j["node_id"] for j in running}
            for job in jobs:
                job.wait(timeout=0)
            wall = time.perf_counter() - start
    return {
        "nodes": nodes,
        "wall_s": wall,
        "per_hour": len(images) * 3600 / wall,
        "cpu_s_trainings": meter.seconds - cpu_start,
        "cpu_s_total": meter.seconds,
        "most_running": most,
        "distinct_nodes": len(node_ids),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--max-size", type=int, default=None, help="longest side of the finest scale (default: the preset's)"
    )
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "ray-nodes.json")
    opts = parser.parse_args()
    images = sorted(p for p in IMAGES.iterdir() if p.suffix in (".png", ".jpg"))[:8]
    params = {"preset": "tiny", **({"max_size": opts.max_size} if opts.max_size else {})}
    results = []
    with tempfile.TemporaryDirectory(prefix="ray-nodes-") as tmp:
        for nodes in opts.nodes:
            workdir = Path(tmp) / f"nodes-{nodes}"
            workdir.mkdir()
            results.append(run(nodes, images, params, workdir))
            r = results[-1]
            print(
                f"{nodes} node(s): {r['wall_s']:.0f} s wall, {r['per_hour']:.0f} trainings/h, {r['cpu_s_trainings']:.0f} CPU s "
                f"({r['cpu_s_total']:.0f} with start-up), at most {r['most_running']} running on {r['distinct_nodes']} node(s); "
                f"load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}",
                flush=True,
            )
    opts.out.write_text(
        json.dumps({"params": params, "trainings": len(images), "cpus": os.cpu_count(), "runs": results}, indent=2)
    )
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
