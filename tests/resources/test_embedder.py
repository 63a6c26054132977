"""resources/embedder.py: the bundled MiniLM, offline, normalised vectors, the content-hash cache, bf16."""

import numpy as np
import pytest

from resources.cpu_features import native_bf16_cpu
from resources.embedder import BUNDLED, Embedder, TextEmbedder, bundled_model_dir, resolve_precision

TEXTS = [
    "Return the n-th Fibonacci number.",
    "Compute the greatest common divisor of two integers.",
    "Parse an INI file into a dictionary of sections.",
    "Return the n-th Fibonacci number.",
]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # The bundled model must load with the Hub unreachable.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_bundled_model_ships_in_the_wheel():
    assert (bundled_model_dir() / "model.safetensors").is_file()


def test_vectors_are_normalised_and_related_texts_are_closer(tmp_path):
    embedder = TextEmbedder(cache_path=tmp_path / "e.sqlite")
    vectors = embedder.encode(TEXTS + ["Give the nth number of the Fibonacci sequence."])
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[3])
    sims = vectors @ vectors.T
    assert sims[0, 4] > sims[0, 1] and sims[0, 4] > sims[0, 2]
    assert embedder.encoded == 4  # the repeated text was embedded once
    assert embedder.encode([]).shape == (0, 384)


def test_cache_serves_repeats_across_instances(tmp_path):
    path = tmp_path / "e.sqlite"
    first = TextEmbedder(precision="bfloat16", cache_path=path)
    a = first.encode(TEXTS)
    assert first.encoded == 3
    first.encode(TEXTS[:2])
    assert first.encoded == 3
    second = TextEmbedder(precision="bfloat16", cache_path=path)
    b = second.encode(list(reversed(TEXTS)))
    assert second.encoded == 0 and np.array_equal(b, a[::-1])
    # Another precision is another key: nothing is served across precisions.
    other = TextEmbedder(precision="float32", cache_path=path)
    other.encode(TEXTS[:1])
    assert other.encoded == 1


def test_bfloat16_matches_float32(tmp_path):
    """bf16 (what "auto" picks on a GPU or a CPU with native bf16) against fp32 on the same texts."""
    texts = TEXTS[:3] + ["Sort the rows of a matrix by their sums.", "Check whether a string is a palindrome."]
    fp32 = TextEmbedder(precision="float32", cache=False).encode(texts)
    bf16 = TextEmbedder(precision="bfloat16", cache=False).encode(texts)
    assert (fp32 * bf16).sum(axis=1).min() > 0.995
    assert np.abs(fp32 @ fp32.T - bf16 @ bf16.T).max() < 0.01


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16"):
        TextEmbedder(precision="int4", cache=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TextEmbedder(model=str(tmp_path / "no" / "model"), cache=False)


def test_auto_precision_follows_the_hardware(tmp_path):
    with_bf16, without = tmp_path / "bf16", tmp_path / "avx2"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert native_bf16_cpu(with_bf16) and not native_bf16_cpu(without) and not native_bf16_cpu(tmp_path / "none")
    assert resolve_precision("auto", "cuda") == "bfloat16" and resolve_precision("float32", "cuda") == "float32"
    here = "bfloat16" if native_bf16_cpu() else "float32"
    assert TextEmbedder(precision="auto", cache=False).precision == here == resolve_precision("auto")
    assert f"|{here}|" in TextEmbedder(precision="auto", cache=False).identity


def test_a_model_folder_loads(tmp_path):
    embedder = TextEmbedder(model=str(bundled_model_dir()), cache_path=tmp_path / "e.sqlite")
    bundled = TextEmbedder(model=BUNDLED, cache_path=tmp_path / "e.sqlite")
    assert embedder.identity != bundled.identity
    assert np.allclose(embedder.encode(TEXTS[:1]), bundled.encode(TEXTS[:1]), atol=1e-6)


def test_resource(tmp_path):
    resource = Embedder(cache_path=str(tmp_path / "e.sqlite"), batch_size=2)
    assert resource.encode(TEXTS).shape == (4, 384)
    assert (tmp_path / "e.sqlite").is_file()
