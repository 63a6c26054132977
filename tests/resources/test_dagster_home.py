"""The DAGSTER_HOME we create: telemetry and the first-visit community dialog off, one teacher step at a time, a
user's own file left alone."""

import yaml

from resources.dagster_home import DAGSTER_YAML, OLDER_DEFAULTS, dagster_home


def test_a_new_home_gets_our_dagster_yaml(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path))
    home = dagster_home()
    assert home == (tmp_path / "dagster").resolve()
    assert yaml.safe_load((home / "dagster.yaml").read_text()) == {
        "telemetry": {"enabled": False}, "nux": {"enabled": False},
        "concurrency": {"pools": {"granularity": "op", "default_limit": 1}},
        "run_monitoring": {"enabled": True, "free_slots_after_run_end_seconds": 60}}


def test_the_local_instance_runs_one_teacher_step_at_a_time(tmp_path, monkeypatch):
    """A run started from the command line (in process, on the home's instance) claims a slot of the teacher pool,
    whose limit the home's dagster.yaml sets to 1, and gives it back when the step ends."""
    import dagster as dg

    from assets.keys import TEACHER_POOL
    from resources.dagster_home import persistent_instance

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # a new home: it gets our dagster.yaml
    seen = {}

    @dg.asset(pool=TEACHER_POOL)
    def asks_the_teacher(context: dg.AssetExecutionContext):
        seen["active"] = context.instance.event_log_storage.get_concurrency_info(TEACHER_POOL).active_slot_count

    with persistent_instance() as instance:
        assert dg.materialize([asks_the_teacher], instance=instance).success
        info = instance.event_log_storage.get_concurrency_info(TEACHER_POOL)
    assert seen["active"] == 1 and info.slot_count == 1 and info.active_slot_count == 0


def test_an_earlier_default_is_upgraded_and_a_users_file_is_not(tmp_path, monkeypatch):
    config = tmp_path / "dagster.yaml"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    for older in OLDER_DEFAULTS:
        config.write_text(older)
        dagster_home()
        assert config.read_text() == DAGSTER_YAML
    mine = "telemetry:\n  enabled: true\n"
    config.write_text(mine)
    dagster_home()
    assert config.read_text() == mine


def test_slots_left_by_a_killed_crucible_process_are_freed(tmp_path, monkeypatch):
    """A crucible process killed with SIGKILL mid-step leaves its run STARTED and the teacher slot claimed: the next
    command-line run frees it (and marks that run failed) instead of waiting forever; a live process's run and a
    run from elsewhere keep theirs."""
    import subprocess
    import sys

    import dagster as dg

    from assets.keys import TEACHER_POOL
    from resources.dagster_home import HOST_TAG, PID_TAG, persistent_instance, process_tags, release_orphaned_slots

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = gone.stdout.strip()
    with persistent_instance() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(TEACHER_POOL, 3)
        runs = {}
        for name, tags in {"killed": {**process_tags(), PID_TAG: dead_pid}, "alive": process_tags(),
                           "elsewhere": {HOST_TAG: "another-host", PID_TAG: dead_pid}}.items():
            run = instance.create_run_for_job(dg.GraphDefinition(name=name).to_job(), tags=tags)
            instance.handle_new_event(dg.EventLogEntry(
                error_info=None, level="debug", user_message="", run_id=run.run_id, timestamp=0.0,
                dagster_event=dg.DagsterEvent("PIPELINE_START", run.job_name)))
            storage.claim_concurrency_slot(TEACHER_POOL, run.run_id, "step")
            runs[name] = run.run_id
        assert release_orphaned_slots(instance) == [runs["killed"]]
        assert instance.get_run_by_id(runs["killed"]).status == dg.DagsterRunStatus.FAILURE
        assert storage.get_concurrency_run_ids() == {runs["alive"], runs["elsewhere"]}
