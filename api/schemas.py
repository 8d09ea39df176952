"""HTTP models: the LangGraph Server API subset Nova speaks, plus Nova's own endpoints.

Request models forbid unknown fields, and fields of the LangGraph API that Nova does not implement are
accepted by name only to be refused with a 422 that says so, rather than silently ignored.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

StreamModeName = Literal["values", "updates", "messages-tuple", "custom"]
MultitaskStrategy = Literal["reject", "enqueue", "interrupt", "rollback"]
RunStatus = Literal["pending", "running", "success", "error", "interrupted", "timeout"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
SortOrder = Literal["asc", "desc"]

THREAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
NAMESPACE_LABEL_RE = re.compile(r"^[^.\x00-\x1f]{1,128}$")


class RequestBody(BaseModel):
    """A request body: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unsupported: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> RequestBody:
        used = [name for name in self.unsupported if getattr(self, name) not in (None, False, [], {})]
        if used:
            raise ValueError(f"not supported by this server: {', '.join(used)}")
        return self


def _check_thread_id(value: str) -> str:
    if not THREAD_ID_RE.match(value):
        raise ValueError("thread_id must be 1-128 characters: letters, digits and . _ : @ -, starting alphanumeric")
    return value


def _check_namespace(value: list[str]) -> list[str]:
    for label in value:
        if not NAMESPACE_LABEL_RE.match(label):
            raise ValueError(f"namespace label {label!r} must be 1-128 characters without '.' or control characters")
    return value


ThreadId = Annotated[str, AfterValidator(_check_thread_id)]
Namespace = Annotated[list[str], AfterValidator(_check_namespace)]


class CheckpointRef(BaseModel):
    """A checkpoint named by the client."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoint_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class RunConfig(BaseModel):
    """The parts of a LangGraph config a run may set; per-run knobs belong in `context`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tags: list[str] | None = None
    recursion_limit: int | None = Field(default=None, ge=1, le=10_000)
    configurable: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    run_name: str | None = None

    @field_validator("configurable")
    @classmethod
    def _configurable_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        extra = set(value or {}) - {"thread_id", "checkpoint_id", "checkpoint_ns"}
        if extra:
            raise ValueError(
                f"unsupported configurable keys {sorted(extra)}: per-run settings go in `context`"
                " (thread_id, checkpoint_id and checkpoint_ns are accepted)"
            )
        return value


class RunCommand(BaseModel):
    """`Command` as JSON: resume a pending interrupt, update state, or go to nodes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resume: Any = None
    update: dict[str, Any] | list[tuple[str, Any]] | None = None
    goto: str | dict[str, Any] | list[str | dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> RunCommand:
        if not self.model_fields_set & {"resume", "update", "goto"}:
            raise ValueError("a command needs at least one of resume, update, goto")
        return self


class RunCreate(RequestBody):
    """Create a run (background, wait or stream)."""

    unsupported: ClassVar[tuple[str, ...]] = (
        "feedback_keys",
        "webhook",
        "checkpoint_during",
        "after_seconds",
        "langsmith_tracer",
        "stream_resumable",
    )

    assistant_id: str = Field(min_length=1, max_length=200)
    input: dict[str, Any] | None = None
    command: RunCommand | None = None
    config: RunConfig | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: StreamModeName | list[StreamModeName] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = None
    multitask_strategy: MultitaskStrategy = "reject"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    strict_resume: bool | None = None
    feedback_keys: list[str] | None = None
    webhook: str | None = None
    checkpoint_during: bool | None = None
    after_seconds: float | None = None
    langsmith_tracer: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _input_or_command(self) -> RunCreate:
        if self.input is not None and self.command is not None:
            raise ValueError("send either input or command, not both")
        return self

    @property
    def modes(self) -> list[str]:
        """Return the requested stream modes as a list without repeats."""
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else list(self.stream_mode)
        return list(dict.fromkeys(modes)) or ["values"]


class ThreadCreate(RequestBody):
    """Create a thread."""

    unsupported: ClassVar[tuple[str, ...]] = ("supersteps", "ttl")

    thread_id: ThreadId | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[Any] | None = None
    ttl: Any = None


class ThreadSearch(RequestBody):
    """Search the caller's threads."""

    unsupported: ClassVar[tuple[str, ...]] = ("values", "extract")

    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = Field(default=None, max_length=1000)
    status: ThreadStatus | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "updated_at"
    sort_order: SortOrder = "desc"
    select: (
        list[Literal["thread_id", "created_at", "updated_at", "metadata", "status", "values", "interrupts"]] | None
    ) = None
    extract: dict[str, Any] | None = None


class ThreadCount(RequestBody):
    """Count the caller's threads."""

    unsupported: ClassVar[tuple[str, ...]] = ("values",)

    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: ThreadStatus | None = None


class ThreadPatch(RequestBody):
    """Merge metadata into a thread."""

    unsupported: ClassVar[tuple[str, ...]] = ("ttl",)

    metadata: dict[str, Any] = Field(default_factory=dict)
    ttl: Any = None


class ThreadStateUpdate(RequestBody):
    """Write state as if a node had produced it."""

    values: dict[str, Any] | list[dict[str, Any]] | None = None
    as_node: str | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = None


class ThreadStateAt(RequestBody):
    """Read the state at a checkpoint."""

    unsupported: ClassVar[tuple[str, ...]] = ("select",)

    checkpoint: CheckpointRef
    subgraphs: bool = False
    select: list[str] | None = None


class ThreadHistory(RequestBody):
    """Page through a thread's checkpoints, newest first."""

    unsupported: ClassVar[tuple[str, ...]] = ("select",)

    limit: int = Field(default=10, ge=1, le=1000)
    before: str | CheckpointRef | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None
    select: list[str] | None = None


class AssistantSearch(RequestBody):
    """Search assistants (one per graph)."""

    unsupported: ClassVar[tuple[str, ...]] = ("select",)

    metadata: dict[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None


class AssistantCount(RequestBody):
    """Count assistants."""

    metadata: dict[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None


class StorePut(RequestBody):
    """Put an item into the caller's part of the store."""

    unsupported: ClassVar[tuple[str, ...]] = ("ttl",)

    namespace: Annotated[Namespace, Field(min_length=1, max_length=20)]
    key: str = Field(min_length=1, max_length=512)
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    ttl: float | None = None


class StoreDelete(RequestBody):
    """Delete an item."""

    namespace: Annotated[Namespace, Field(min_length=1, max_length=20)]
    key: str = Field(min_length=1, max_length=512)


class StoreSearch(RequestBody):
    """Search items under a namespace prefix, by filter and optionally by meaning."""

    unsupported: ClassVar[tuple[str, ...]] = ("refresh_ttl",)

    namespace_prefix: Annotated[Namespace, Field(max_length=20)] = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    query: str | None = Field(default=None, max_length=4000)
    refresh_ttl: bool | None = None


class StoreNamespaces(RequestBody):
    """List namespaces."""

    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(default=None, ge=1, le=20)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class RouteRequest(RequestBody):
    """Ask the router where a request would go, without running anything."""

    text: str = Field(min_length=1, max_length=4000)
    thread_id: str | None = None


# --- responses ---------------------------------------------------------------------------------------


class Response(BaseModel):
    """A response body."""

    model_config = ConfigDict(frozen=True)


class ErrorBody(Response):
    """Every error: `detail` (a string, or the list of validation errors) and a one-line `message`."""

    detail: str | list[Any]
    message: str


class Info(Response):
    """Server description."""

    version: str
    langgraph_py_version: str
    flags: dict[str, bool]
    metadata: dict[str, Any]


class Assistant(Response):
    """The default assistant of one graph."""

    assistant_id: str
    graph_id: str
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]
    name: str
    description: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class GraphSchemas(Response):
    """JSON schemas of a graph's input, output, state and context."""

    graph_id: str
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None
    state_schema: dict[str, Any] | None
    config_schema: dict[str, Any] | None
    context_schema: dict[str, Any] | None


class Interrupt(Response):
    """A pending interrupt: its payload and the id to resume it by."""

    value: Any
    id: str


class Checkpoint(Response):
    """Where a state lives."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None
    checkpoint_map: dict[str, Any] | None = None


class ThreadTask(Response):
    """A task pending at a checkpoint."""

    id: str
    name: str
    path: list[Any] = Field(default_factory=list)
    error: str | None = None
    interrupts: list[Interrupt] = Field(default_factory=list)
    checkpoint: Checkpoint | None = None
    state: ThreadState | None = None
    result: Any = None


class ThreadState(Response):
    """A thread's state at one checkpoint."""

    values: Any
    next: list[str]
    tasks: list[ThreadTask]
    metadata: dict[str, Any]
    created_at: str | None
    checkpoint: Checkpoint
    parent_checkpoint: Checkpoint | None
    interrupts: list[Interrupt]
    checkpoint_id: str | None = None
    parent_checkpoint_id: str | None = None


class Thread(Response):
    """A thread with its status, latest values and pending interrupts by task."""

    thread_id: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    status: ThreadStatus
    values: Any = None
    interrupts: dict[str, list[Interrupt]] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    error: Any = None


class StateUpdated(Response):
    """The checkpoint a state update wrote."""

    checkpoint: Checkpoint


class Run(Response):  # type: ignore[no-redef]  # the pydantic plugin's __init__ also takes **kwargs
    """A run."""

    run_id: str
    thread_id: str
    assistant_id: str
    created_at: datetime
    updated_at: datetime
    status: RunStatus
    metadata: dict[str, Any]
    multitask_strategy: MultitaskStrategy
    kwargs: dict[str, Any]
    error: Any = None


class Item(Response):
    """A store item, its namespace as the caller sees it."""

    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SearchItem(Item):
    """A store item with its relevance when a query was given."""

    score: float | None = None


class SearchItems(Response):
    """Store search results."""

    items: list[SearchItem]


class Namespaces(Response):
    """Namespaces under the caller's part of the store."""

    namespaces: list[list[str]]


class Why(Response):
    """The routing decisions recorded for a thread, newest first."""

    thread_id: str
    decisions: list[dict[str, Any]]


class RouteAnswer(Response):
    """Where a request would go, and why."""

    decision: dict[str, Any]


class Review(Response):
    """A thread paused at a gate, waiting for a decision."""

    thread_id: str
    graph_id: str | None
    assistant_id: str | None
    title: str
    updated_at: datetime
    interrupts: list[Interrupt]


class Reviews(Response):
    """Every pending review of the caller."""

    reviews: list[Review]


ThreadTask.model_rebuild()
