"""The graphs the API serves, each with one default assistant whose id is derived from the graph name."""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import TypeAdapter, ValidationError

from state.context import Context

log = logging.getLogger(__name__)

# The namespace LangGraph Server derives default assistant ids from, so ids match across servers.
ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
LANGGRAPH_JSON = Path(__file__).resolve().parents[1] / "langgraph.json"

Graph = CompiledStateGraph[Any, Any, Any, Any]


_CONTEXT: TypeAdapter[Context] = TypeAdapter(Context)  # building one costs ~0.5 ms; runs need it twice


class CatalogError(ValueError):
    """A graph could not be loaded."""


class ContextError(ValueError):
    """A run asked for a context the graph does not accept."""


def assistant_id_for(graph_id: str) -> str:
    """Return the default assistant id of a graph."""
    return str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_id))


@dataclass
class GraphEntry:
    """A served graph and its default assistant."""

    graph_id: str
    graph: Graph
    description: str | None = None
    assistant_id: str = ""
    nodes: frozenset[str] = frozenset()
    input_keys: frozenset[str] | None = None
    state_keys: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.assistant_id = assistant_id_for(self.graph_id)
        self.nodes = frozenset(n for n in self.graph.nodes if not n.startswith("__"))
        self.state_keys = frozenset(self.graph.builder.channels) | frozenset(self.graph.builder.managed)
        try:
            props = self.graph.get_input_jsonschema().get("properties")
            self.input_keys = frozenset(props) if isinstance(props, dict) else None
        except Exception:  # a schema pydantic cannot describe: accept any keys
            self.input_keys = None

    def assistant(self, created_at: datetime) -> dict[str, Any]:
        """Return the API's Assistant object."""
        return {
            "assistant_id": self.assistant_id,
            "graph_id": self.graph_id,
            "config": {},
            "context": {},
            "metadata": {"created_by": "system"},
            "name": self.graph_id,
            "description": self.description,
            "version": 1,
            "created_at": created_at,
            "updated_at": created_at,
        }

    def schemas(self) -> dict[str, Any]:
        """Return the JSON schemas of input, output, state and context."""
        builder = self.graph.builder

        def attempt(make: Any) -> dict[str, Any] | None:
            try:
                out: dict[str, Any] = make()
                return out
            except Exception as exc:
                log.info("no JSON schema for %s: %s", self.graph_id, exc)
                return None

        return {
            "graph_id": self.graph_id,
            "input_schema": attempt(self.graph.get_input_jsonschema),
            "output_schema": attempt(self.graph.get_output_jsonschema),
            "state_schema": attempt(lambda: TypeAdapter(builder.state_schema).json_schema()),
            "config_schema": None,
            "context_schema": attempt(self.graph.get_context_jsonschema) if builder.context_schema else None,
        }

    def context(self, defaults: Context, overrides: dict[str, Any]) -> Any:
        """Return the run context: the user's defaults with the allowed overrides applied."""
        schema = self.graph.builder.context_schema
        if "user_id" in overrides:
            raise ContextError("context.user_id comes from the API key and cannot be set")
        if schema is None:
            if overrides:
                raise ContextError(f"graph {self.graph_id} takes no context")
            return None
        if schema is Context:
            if not overrides:  # the user's defaults are a valid Context already
                return defaults
            known = {f.name for f in dataclasses.fields(Context)}
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise ContextError(f"unknown context keys {unknown}; accepted: {sorted(known - {'user_id'})}")
            merged = {**dataclasses.asdict(defaults), **overrides}
            try:
                return _CONTEXT.validate_python(merged)
            except ValidationError as exc:
                raise ContextError(str(exc).replace("\n", " ")) from exc
        try:
            return TypeAdapter(schema).validate_python(overrides)
        except ValidationError as exc:
            raise ContextError(str(exc).replace("\n", " ")) from exc


@dataclass
class GraphCatalog:
    """Every served graph by id; assistant ids and graph names both resolve."""

    entries: dict[str, GraphEntry] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=UTC))

    def __iter__(self) -> Iterator[GraphEntry]:
        return iter(self.entries.values())

    def resolve(self, assistant_or_graph: str) -> GraphEntry | None:
        """Return the graph an assistant id or graph name refers to."""
        if assistant_or_graph in self.entries:
            return self.entries[assistant_or_graph]
        return next((e for e in self.entries.values() if e.assistant_id == assistant_or_graph), None)

    def add(self, graph_id: str, graph: Graph, description: str | None = None) -> None:
        """Serve a compiled graph."""
        self.entries[graph_id] = GraphEntry(graph_id, graph, description)


def load_graph(ref: str, *, checkpointer: Any, store: Any, name: str) -> Graph:
    """Import `module:attr` or `./path/file.py:attr` and compile it with the API's checkpointer and store."""
    target, _, attr = ref.partition(":")
    if not attr:
        raise CatalogError(f"graph reference {ref!r} must look like module:attr")
    module_name = target
    if target.endswith(".py"):
        module_name = target.removeprefix("./").removesuffix(".py").replace("/", ".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise CatalogError(f"cannot load graph {name} from {ref}: {exc}") from exc
    if callable(obj) and not isinstance(obj, StateGraph | CompiledStateGraph):
        obj = obj()
    if isinstance(obj, CompiledStateGraph):
        obj = obj.builder
    if not isinstance(obj, StateGraph):
        raise CatalogError(f"graph {name} ({ref}) is a {type(obj).__name__}, not a StateGraph")
    compiled: Graph = obj.compile(checkpointer=checkpointer, store=store, name=name)
    return compiled


DESCRIPTIONS = {
    "nova": "Routes each request to one specialist agent, or asks which one was meant.",
    "pipeline": "Runs a named multi-step pipeline (input: pipeline, args) with review gates and resume.",
}


def build_catalog(
    graphs: Graph | Mapping[str, Graph],
    *,
    checkpointer: Any,
    store: Any,
    extra: str = "",
    config_file: Path = LANGGRAPH_JSON,
) -> GraphCatalog:
    """Serve the runtime's graphs, the other graphs of langgraph.json, and `extra` (`name=module:attr,...`)."""
    catalog = GraphCatalog()
    served = {"nova": graphs} if isinstance(graphs, CompiledStateGraph) else dict(graphs)
    for name, graph in served.items():
        catalog.add(name, graph, DESCRIPTIONS.get(name))
    refs: dict[str, str] = {}
    if config_file.exists():
        declared = json.loads(config_file.read_text(encoding="utf-8")).get("graphs", {})
        refs.update({k: v for k, v in declared.items() if k not in served and isinstance(v, str)})
    for part in filter(None, (p.strip() for p in extra.split(","))):
        name, sep, ref = part.partition("=")
        if not sep or not name.strip() or not ref.strip():
            raise CatalogError(f"NOVA_API_GRAPHS entry {part!r} must look like name=module:attr")
        refs[name.strip()] = ref.strip()
    for name, ref in refs.items():
        catalog.add(name, load_graph(ref, checkpointer=checkpointer, store=store, name=name))
    return catalog
