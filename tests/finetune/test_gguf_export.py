"""finetune/gguf_export.py: a tiny random Llama checkpoint (byte-level BPE trained here, a chat template with
generation markers) converted by llama.cpp's own converter, quantized to q8_0, cached, and served by llama.cpp; the
chat template without markers; one-line errors for a folder without weights, an unknown quantization, a missing or
failing converter.

The converter is installed by `make setup` (finetune/install_converter.py): its absence is a failure, not a skip.
The served model's text is noise (random weights): only the response's shape and the model name are checked.
"""

from __future__ import annotations

import json
import shutil
import sys

import openai
import pytest

from finetune.gguf_export import (
    GGUFExportError,
    converter_path,
    export_gguf,
    gpt2_fallback,
    strip_generation_markers,
)
from resources.files import model_files_sha256
from tests.eval.test_backends import tiny_checkpoint

# ChatML as the training recipes write it: the assistant's content between generation markers.
TRAINING_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
CHAT = [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "Add two numbers."},
        {"role": "assistant", "content": "def add(a, b):\n    return a + b"}]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-student", chat_template=TRAINING_TEMPLATE)


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (the offline extra) quantizes and serves GGUF files")
    converter_path()  # not installed: a failure naming `make setup`, never a skip
    return export_gguf(checkpoint, tmp_path_factory.mktemp("gguf"), "q8_0")


@pytest.mark.parametrize(("template", "expected"), [
    ("a{% generation %}b{% endgeneration %}c", "abc"),
    ("a {%- generation %} b {%- endgeneration -%} c", "a bc"),  # what `-` ate stays eaten
    ("a\n  {%-generation-%}\n b{%endgeneration%} c", "ab c"),
    ("{% if x %}{{ generation }}{% endif %}", "{% if x %}{{ generation }}{% endif %}"),  # a variable is no marker
])
def test_generation_markers_are_removed_with_their_whitespace_control(template, expected):
    assert strip_generation_markers(template) == expected


def test_the_stripped_template_renders_exactly_like_the_training_one(checkpoint):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    stripped = strip_generation_markers(TRAINING_TEMPLATE)
    assert "generation %}" not in stripped
    for prompt in (False, True):
        assert (tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=prompt)
                == tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=prompt,
                                                 chat_template=stripped))


@pytest.mark.slow
def test_a_checkpoint_is_converted_quantized_and_served(checkpoint, exported, tmp_path):
    from resources.llm_server import LocalTeacherServer

    assert exported.path.name == "tiny-student.q8_0.gguf" and exported.path.read_bytes()[:4] == b"GGUF"
    assert not exported.cached and exported.quantization == "q8_0" and exported.convert_s > 0
    assert exported.source_sha256 == model_files_sha256(checkpoint)
    assert sorted(p.name for p in exported.path.parent.iterdir() if not p.name.startswith(".")) == [
        "tiny-student.q8_0.gguf", "tiny-student.q8_0.gguf.json"]  # no partial files left behind
    with LocalTeacherServer(exported.path, n_ctx=512, log_dir=tmp_path) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", timeout=120, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model=server.model, max_tokens=8, temperature=0, messages=CHAT[:2])
        reply = raw.parse()
    assert raw.http_response.status_code == 200
    assert server.model == exported.path.stem == "tiny-student.q8_0" and reply.model == server.model
    assert reply.object == "chat.completion" and reply.choices[0].message.role == "assistant"
    assert isinstance(reply.choices[0].message.content, str) and reply.usage.prompt_tokens > 0


@pytest.mark.slow
def test_the_gguf_carries_the_template_without_markers_and_the_gpt2_pre_tokenizer(checkpoint, exported):
    sys.path.insert(0, str(converter_path().parent / "gguf-py"))  # the reader of the same release as the writer
    try:
        from gguf import GGUFReader
    finally:
        sys.path.pop(0)

    fields = GGUFReader(exported.path).fields

    def text(key: str) -> str:
        field = fields[key]
        return bytes(field.parts[field.data[0]]).decode()

    assert text("tokenizer.chat_template") == strip_generation_markers(TRAINING_TEMPLATE)
    # llama.cpp does not know this locally trained vocabulary's hash; its tokenizer.json says GPT-2 byte-level.
    assert gpt2_fallback(checkpoint) == "gpt-2" and text("tokenizer.ggml.pre") == "gpt-2"
    assert "{%- generation %}" in (checkpoint / "chat_template.jinja").read_text()  # the checkpoint is untouched


@pytest.mark.slow
def test_a_second_export_of_the_same_files_is_cached(checkpoint, exported, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_GGUF_CONVERTER", "/nonexistent/convert_hf_to_gguf.py")  # any work would fail
    again = export_gguf(checkpoint, exported.path.parent, "q8_0")
    assert again.cached and again.path == exported.path and again.sha256 == exported.sha256
    assert (again.convert_s, again.quantize_s) == (0.0, 0.0)
    record = json.loads(exported.path.with_name(exported.path.name + ".json").read_text())
    assert record["source_sha256"] == exported.source_sha256 and record["quantization"] == "q8_0"


def test_a_folder_without_weights_says_the_recipe_must_merge(checkpoint, tmp_path):
    adapter_only = tmp_path / "adapter-only"
    adapter_only.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(checkpoint / name, adapter_only / name)
    (adapter_only / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(GGUFExportError, match=r"no model weights.*`lora\.merge: true`") as info:
        export_gguf(adapter_only, tmp_path / "out")
    assert "\n" not in str(info.value)


def test_an_unknown_quantization_lists_the_choices(checkpoint, tmp_path):
    with pytest.raises(GGUFExportError) as info:
        export_gguf(checkpoint, tmp_path, "q3_xs")
    assert str(info.value) == "unknown quantization 'q3_xs': choose one of q8_0, q4_k_m, q4_0, q5_k_m, f16"


def test_a_missing_converter_names_make_setup(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_GGUF_CONVERTER", str(tmp_path / "convert_hf_to_gguf.py"))
    with pytest.raises(GGUFExportError, match=r"not installed at .*convert_hf_to_gguf\.py: run `make setup`"):
        export_gguf(checkpoint, tmp_path / "out")


def test_a_failing_converter_is_one_line_with_its_stderr_tail(checkpoint, tmp_path, monkeypatch):
    fake = tmp_path / "convert_hf_to_gguf.py"
    fake.write_text("import sys\nprint('loading', file=sys.stderr)\nprint('KeyError: rope_theta', file=sys.stderr)\n"
                    "sys.exit(1)\n")
    monkeypatch.setenv("CRUCIBLE_GGUF_CONVERTER", str(fake))
    out = tmp_path / "out"
    with pytest.raises(GGUFExportError) as info:
        export_gguf(checkpoint, out)
    message = str(info.value)
    assert "converter failed" in message and "exit 1" in message and "KeyError: rope_theta" in message
    assert "\n" not in message
    assert [p.name for p in out.iterdir() if p.suffix != ".lock"] == []  # nothing half-written


def test_the_converter_install_takes_only_its_files_from_the_sdist_once(tmp_path):
    import io
    import tarfile

    from finetune.install_converter import install

    sdist = tmp_path / "llama_cpp_python-9.9.9.tar.gz"
    top = "llama_cpp_python-9.9.9/vendor/llama.cpp/"
    with tarfile.open(sdist, "w:gz") as archive:
        for name in ("convert_hf_to_gguf.py", "LICENSE", "conversion/base.py", "gguf-py/gguf/__init__.py",
                     "src/llama.cpp", "conversion/../../escape.py"):
            data = f"# {name}\n".encode()
            member = tarfile.TarInfo(top + name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    dest = tmp_path / "share" / "llama.cpp"
    assert "installed" in install(dest, "9.9.9", sdist)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == ["LICENSE", "VERSION", "conversion/base.py", "convert_hf_to_gguf.py", "gguf-py/gguf/__init__.py"]
    assert (dest / "VERSION").read_text() == "9.9.9\n" and not (tmp_path / "share" / "escape.py").exists()
    assert "already installed" in install(dest, "9.9.9", tmp_path / "never-read.tar.gz")
