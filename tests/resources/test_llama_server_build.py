"""resources/llama_server_build.py without compiling: the build key, the copy from the user cache, the stamp, the
source taken from the sdist, and one-line refusals. The real build is `make setup`'s, and the tests of
tests/resources/test_llm_server.py run the binary it made."""

import io
import tarfile

import pytest

from resources import llama_server_build as build
from resources.llama_sdist import InstallError


def fake_binary(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho fake llama-server\n")
    path.chmod(0o755)
    return path


def test_the_key_follows_version_and_flags():
    key = build.build_key("0.3.36", "-mno-amx-tile")
    assert key.startswith("0.3.36-") and key == build.build_key("0.3.36", "-mno-amx-tile")
    assert key != build.build_key("0.3.36", "") and key != build.build_key("0.3.37", "-mno-amx-tile")


def test_a_cached_build_is_copied_stamped_and_then_left_alone(tmp_path):
    cache, dest = tmp_path / "cache", tmp_path / "venv" / "bin" / "llama-server"
    key = build.build_key("9.9.9", "-O2")
    fake_binary(cache / key / "llama-server")
    assert "copied from" in build.install(dest, "9.9.9", "-O2", cache=cache)
    assert dest.read_text().endswith("echo fake llama-server\n") and build.is_current(dest, key)
    assert build.stamp_path(dest).read_text() == key + "\n"
    assert "already installed" in build.install(dest, "9.9.9", "-O2", cache=cache)
    # Other flags make another build, from the sdist of the installed release only.
    with pytest.raises(InstallError, match="is not the sdist of the installed llama-cpp-python 9.9.9"):
        build.install(dest, "9.9.9", "-O3", sdist=tmp_path / "llama_cpp_python-1.0.0.tar.gz", cache=cache)
    assert build.is_current(dest, key)  # what was installed is still there


def test_only_the_vendored_llama_cpp_is_extracted(tmp_path):
    sdist = tmp_path / "llama_cpp_python-9.9.9.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name in ("vendor/llama.cpp/CMakeLists.txt", "vendor/llama.cpp/tools/server/server.cpp",
                     "llama_cpp/llama.py"):
            data = f"# {name}\n".encode()
            member = tarfile.TarInfo(f"llama_cpp_python-9.9.9/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    source = build.extract_source(sdist, tmp_path / "src")
    assert source == tmp_path / "src" / "llama_cpp_python-9.9.9" / "vendor" / "llama.cpp"
    files = sorted(str(p.relative_to(tmp_path / "src")) for p in (tmp_path / "src").rglob("*") if p.is_file())
    assert files == ["llama_cpp_python-9.9.9/vendor/llama.cpp/CMakeLists.txt",
                     "llama_cpp_python-9.9.9/vendor/llama.cpp/tools/server/server.cpp"]


def test_an_sdist_without_llama_cpp_is_one_line(tmp_path):
    sdist = tmp_path / "llama_cpp_python-9.9.9.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        member = tarfile.TarInfo("llama_cpp_python-9.9.9/setup.py")
        archive.addfile(member, io.BytesIO(b""))
    with pytest.raises(InstallError, match="has no vendor/llama.cpp") as info:
        build.extract_source(sdist, tmp_path / "src")
    assert "\n" not in str(info.value)


def test_the_command_line_names_a_missing_sdist(tmp_path, capsys):
    assert build.main(["--sdist", str(tmp_path / "nope.tar.gz"), "--dest", str(tmp_path / "llama-server")]) == 1
    assert "nope.tar.gz: no such sdist file" in capsys.readouterr().err
