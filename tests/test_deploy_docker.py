"""Past one machine, for real: Dagster's storage in a Postgres server, the daemon's run queue, and the Docker run
launcher starting two seed-source partitions' runs at once, each in its own container, the teacher reached over the
network and the results in one shared CRUCIBLE_HOME that the catalog reads.

Set-up, all on this machine and without an image registry:
- a Postgres server (Debian's package; `.ci/run` installs it) in a temporary cluster, listening on a Docker network's
  gateway address, with trust authentication;
- a Docker network the run containers join; the instant stub teacher (benchmarks/stub_teacher.py) answers on the same
  gateway address, so the runs reach it as they would reach a vLLM server;
- the image: deploy/Dockerfile's `checkout` target on the sandbox image (`make sandbox-docker`, built from Debian
  packages); the containers mount this checkout, its virtual environment and interpreter at their host paths, the
  shared CRUCIBLE_HOME, and the Docker socket for the docker sandbox backend (bubblewrap inside a container needs
  its own /proc, which Docker's masked /proc paths forbid unless the container is privileged);
- DAGSTER_HOME: deploy/docker/dagster.yaml as shipped (storage, run queue, pools, run monitoring, launcher), with
  only the launcher's network, mounts and passed-through variables and the server's port set for this machine.

Skipped, with the reason, where no Docker engine answers, the sandbox image is missing, or Postgres is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml

from resources.server_process import free_port

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"stdlib": None, "toolbox": ROOT / "sandbox_image"}  # two seed sources, one partition each
SEEDS = 3
JOB = "generate_and_curate"
TIMEOUT_S = 900
pytestmark = [pytest.mark.slow, pytest.mark.docker]


def postgres_bindir() -> Path | None:
    """Debian installs the server binaries under /usr/lib/postgresql/<major>/bin; the newest one present."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as Debian's `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres_server(host: str):
    """A throwaway cluster listening on `host`; yields the DAGSTER_PG_* variables and the port. Its folder is a
    fresh one under the system's temporary directory: the `postgres` user cannot enter pytest's tmp_path (0700)."""
    bindir = postgres_bindir()
    directory = Path(tempfile.mkdtemp(prefix="crucible-pg-"))
    data = directory / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "crucible", "--auth=trust"]),
                   check=True, capture_output=True)
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write("host all all 0.0.0.0/0 trust\n")  # the run containers, from the Docker network
    port = free_port(host)
    subprocess.run(as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "-o",
                                f"-p {port} -k {data} -c listen_addresses={host}", "start"]),
                   check=True, capture_output=True)
    try:
        subprocess.run(as_postgres([str(bindir / "createdb"), "-h", str(data), "-p", str(port), "-U", "crucible",
                                    "dagster"]), check=True, capture_output=True)
        yield {"DAGSTER_PG_HOST": host, "DAGSTER_PG_USER": "crucible", "DAGSTER_PG_PASSWORD": "trust-auth",
               "DAGSTER_PG_DB": "dagster"}, port
    finally:
        subprocess.run(as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def docker_network(client):
    network = client.networks.create(f"crucible-test-{uuid.uuid4().hex[:8]}", driver="bridge")
    try:
        network.reload()
        yield network.name, network.attrs["IPAM"]["Config"][0]["Gateway"]
    finally:
        network.remove()


def run_in_checkout(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """`command` in the checkout; a failure shows the end of its stderr."""
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(command[:4])} ... exited {done.returncode}: {done.stderr[-2000:]}"
    return done


def build_run_image(base: str) -> str:
    """deploy/Dockerfile's `checkout` target on `base`; the build context is the deploy folder alone."""
    tag = "crucible-run:test"
    run_in_checkout(["docker", "build", "-q", "-f", str(ROOT / "deploy" / "Dockerfile"), "--target", "checkout",
                     "--build-arg", f"BASE={base}", "-t", tag, str(ROOT / "deploy")])
    return tag


def python_prefix() -> Path:
    """The installation the virtual environment's interpreter belongs to (its symlinks point there)."""
    return Path(os.path.realpath(sys.executable)).parent.parent


def dagster_yaml(network: str, port: int, home: Path, passed: list[str]) -> dict:
    """deploy/docker/dagster.yaml with this machine's network, mounts, server port and passed-through variables."""
    config = yaml.safe_load((ROOT / "deploy" / "docker" / "dagster.yaml").read_text())
    config["storage"]["postgres"]["postgres_db"]["port"] = port
    launcher = config["run_launcher"]["config"]
    launcher["network"] = network
    launcher["env_vars"] = sorted(set(launcher["env_vars"]) | set(passed))
    mounts = {ROOT: "ro", Path(sys.prefix).resolve(): "ro", python_prefix(): "ro", home: "rw"}
    shipped = launcher["container_kwargs"]["volumes"]
    # The shipped named volume for CRUCIBLE_HOME becomes this test's folder; the Docker socket stays.
    launcher["container_kwargs"]["volumes"] = [f"{path}:{path}:{mode}" for path, mode in mounts.items()] + [
        volume for volume in shipped if not volume.startswith("crucible-home:")]
    return config


def wait_for_runs(instance, run_ids: list[str], daemon: subprocess.Popen, log: Path) -> list:
    from dagster import DagsterRunStatus

    finished = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
        if all(run.status in finished for run in runs):
            return runs
        if daemon.poll() is not None:
            pytest.fail(f"dagster-daemon exited ({daemon.returncode}); its log: {log.read_text()[-3000:]}")
        time.sleep(3)
    pytest.fail(f"runs not finished after {TIMEOUT_S} s: {[(r.run_id[:8], r.status.value) for r in runs]}")


def run_failure(instance, run) -> str:
    """The error-level messages of a failed run's log (run failure included), for the assertion message."""
    return " | ".join(e.message for e in instance.all_logs(run.run_id) if e.level >= 40)[-3000:]


def test_two_partitions_run_concurrently_in_containers_on_postgres(docker_engine, tmp_path, monkeypatch):
    if postgres_bindir() is None:
        pytest.skip("Postgres is not installed (Debian: apt-get install postgresql; .ci/run installs it)")
    from dagster import DagsterInstance

    from assets.partitions import add_seed_source
    from benchmarks.stub_teacher import StubTeacher
    from resources.sandbox_docker import default_image
    from tests.openai_stub_server import StubServer, StubState

    home = tmp_path / "home"
    dagster_home = tmp_path / "dagster"
    for folder in (home, dagster_home):
        folder.mkdir()
    (home / "sources.yaml").write_text(yaml.safe_dump(
        {"sources": {name: {"kind": "local", "path": str(path), "license": "MIT"}
                     for name, path in SOURCES.items() if path is not None}}))
    image = build_run_image(default_image())

    with contextlib.ExitStack() as stack:
        network, gateway = stack.enter_context(docker_network(docker_engine))
        pg_env, port = stack.enter_context(postgres_server(gateway))
        teacher = stack.enter_context(StubServer(StubState(responder=StubTeacher()), host=gateway))
        env = {
            **os.environ, **pg_env,
            "DAGSTER_HOME": str(dagster_home), "CRUCIBLE_HOME": str(home), "CRUCIBLE_IMAGE": image,
            "CRUCIBLE_LLM_BASE_URL": teacher.base_url, "CRUCIBLE_LLM_MODEL": "stub",
            "CRUCIBLE_SANDBOX_BACKEND": "docker", "HF_HUB_OFFLINE": "1",
            "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        }
        passed = ["HF_HUB_OFFLINE", "PATH"]  # CRUCIBLE_SANDBOX_BACKEND=docker is in the shipped config
        config = dagster_yaml(network, port, home, passed)
        (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
        # As the shipped config asks: every variable it passes is set, empty for what this run does not use.
        for name in config["run_launcher"]["config"]["env_vars"]:
            if "=" not in name:
                env.setdefault(name, "")
        for name, value in pg_env.items():  # the instance below reads its storage settings from these
            monkeypatch.setenv(name, value)

        daemon_log = tmp_path / "daemon.log"
        daemon = subprocess.Popen([str(Path(sys.prefix) / "bin" / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                                  cwd=ROOT, env=env, stdout=open(daemon_log, "w"), stderr=subprocess.STDOUT)
        stack.callback(lambda: (daemon.terminate(), daemon.wait(30)))
        instance = stack.enter_context(DagsterInstance.from_config(str(dagster_home)))
        add_seed_source(instance, *SOURCES)
        stack.callback(lambda: [c.remove(force=True) for c in docker_engine.containers.list(
            all=True, filters={"ancestor": image})])

        run_ids = []
        for source in SOURCES:
            run_id = str(uuid.uuid4())
            run_in_checkout([str(Path(sys.prefix) / "bin" / "dagster"), "job", "launch", "-w", "workspace.yaml",
                             "-j", JOB, "--run-id", run_id, "--tags", json.dumps({"dagster/partition": source}),
                             "--config-json", json.dumps({"ops": {"seed_snippets": {"config": {"max_seeds": SEEDS}}}})],
                            env=env)
            run_ids.append(run_id)

        runs = wait_for_runs(instance, run_ids, daemon, daemon_log)
        for run in runs:
            assert run.status.value == "SUCCESS", f"run {run.run_id[:8]} ({run.tags.get('dagster/partition')}): " \
                f"{run_failure(instance, run)}; daemon log: {daemon_log.read_text()[-2000:]}"
            assert run.tags.get("docker/container_id"), "the Docker run launcher did not start this run"

        # Concurrent: each run started before the other ended (run stats from the Postgres event log).
        stats = [instance.get_run_stats(run.run_id) for run in runs]
        assert max(s.start_time for s in stats) < min(s.end_time for s in stats), \
            f"the runs did not overlap: {[(s.start_time, s.end_time) for s in stats]}"

        # The shared catalog sees both partitions' rows, with their source.
        query = ("SELECT 'counts=' || string_agg(source || ':' || n, ',' ORDER BY source) AS result FROM "
                 "(SELECT source, count(*) AS n FROM verified_dialogues GROUP BY source)")
        catalog = run_in_checkout([str(Path(sys.prefix) / "bin" / "crucible"), "catalog", "--quiet", "--sql", query],
                                  env=env)
        cell = catalog.stdout.split("counts=", 1)[-1].split()[0]
        counts = dict(pair.split(":") for pair in cell.split(","))
        assert set(counts) == set(SOURCES) and all(int(n) > 0 for n in counts.values()), catalog.stdout
        spans = [(round(s.start_time - stats[0].start_time, 1), round(s.end_time - stats[0].start_time, 1))
                 for s in stats]
        print(f"\nruns in containers {[r.tags['docker/container_id'][:12] for r in runs]}, {spans} s from the first "
              f"start; verified dialogues per source: {counts}")
        for source in SOURCES:
            assert (home / "data" / "decontaminated_dialogues" / f"{source}.parquet").is_file()
