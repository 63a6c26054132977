"""The multi-machine deployment configurations in deploy/ validate against Dagster's instance schema and their run
launchers' config schemas (dagster-docker, dagster-k8s, dagster-postgres), and the Docker launcher can be built from
its config. No cluster or Postgres server is needed: nothing connects."""

import importlib
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import ConfigurableClassData

ROOT = Path(__file__).resolve().parent.parent
ENV = {"DAGSTER_PG_HOST": "pg", "DAGSTER_PG_USER": "dagster", "DAGSTER_PG_PASSWORD": "secret",
       "DAGSTER_PG_DB": "dagster", "CRUCIBLE_IMAGE": "crucible:latest"}


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def launcher_data(config: dict) -> ConfigurableClassData:
    section = config["run_launcher"]
    return ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section.get("config") or {}))


def check_section(section: dict) -> None:
    """The section's config passes its class's own schema (unknown or ill-typed fields fail)."""
    cls = getattr(importlib.import_module(section["module"]), section["class"])
    result = process_config(cls.config_type(), section.get("config") or {})
    assert result.success, [e.message for e in result.errors]


@pytest.mark.parametrize("target,launcher", [("docker", "DockerRunLauncher"), ("k8s", "K8sRunLauncher")])
def test_instance_config_validates(target, launcher):
    config, _ = dagster_instance_config(str(ROOT / "deploy" / target))
    assert config["run_launcher"]["class"] == launcher
    runs, pools = config["concurrency"]["runs"], config["concurrency"]["pools"]
    assert runs["max_concurrent_runs"] > 1
    # The teacher's limit is a pool on its steps (granularity op), no longer a run tag.
    assert pools["granularity"] == "op" and pools["default_limit"] >= 1
    assert "crucible/teacher" not in {lim["key"] for lim in runs.get("tag_concurrency_limits", [])}
    assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert "postgres" in config["storage"] and config["telemetry"]["enabled"] is False
    check_section(config["run_launcher"])
    bad = {**config["run_launcher"], "config": {**config["run_launcher"]["config"], "no_such_field": 1}}
    with pytest.raises(AssertionError):
        check_section(bad)


def test_docker_launcher_builds_from_the_config():
    config, _ = dagster_instance_config(str(ROOT / "deploy" / "docker"))
    launcher = launcher_data(config).rehydrate(as_type=object)
    assert type(launcher).__name__ == "DockerRunLauncher"
    assert launcher.image == "crucible:latest"
    assert "CRUCIBLE_LLM_BASE_URL" in launcher.env_vars


def test_the_configured_limit_caps_the_teacher_pool(tmp_path):
    """An instance with a deployment's `concurrency` section gives the teacher pool that limit as soon as a step of
    the pool runs (SQLite storage stands in for Postgres; the pool logic is the same)."""
    import dagster as dg

    from assets.keys import TEACHER_POOL

    section = yaml.safe_load((ROOT / "deploy" / "docker" / "dagster.yaml").read_text())["concurrency"]

    @dg.asset(pool=TEACHER_POOL)
    def asks_the_teacher():
        return None

    with dg.instance_for_test(overrides={"concurrency": section}, temp_dir=str(tmp_path)) as instance:
        assert dg.materialize([asks_the_teacher], instance=instance).success
        info = instance.event_log_storage.get_concurrency_info(TEACHER_POOL)
        assert info.slot_count == section["pools"]["default_limit"] and not info.active_slot_count
