"""The DAGSTER_HOME we create: telemetry and the first-visit community dialog off, a user's own file left alone."""

import yaml

from resources.dagster_home import DAGSTER_YAML, OLDER_DEFAULTS, dagster_home


def test_a_new_home_gets_our_dagster_yaml(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path))
    home = dagster_home()
    assert home == (tmp_path / "dagster").resolve()
    assert yaml.safe_load((home / "dagster.yaml").read_text()) == {"telemetry": {"enabled": False},
                                                                    "nux": {"enabled": False}}


def test_an_earlier_default_is_upgraded_and_a_users_file_is_not(tmp_path, monkeypatch):
    config = tmp_path / "dagster.yaml"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    config.write_text(OLDER_DEFAULTS[0])
    dagster_home()
    assert config.read_text() == DAGSTER_YAML
    mine = "telemetry:\n  enabled: true\n"
    config.write_text(mine)
    dagster_home()
    assert config.read_text() == mine
