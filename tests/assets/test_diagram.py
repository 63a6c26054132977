import re

import dagster as dg

import definitions
from assets.diagram import README, current_block, mermaid, readme_block, write_readme


def test_readme_asset_graph_is_generated_from_the_current_definitions():
    block = current_block(README.read_text(encoding="utf-8"))
    assert block is not None, "README.md lost its asset-graph markers"
    assert block == readme_block(definitions.defs), (
        "README.md's asset graph is stale: run `python -m assets.diagram --write`")


def test_every_asset_is_a_node_in_its_group_and_dependencies_are_edges():
    text = mermaid(definitions.defs)
    graph = definitions.defs.resolve_asset_graph()
    nodes = set(re.findall(r'^ {8}(\w+)\["', text, flags=re.MULTILINE))
    assert nodes == {key.to_user_string() for key in graph.get_all_asset_keys()}
    edges = {(up, down) for up, downs in re.findall(r"^ {4}(\w+) --> (.+)$", text, flags=re.MULTILINE)
             for down in downs.split(" & ")}
    assert {("seed_snippets", "oss_instruct_problems"), ("finetuned_checkpoint", "benchmark_scores")} <= edges
    assert edges == {(up.to_user_string(), key.to_user_string()) for key in graph.get_all_asset_keys()
                     for up in graph.get(key).parent_keys}
    generate = text.split('subgraph group_generate["generate"]', 1)[1].split("    end", 1)[0]
    assert "seed_snippets" in generate and "sft_dataset" not in generate


def test_same_graph_same_text_and_write_replaces_only_the_block(tmp_path):
    @dg.asset(group_name="b")
    def up():
        return 1

    @dg.asset(group_name="a")
    def down(up):
        return up

    defs = dg.Definitions(assets=[down, up])
    assert mermaid(defs) == mermaid(dg.Definitions(assets=[up, down])) == (
        'flowchart LR\n    subgraph group_b["b"]\n        up["up"]\n    end\n'
        '    subgraph group_a["a"]\n        down["down"]\n    end\n    up --> down\n')
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{readme_block(dg.Definitions(assets=[up]))}\noutro\n", encoding="utf-8")
    assert write_readme(defs, readme) is True
    assert readme.read_text(encoding="utf-8") == f"intro\n{readme_block(defs)}\noutro\n"
    assert write_readme(defs, readme) is False
