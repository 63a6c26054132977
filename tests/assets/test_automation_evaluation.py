"""Evaluation by declarative automation: the automation conditions of benchmark_scores and teacher_selection (after a
new checkpoint) and of teacher (after a new decision), evaluated
tick by tick against the real definitions, over runs recorded by stand-in assets under the same keys (what decides a
request is which runs updated which keys, and with what tags, not what the assets compute)."""

import dagster as dg
import pytest

from assets.automation import AFTER_NEW_CHECKPOINT, AFTER_NEW_DECISION, SCORED_BY_CALLER, evaluation_automation
from assets.keys import BENCHMARK_SCORES, EVALUATE, FINETUNED_CHECKPOINT, SFT_DATASET, TEACHER, TEACHER_SELECTION


@dg.asset(name=SFT_DATASET)
def stand_in_dataset():
    return None


@dg.asset(name=FINETUNED_CHECKPOINT, deps=[SFT_DATASET])
def stand_in_checkpoint():
    return None


@dg.asset(name=BENCHMARK_SCORES, deps=[FINETUNED_CHECKPOINT])
def stand_in_scores():
    return None


@dg.asset(name=TEACHER_SELECTION, deps=[FINETUNED_CHECKPOINT, SFT_DATASET])
def stand_in_selection():
    return None


@dg.asset(name=TEACHER, deps=[TEACHER_SELECTION])
def stand_in_teacher():
    return None


STAND_INS = [stand_in_dataset, stand_in_checkpoint, stand_in_scores, stand_in_selection, stand_in_teacher]
EVALUATION = [BENCHMARK_SCORES, TEACHER_SELECTION]


class Ticks:
    """The automation sensor's ticks over one instance, with its cursor carried from tick to tick."""

    def __init__(self, instance: dg.DagsterInstance):
        from definitions import defs

        self.instance, self.defs, self.cursor = instance, defs, None

    def run(self, *keys: str, tags: dict | None = None) -> None:
        """One run materializing `keys` (as `crucible demo`, a `train` or an `evaluate` run would)."""
        assert dg.materialize(STAND_INS, selection=list(keys), instance=self.instance, tags=tags,
                              run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}).success

    def tick(self) -> set[str]:
        """The assets the sensor's next tick requests."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        return {key for key in (*EVALUATION, TEACHER, FINETUNED_CHECKPOINT, SFT_DATASET)
                if result.get_num_requested(dg.AssetKey(key))}


@pytest.fixture
def ticks():
    with dg.instance_for_test() as instance:
        yield Ticks(instance)


def demo(ticks: Ticks) -> None:
    """What `crucible demo` records: the dataset, a `train` run tagged as scored by its caller, an `evaluate` run."""
    ticks.run(SFT_DATASET)
    ticks.run(FINETUNED_CHECKPOINT, tags=SCORED_BY_CALLER)
    ticks.run(*EVALUATION, TEACHER)  # the evaluate job acts on its decision in the same run


def test_opening_the_ui_after_the_demo_evaluates_nothing(ticks):
    demo(ticks)
    assert ticks.tick() == set()  # the sensor's first tick, when `make ui` starts the daemon
    assert ticks.tick() == set()


def test_a_demo_between_two_ticks_evaluates_nothing(ticks):
    """The sensor was running (the UI open, or a cursor from an earlier session) while the demo ran."""
    assert ticks.tick() == set()
    demo(ticks)
    assert ticks.tick() == set()
    # Its train run alone (the evaluate run not started yet at the tick) is left to the demo too.
    ticks.run(FINETUNED_CHECKPOINT, tags=SCORED_BY_CALLER)
    assert ticks.tick() == set()
    ticks.run(FINETUNED_CHECKPOINT, *EVALUATION, TEACHER)  # trained, scored and decided in one run
    assert ticks.tick() == set()


def test_a_checkpoint_trained_on_its_own_is_evaluated_once(ticks):
    ticks.run(SFT_DATASET)
    assert ticks.tick() == set()
    ticks.run(FINETUNED_CHECKPOINT)  # a `train` run from the UI
    assert ticks.tick() == set(EVALUATION)
    assert ticks.tick() == set()  # requested once, not on every tick
    ticks.run(*EVALUATION)
    assert ticks.tick() == {TEACHER}  # the new decision is acted on, once
    assert ticks.tick() == set()
    ticks.run(TEACHER)
    assert ticks.tick() == set()
    ticks.run(SFT_DATASET)  # a new dataset alone re-evaluates nothing
    assert ticks.tick() == set()
    ticks.run(FINETUNED_CHECKPOINT)
    assert ticks.tick() == set(EVALUATION)


def test_the_evaluate_group_carries_the_condition_and_its_sensor_runs_by_default():
    from definitions import defs

    graph = defs.get_repository_def().asset_graph
    for key in EVALUATION:
        assert graph.get(dg.AssetKey(key)).automation_condition == AFTER_NEW_CHECKPOINT
    assert graph.get(dg.AssetKey(TEACHER)).automation_condition == AFTER_NEW_DECISION
    assert graph.get(dg.AssetKey(FINETUNED_CHECKPOINT)).automation_condition is None
    sensor = defs.get_sensor_def(evaluation_automation.name)
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.asset_selection.resolve(graph) == {dg.AssetKey(k) for k in (*EVALUATION, TEACHER)}
    assert sensor.run_tags == {"crucible/gpu": "true"}
    assert {s.name for s in defs.sensors} == {"seed_source_sensor", "evaluation_automation"}
    assert graph.get(dg.AssetKey(BENCHMARK_SCORES)).group_name == EVALUATE
