"""``singan serve --ray``: trainings as tasks on a real local Ray cluster (issue 17).

One cluster for the module, started by the test on 127.0.0.1 (``ray start --head --block`` in its
own session, 2 CPUs, no dashboard, token authentication with a fresh token: see
tests/cluster_local.py) and killed with its whole process group at the end, even on failure. The daemons are real subprocesses that connect
to it by address; clients talk to them over real sockets. Skipped when Ray is not installed,
except under ``CI=true`` (CI installs the ``cluster`` extra), where that fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from daemon.cluster import ClusterConfig, parse_preset_resources
from cluster_local import LocalCluster, LocalHead, local_head
from singan_core.sampling import sample
from singan_core.storage import load_pyramid, read_meta

from conftest import DaemonProcess, submit_training, wait_for

# Margins: the whole file takes about 3 minutes on a busy 2-core machine (load 10); at load 13 a
# tiny training took 100-200 s instead of 10-35 s, so waits allow 10-15 minutes and each test
# (with the module's fixtures it sets up) 30.
IMAGES = ("chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg")  # 3, 3, 3 and 4 tiny scales


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _need_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI") == "true":
            pytest.fail('ray is not installed; CI must install the cluster extra: pip install -e ".[test,cluster]"')
        pytest.skip('ray is not installed (pip install -e ".[test,cluster]")')


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    """Ray's auth variables in this process's environment (the daemon subprocesses inherit them)."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A 2-CPU Ray head on 127.0.0.1 with token authentication (:func:`cluster_local.local_head`);
    its auth variables are set in this process's environment until the module ends."""
    _need_ray()
    with local_head(2, tmp_path_factory.mktemp("ray") / "ray-start.log") as head, _environment(head.env):
        yield head


def ray_daemon(store: Path, cluster: LocalHead) -> DaemonProcess:
    """A daemon on ``store`` whose trainings run on ``cluster``, one CPU (and torch thread) each."""
    return DaemonProcess(store, "--ray", cluster.address, "--ray-cpus", "1")


@pytest.fixture(scope="module")
def daemon(ray_cluster, tmp_path_factory):
    process = ray_daemon(tmp_path_factory.mktemp("ray-store") / "store", ray_cluster)
    yield process
    assert process.stop() == 0


@dataclass(frozen=True)
class Batch:
    models: dict[str, str]  # image name -> model id
    placements: dict[str, set]  # job id -> {(node_id, node_ip, worker_pid)} seen in `jobs`
    most_running: int  # most trainings `jobs` listed as running (phase training) at once


@pytest.fixture(scope="module")
def batch(daemon, shared_images) -> Batch:
    """The four tiny trainings of IMAGES, submitted at once; `jobs` is polled while they run."""
    placements: dict[str, set] = {}
    most = 0
    with daemon.client(timeout=10) as client:
        jobs = [submit_training(client, shared_images / name, Path(name).stem) for name in IMAGES]
        deadline = time.monotonic() + 900
        while not all(job.done for job in jobs):
            assert time.monotonic() < deadline, "the four trainings did not finish in 900 s"
            client.poll(0.2)
            # a model being prepared (its image decoded and written) is also a running train job, in the worker
            running = [
                j for j in client.jobs() if j["op"] == "train" and j["state"] == "running" and j["phase"] == "training"
            ]
            most = max(most, len(running))
            for j in running:
                if j.get("worker_pid") is not None:
                    assert _pid_alive(j["worker_pid"]), j
                    placements.setdefault(j["job"], set()).add((j["node_id"], j["node_ip"], j["worker_pid"]))
        results = {name: job.wait(0) for name, job in zip(IMAGES, jobs)}
        assert {j.id for j in jobs} == set(placements), placements
    return Batch({name: r["model"]["id"] for name, r in results.items()}, placements, most)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_four_trainings_run_two_at_a_time_on_the_ray_node(daemon, batch):
    """4 trainings at once on a 2-CPU cluster with 1 CPU each: `jobs` lists at most 2 running, each
    on the (only) Ray node in a live worker process, and all four end ready."""
    assert batch.most_running == 2
    seen = set().union(*batch.placements.values())
    assert len({node_id for node_id, _, _ in seen}) == 1 and all(len(node_id) == 56 for node_id, _, _ in seen), seen
    assert all(pid != daemon.proc.pid for _, _, pid in seen)
    with daemon.client() as client:
        listed = {m["id"]: m for m in client.list_models()}
    for model in batch.models.values():
        assert listed[model]["status"] == "ready" and listed[model]["scales_done"] == listed[model]["num_scales"]
    log = daemon.log.read_text()
    assert log.count("done on Ray") >= 4 and "runs on Ray node" in log


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_each_ray_model_samples_like_the_same_local_training(daemon, batch, chelsea_model):
    """Every model generates through the daemon; the Ray-trained chelsea equals the same training
    run locally through the core API (tiny preset, seed 0, one torch thread on both sides), to the
    bit: the same nets and the same sample."""
    with daemon.client(timeout=30) as client:
        for model in batch.models.values():
            job = client.submit("generate", {"model": model, "seed": 3})
            job.wait(timeout=60)
            image = job.images[0]
            assert image.width >= 32 and image.height >= 20
    pyramid, meta = load_pyramid(daemon.store / "models" / batch.models["chelsea.png"])
    assert meta.is_complete and pyramid.noise_amps == chelsea_model.noise_amps
    for k in range(pyramid.num_scales):
        for name, t in chelsea_model.generators[k].state_dict().items():
            assert torch.equal(pyramid.generators[k].state_dict()[name], t), (k, name)
    assert torch.equal(sample(pyramid, 2, seed=5), sample(chelsea_model, 2, seed=5))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_cancel_of_a_ray_training_keeps_it_interrupted_and_ends_the_task(daemon, shared_images):
    with daemon.client(timeout=10) as client:
        events: list[dict] = []
        job = submit_training(client, shared_images / "gravel.png", "gravel-cancel", events)
        wait_for(
            lambda: job.done or any((e.get("scale") or 0) >= 1 for e in events), 600, "scale 1 to start", client.poll
        )
        assert not job.done, job.error
        info = next(j for j in client.jobs() if j["job"] == job.id)
        pid = info["worker_pid"]
        assert pid is not None and _pid_alive(pid)
        assert job.cancel()
        with pytest.raises(Exception) as err:
            job.wait(timeout=60)
        assert getattr(err.value, "code", None) == "cancelled", err.value
        model = client.get_model(job.model)
        assert model["status"] == "interrupted" and 1 <= model["scales_done"] < model["num_scales"], model
        assert all(j["job"] != job.id for j in client.jobs())
    wait_for(lambda: not _pid_alive(pid), 60, f"the cancelled task's worker {pid} to exit")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_killed_ray_worker_resumes_from_the_last_finished_scale(daemon, shared_images):
    with daemon.client(timeout=10) as client:
        events: list[dict] = []
        job = submit_training(client, shared_images / "brick.png", "brick-kill", events, max_size=32)  # 4 scales
        wait_for(
            lambda: job.done or (job.model is not None and client.get_model(job.model)["scales_done"] >= 1),
            600,
            "the first finished scale",
            client.poll,
        )
        assert not job.done, job.error
        info = next(j for j in client.jobs() if j["job"] == job.id)
        done_before, pid = client.get_model(job.model)["scales_done"], info["worker_pid"]
        os.kill(pid, signal.SIGKILL)
        pids, done = {pid}, [done_before]

        def finished() -> bool:
            for j in client.jobs():
                if j["job"] == job.id and j.get("worker_pid"):
                    pids.add(j["worker_pid"])
            done.append(client.get_model(job.model)["scales_done"])
            return job.done

        wait_for(finished, 900, "the resumed training", client.poll)
        result = job.wait(0)["model"]
    assert result["status"] == "ready" and result["scales_done"] == result["num_scales"]
    assert done == sorted(done), done  # scales_done never went back
    assert len(pids) >= 2, pids  # it went on in another worker process
    assert "resubmitting from scale" in daemon.log.read_text()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_daemon_killed_while_ray_trains_resumes_on_restart(ray_cluster, daemon, batch, tmp_path, shared_images):
    """kill -9 of the daemon after rocket's first finished scale; a new daemon on the same store
    and cluster resumes it (scales_done never goes back) to the same model as the uninterrupted
    Ray training of the batch (per-scale seeds): the same samples, to the bit."""
    store = tmp_path / "store"
    first = ray_daemon(store, ray_cluster)
    try:
        with first.client(timeout=10) as client:
            job = submit_training(client, shared_images / "rocket.jpg", "rocket")
            wait_for(
                lambda: job.done or (job.model is not None and client.get_model(job.model)["scales_done"] >= 1),
                600,
                "the first finished scale",
                client.poll,
            )
            assert not job.done, job.error
    finally:
        first.kill()
    saved = read_meta(store / "models" / "rocket")  # not corrupt: model.json reads and validates
    assert 1 <= saved.scales_done < saved.num_scales

    second = ray_daemon(store, ray_cluster)
    done = [saved.scales_done]
    with second.client(timeout=10) as client:

        def ready() -> bool:
            info = client.get_model("rocket")
            done.append(info["scales_done"])
            return info["status"] == "ready"

        wait_for(ready, 900, "the resumed training")
        client.submit("generate", {"model": "rocket"}).wait(timeout=60)
    assert second.stop() == 0
    assert done == sorted(done), done
    log = second.log.read_text()
    assert "resuming the interrupted training of rocket" in log and "done on Ray" in log
    resumed, _ = load_pyramid(store / "models" / "rocket")
    uninterrupted, _ = load_pyramid(daemon.store / "models" / batch.models["rocket.jpg"])
    assert torch.equal(sample(resumed, 2, seed=1), sample(uninterrupted, 2, seed=1))


def test_serve_with_ray_but_without_ray_installed_is_one_line_naming_the_flag_and_the_extra(tmp_path):
    """Without Ray (its import blocked), ``singan serve --ray auto`` exits 2 with one line that
    names --ray and the extra to install, before binding anything."""
    code = (
        "import sys; sys.modules['ray'] = None; from singan_cli.cli import main; "
        f"main(['serve', '--ray', 'auto', '--store', {str(tmp_path / 'store')!r}, '--endpoint', 'tcp://127.0.0.1:*', "
        f"'--log-file', {str(tmp_path / 'd.log')!r}])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "", done
    lines = done.stderr.strip().splitlines()
    assert (
        lines[-1].startswith("singan: error: ray: --ray needs Ray")
        and 'pip install "singan-studio[cluster]"' in lines[-1]
    ), done.stderr


def test_per_preset_resources_parse_and_fall_back_to_the_defaults():
    """``--ray-preset paper=4,1 --ray-preset draft=2``: paper trainings declare 4 CPUs and 1 GPU,
    draft 2 CPUs, the others the --ray-cpus/--ray-gpus defaults; bad specs are one-line errors."""
    config = ClusterConfig("auto", num_cpus=1, per_preset=parse_preset_resources(["paper=4,1", "draft=2"]))
    assert (config.resources("paper"), config.resources("draft"), config.resources("tiny")) == ((4, 1), (2, 0), (1, 0))
    for spec, words in ((["paper"], "PRESET=CPUS[,GPUS]"), (["huge=2"], "unknown preset"), (["paper=0"], "CPUs > 0")):
        with pytest.raises(ValueError, match=r"^ray-preset: ") as err:
            ClusterConfig("auto", per_preset=parse_preset_resources(spec))
        assert words in str(err.value)


# -- more than one node (issue 29): simulated on this machine, each node its own `ray start` -----


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """A head without CPUs (it runs no training) and two worker nodes, ``node-1`` with 1 CPU and
    ``node-2`` with 2 (:class:`cluster_local.LocalCluster`); all killed at the module's end."""
    _need_ray()
    with LocalCluster(0, tmp_path_factory.mktemp("ray-nodes")) as cluster, _environment(cluster.env):
        cluster.add_node(1)
        cluster.add_node(2)
        yield cluster


@contextlib.contextmanager
def _cluster_daemon(store: Path, cluster: LocalCluster, cpus: float, *args: str):
    """A daemon on ``cluster``, once ``hello`` reports it connected with ``cpus`` CPUs (nodes join
    after the head); stopped at the end whatever happened."""
    daemon = DaemonProcess(store, "--ray", cluster.address, "--ray-cpus", "1", *args)
    try:
        with daemon.client(timeout=10) as client:
            wait_for(lambda: client.hello()["cluster"]["cpus"] == cpus, 300, f"the cluster to have {cpus:g} CPUs")
        yield daemon
    finally:
        if daemon.proc.poll() is None:
            daemon.stop()


def _train_watching_nodes(client, cluster: LocalCluster, job, on_scale=None) -> dict[int, str | None]:
    """Poll until ``job`` is done; returns {worker pid: node name} of every worker `jobs` showed.
    ``on_scale(scales_done)`` is called at each poll once the model has a finished scale."""
    workers: dict[int, str | None] = {}

    def done() -> bool:
        for j in client.jobs():
            if j["job"] == job.id and j.get("worker_pid") and j["worker_pid"] not in workers:
                workers[j["worker_pid"]] = cluster.node_of(j["worker_pid"])
        if on_scale is not None and job.model is not None and not job.done:
            on_scale(client.get_model(job.model)["scales_done"])
        return job.done

    wait_for(done, 900, "the training", client.poll)
    return workers


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_preset_declaring_more_cpus_trains_on_the_node_that_has_them(nodes, tmp_path, shared_images):
    """--ray-preset tiny=1.5 on a cluster of a 1-CPU and a 2-CPU node: the tiny training runs on
    node-2 (node-1 cannot host it), with floor(1.5) = 1 torch thread, and ends ready. (1.5 rather
    than 2: a 2-thread pool on a busy 2-core machine stalls.)"""
    with (
        _cluster_daemon(tmp_path / "store", nodes, 3, "--ray-preset", "tiny=1.5") as daemon,
        daemon.client(timeout=10) as client,
    ):
        job = submit_training(client, shared_images / "coffee.png", "coffee")
        workers = _train_watching_nodes(client, nodes, job)
        assert job.wait(0)["model"]["status"] == "ready"
        assert daemon.stop() == 0
    assert workers and set(workers.values()) == {"node-2"}, workers
    assert "tiny: 1.5 CPU" in daemon.log.read_text() and "1 threads" in daemon.log.read_text()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_node_killed_mid_training_continues_on_another_from_its_last_scale(
    nodes, tmp_path, shared_images, chelsea_model
):
    """The node training chelsea is killed (its raylet and workers) after the first finished scale:
    the training goes on on the other node from that scale (scales_done never goes back) and ends
    as the same model as an uninterrupted local training (tiny, seed 0, one thread): the same
    generators and samples, to the bit."""
    killed, done = [], []

    def kill_after_first_scale(scales_done: int) -> None:
        done.append(scales_done)
        if scales_done >= 1 and not killed:
            running = [j for j in client.jobs() if j["job"] == job.id and j.get("worker_pid")]
            name = running and nodes.node_of(running[0]["worker_pid"])
            if name:
                nodes.kill(name)
                killed.append(name)

    with _cluster_daemon(tmp_path / "store", nodes, 3) as daemon, daemon.client(timeout=10) as client:
        job = submit_training(client, shared_images / "chelsea.png", "chelsea")
        workers = _train_watching_nodes(client, nodes, job, kill_after_first_scale)
        result = job.wait(0)["model"]
        assert result["status"] == "ready" and result["scales_done"] == result["num_scales"]
        assert daemon.stop() == 0
    assert killed and killed[0] != "head", killed
    assert done == sorted(done) and done[0] < result["num_scales"], done
    assert set(workers.values()) - {None, killed[0]}, workers  # it went on on another node
    assert "resubmitting from scale" in daemon.log.read_text()
    pyramid, _ = load_pyramid(daemon.store / "models" / result["id"])
    for k in range(pyramid.num_scales):
        for name, t in chelsea_model.generators[k].state_dict().items():
            assert torch.equal(pyramid.generators[k].state_dict()[name], t), (k, name)
    assert torch.equal(sample(pyramid, 2, seed=5), sample(chelsea_model, 2, seed=5))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_head_lost_is_reported_unreachable_and_the_training_resumes_when_it_returns(
    tmp_path, shared_images, chelsea_model
):
    """The head is killed after chelsea's first finished scale. The daemon (before issue 29 the Ray
    driver itself, which Ray ends about 60 s after its head) stays up: ``hello`` reports the
    cluster unreachable with a reason, the training waits (``jobs`` phase ``waiting``), still so
    75 s later. The head started again on its address: connected, the training resumes from its
    last finished scale and ends as the uninterrupted local training, to the bit."""
    _need_ray()
    with LocalCluster(1, tmp_path / "ray") as cluster, _environment(cluster.env):
        with _cluster_daemon(tmp_path / "store", cluster, 1) as daemon, daemon.client(timeout=10) as client:
            job = submit_training(client, shared_images / "chelsea.png", "chelsea")
            wait_for(
                lambda: job.done or (job.model is not None and client.get_model(job.model)["scales_done"] >= 1),
                900,
                "the first finished scale",
                client.poll,
            )
            assert not job.done, job.error
            cluster.kill("head")
            lost = time.monotonic()
            wait_for(
                lambda: client.hello()["cluster"]["state"] == "unreachable", 120, "the cluster reported unreachable"
            )
            info = client.hello()["cluster"]
            assert info["message"] and info["address"] == cluster.address and info["cpus"] == 0, info
            wait_for(
                lambda: [j["phase"] for j in client.jobs()] == ["waiting"], 60, "the training to wait", client.poll
            )
            while time.monotonic() - lost < 75:  # past Ray's 60 s, after which a driver ends its own process
                client.poll(1)
            assert daemon.proc.poll() is None
            assert client.hello()["cluster"]["state"] == "unreachable" and [j["phase"] for j in client.jobs()] == [
                "waiting"
            ]
            cluster.start_head()
            wait_for(lambda: client.hello()["cluster"]["state"] == "connected", 300, "the cluster to answer again")
            wait_for(lambda: job.done, 900, "the resumed training", client.poll)
            result = job.wait(0)["model"]
            assert daemon.stop() == 0
    log = daemon.log.read_text()
    assert "the Ray cluster is unreachable" in log and log.count("connected to the Ray cluster") == 2
    pyramid, _ = load_pyramid(daemon.store / "models" / result["id"])
    assert torch.equal(sample(pyramid, 2, seed=5), sample(chelsea_model, 2, seed=5))
