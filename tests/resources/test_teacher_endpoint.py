"""The teacher endpoint: concurrency and timeout decided in one place (the bundled model's server takes as many
requests at a time as it has slots, and each gets at least 900 s), and where requests go (a server's URL, or the
bundled model's server, started only when a request needs it). The bundled server is a spy here
(tests/llm_server_spy.py); nothing loads a model."""


import pytest

from resources import llm_server
from resources.bundled_models import BUNDLED_MODELS, DEFAULT_MODEL
from resources.llm import TeacherLLM
from resources.llm_server import LocalTeacher, TeacherServerError
from resources.teacher_endpoint import BUNDLED_MIN_TIMEOUT_S, TeacherEndpoint
from tests.llm_server_spy import spy_servers

SLOTS = 3


@pytest.fixture
def servers(monkeypatch):
    return spy_servers(monkeypatch, port=4321, slots=SLOTS)


def never_started():
    raise AssertionError("an endpoint with a base URL must not start the bundled model's server")


def test_a_bundled_endpoint_sends_as_many_requests_as_its_server_has_slots_and_waits_long(servers, monkeypatch):
    endpoint = TeacherEndpoint(bundled="smollm2-135m", concurrency=16, timeout_s=60.0)
    assert endpoint.is_bundled and endpoint.kind == "bundled"
    assert endpoint.requests_in_flight == SLOTS
    monkeypatch.setattr(llm_server, "DEFAULT_ENGINE", "python")
    assert endpoint.requests_in_flight == 1  # llama-cpp-python's server decodes one sequence at a time
    monkeypatch.setattr(llm_server, "DEFAULT_ENGINE", "llama-server")
    monkeypatch.setenv("CRUCIBLE_TEACHER_SLOTS", "many")
    with pytest.raises(ValueError, match="CRUCIBLE_TEACHER_SLOTS must be a whole number >= 1, got 'many'"):
        endpoint.requests_in_flight
    assert endpoint.request_timeout_s == BUNDLED_MIN_TIMEOUT_S >= 900
    assert TeacherEndpoint(timeout_s=2000.0).request_timeout_s == 2000.0  # a longer configured timeout is kept
    assert servers.started == []  # deciding needed no server


def test_an_endpoint_with_a_base_url_keeps_its_configured_concurrency_and_timeout():
    endpoint = TeacherEndpoint(base_url="http://10.0.0.5:8000/v1", model="coder", api_key="k", concurrency=5,
                               timeout_s=42.0)
    assert not endpoint.is_bundled and endpoint.kind == "openai"
    assert (endpoint.requests_in_flight, endpoint.request_timeout_s) == (5, 42.0)
    client = endpoint.client(never_started, max_attempts=2)
    assert (client.base_url, client.model, client.api_key) == ("http://10.0.0.5:8000/v1", "coder", "k")
    assert (client.concurrency, client.timeout_s, client.max_attempts) == (5, 42.0, 2)
    assert endpoint.label == "coder" and endpoint.model_sha256() is None
    assert TeacherEndpoint(base_url="http://10.0.0.5:8000/v1").label == "default"


def test_a_bundled_endpoint_sends_to_its_started_server(servers):
    endpoint = TeacherEndpoint(bundled="smollm2-135m")
    with pytest.raises(TeacherServerError, match="smollm2-135m"):
        endpoint.client()  # no server to send to
    with endpoint.serving() as client:
        assert servers.started == ["smollm2-135m"] and servers.closed == []
        assert (client.base_url, client.model) == ("http://127.0.0.1:4321/v1", "smollm2-135m")
        assert (client.concurrency, client.timeout_s) == (SLOTS, BUNDLED_MIN_TIMEOUT_S)
    assert servers.closed == ["smollm2-135m"]
    assert endpoint.model_sha256() == BUNDLED_MODELS["smollm2-135m"].sha256


def test_serving_an_endpoint_with_a_base_url_starts_nothing(servers):
    with TeacherEndpoint(base_url="http://10.0.0.5:8000/v1", model="coder").serving() as client:
        assert client.base_url == "http://10.0.0.5:8000/v1"
    assert servers.started == []


@pytest.mark.parametrize(("text", "bundled"), [("bundled", DEFAULT_MODEL), ("bundled:smollm2-135m", "smollm2-135m"),
                                               ("bundled:/models/x.gguf", "/models/x.gguf"), ("gpt-4o", None),
                                               ("/checkpoints/run-1", None)])
def test_the_command_line_label_of_a_bundled_model(text, bundled):
    endpoint = TeacherEndpoint.from_label(text)
    assert (endpoint.bundled if endpoint else None) == bundled
    if endpoint is not None:
        assert endpoint.is_bundled and TeacherEndpoint.from_label(endpoint.label) == endpoint


def test_the_teacher_resource_starts_its_bundled_server_once(servers):
    teacher = TeacherLLM(local=LocalTeacher(model="smollm2-135m"), concurrency=8, timeout_s=10.0, max_attempts=3)
    assert teacher.endpoint == TeacherEndpoint(bundled="smollm2-135m", concurrency=8, timeout_s=10.0)
    assert servers.started == []  # started on first use, not when configured
    first, second = teacher.client(), teacher.client()
    assert servers.started == ["smollm2-135m"]
    assert first.base_url == second.base_url == teacher.local.server().base_url
    assert (first.concurrency, first.timeout_s, first.max_attempts) == (SLOTS, BUNDLED_MIN_TIMEOUT_S, 3)
    teacher.local.teardown_after_execution(None)
    assert servers.closed == ["smollm2-135m"]


def test_the_teacher_resource_with_a_base_url_uses_its_configured_concurrency(servers):
    teacher = TeacherLLM(base_url="http://10.0.0.5:8000/v1", model="coder", concurrency=3, timeout_s=30.0)
    client = teacher.client()
    assert (client.base_url, client.model, client.concurrency, client.timeout_s) == (
        "http://10.0.0.5:8000/v1", "coder", 3, 30.0)
    assert servers.started == []
