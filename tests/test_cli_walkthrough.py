"""The README's command-line walk-through, from seeds to a staged dataset, run exactly as written: the commands are read
from between the README's `cli-walkthrough` markers (so the test breaks when the README drifts) and run by a shell in
a fresh CRUCIBLE_HOME, with the scripted teacher behind CRUCIBLE_LLM_BASE_URL and the real bwrap sandbox."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_bwrap
from tests.openai_stub_server import StubServer, StubState
from tests.scripted_teacher import ScriptedTeacher

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- cli-walkthrough:[^>]*-->\s*```sh\n(?P<body>.*?)```\s*<!-- /cli-walkthrough -->", re.S)


def walkthrough() -> list[str]:
    """The walk-through's command lines, in order."""
    found = BLOCK.findall((ROOT / "README.md").read_text())
    assert len(found) == 1, "README.md needs exactly one ```sh block between the cli-walkthrough markers"
    return [line.strip() for line in found[0].splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_names_the_path_from_seeds_to_a_dataset():
    commands = [line.split()[:2] for line in walkthrough()]
    assert all(line[0] == "crucible" for line in commands)
    subcommands = [line[1] for line in commands]
    assert subcommands.index("generate") < subcommands.index("catalog") < subcommands.index("dataset")


def test_the_walkthrough_runs_as_written(tmp_path):
    require_bwrap()
    home = tmp_path / "home"
    results = []
    with StubServer(StubState(responder=ScriptedTeacher())) as server:
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
               "CRUCIBLE_HOME": str(home), "CRUCIBLE_LLM_BASE_URL": server.base_url,
               "CRUCIBLE_LLM_MODEL": "scripted", "HF_HUB_OFFLINE": "1"}
        for line in walkthrough():
            done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=900)
            assert done.returncode == 0, f"`{line}` failed:\n{done.stderr[-3000:]}"
            results.append((line.split()[1], done))
    outputs = {}
    for command, done in results:
        outputs.setdefault(command, []).append(done.stdout)

    generated = json.loads(outputs["generate"][0])
    assert generated["source"] == "stdlib" and generated["verified_dialogues"] >= 1
    assert generated["curation"]["decontaminated_dialogues"] == generated["verified_dialogues"]
    listed = {line.split()[0]: int(line.split()[1]) for line in outputs["catalog"][0].splitlines()}
    assert listed["decontaminated_dialogues"] == generated["verified_dialogues"]
    dataset = json.loads(outputs["dataset"][-1])
    assert dataset["rows"]["train"] + dataset["rows"]["test"] == generated["verified_dialogues"]
    assert dataset["hub"]["status"] == "staged" and Path(dataset["hub"]["staged"], "README.md").is_file()
    assert Path(dataset["hub"]["staged"]).is_relative_to(home)
