"""The long-term store, scoped per user: every namespace a caller sees lives under their user id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from langgraph.store.base import Item, SearchItem

from api.deps import ApiDep, UserDep
from api.schemas import (
    NAMESPACE_LABEL_RE,
    ErrorBody,
    Namespaces,
    SearchItems,
    StoreDelete,
    StoreNamespaces,
    StorePut,
    StoreSearch,
)
from api.schemas import Item as ItemOut
from api.threads import jsonable

router = APIRouter(tags=["store"], responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})


def _scoped(user: str, namespace: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return (user, *namespace)


def _item(item: Item | SearchItem) -> dict[str, Any]:
    out: dict[str, Any] = {
        "namespace": list(item.namespace[1:]),
        "key": item.key,
        "value": jsonable(item.value),
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }
    if isinstance(item, SearchItem):
        out["score"] = item.score
    return out


@router.put("/store/items", status_code=204)
async def put_item(api: ApiDep, user: UserDep, body: StorePut) -> Response:
    """Store or replace an item."""
    index: Any = body.index if body.index is not None else None
    await api.runtime.store.aput(_scoped(user, body.namespace), body.key, body.value, index=index)
    return Response(status_code=204)


@router.get("/store/items", response_model=ItemOut)
async def get_item(
    api: ApiDep,
    user: UserDep,
    namespace: Annotated[str, Query(description="namespace labels joined by '.'")],
    key: Annotated[str, Query(min_length=1)],
    refresh_ttl: bool | None = None,
) -> dict[str, Any]:
    """Return one item."""
    labels = namespace.split(".") if namespace else []
    if not labels or not all(NAMESPACE_LABEL_RE.match(label) for label in labels):
        raise HTTPException(422, "namespace must be one or more labels joined by '.'")
    item = await api.runtime.store.aget(_scoped(user, labels), key)
    if item is None:
        raise HTTPException(404, f"no item {key!r} in namespace {namespace!r}")
    return _item(item)


@router.delete("/store/items", status_code=204)
async def delete_item(api: ApiDep, user: UserDep, body: StoreDelete) -> Response:
    """Delete an item (deleting a missing item is not an error)."""
    await api.runtime.store.adelete(_scoped(user, body.namespace), body.key)
    return Response(status_code=204)


@router.post("/store/items/search", response_model=SearchItems)
async def search_items(api: ApiDep, user: UserDep, body: StoreSearch) -> dict[str, Any]:
    """Search items under a namespace prefix by filter and, with `query`, by meaning."""
    try:
        found = await api.runtime.store.asearch(
            _scoped(user, body.namespace_prefix),
            query=body.query,
            filter=body.filter,
            limit=body.limit,
            offset=body.offset,
        )
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, f"invalid search: {exc}") from exc
    return {"items": [_item(i) for i in found]}


@router.post("/store/namespaces", response_model=Namespaces)
async def list_namespaces(api: ApiDep, user: UserDep, body: StoreNamespaces) -> dict[str, Any]:
    """List the caller's namespaces."""
    found = await api.runtime.store.alist_namespaces(
        prefix=_scoped(user, body.prefix or []),
        suffix=tuple(body.suffix) if body.suffix else None,
        max_depth=body.max_depth + 1 if body.max_depth else None,
        limit=body.limit,
        offset=body.offset,
    )
    return {"namespaces": [list(ns[1:]) for ns in found]}
