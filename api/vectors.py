"""A file cache of query-mode embeddings for card examples, so start-up does not re-embed the roster."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nodes.embeddings import Embedder, Matrix, query_matrix


class FileVectorCache:
    """Vectors keyed by text hash in one `.npz` per embedder under NOVA_HOME/cache; writes are atomic."""

    def __init__(self, directory: Path, embed: Embedder) -> None:
        self.embed = embed
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", embed.name)
        self.path = directory / f"vectors-{safe}-{embed.dim}.npz"
        self._lock = threading.Lock()
        self._data: dict[bytes, np.ndarray] = self._load()

    def _load(self) -> dict[bytes, np.ndarray]:
        try:
            with np.load(self.path) as npz:
                keys, vecs = npz["keys"], npz["vectors"]
        except (OSError, KeyError, ValueError):
            return {}
        if vecs.ndim != 2 or vecs.shape[1] != self.embed.dim:
            return {}
        return {bytes(k): v for k, v in zip(keys, vecs, strict=True)}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.asarray(list(self._data), dtype="S16")
        vecs = np.vstack(list(self._data.values())).astype(np.float32)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, keys=keys, vectors=vecs)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __call__(self, texts: Sequence[str]) -> Matrix:
        """Return query-mode vectors for texts, embedding only the ones not cached yet."""
        hashes = [hashlib.sha256(t.encode("utf-8")).digest()[:16] for t in texts]
        with self._lock:
            missing = sorted({i for i, h in enumerate(hashes) if h not in self._data}, key=int)
            if missing:
                fresh = query_matrix(self.embed, [texts[i] for i in missing])
                for j, i in enumerate(missing):
                    self._data[hashes[i]] = fresh[j]
                self._save()
            if not texts:
                return np.zeros((0, self.embed.dim), dtype=np.float32)
            return np.vstack([self._data[h] for h in hashes]).astype(np.float32)
