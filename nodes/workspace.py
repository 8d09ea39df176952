"""The workspace file: the owner's projects, loaded into memory as project context packs.

Format (TOML, `version = 1`)::

    version = 1

    [[projects]]
    slug = "airep"                      # required: [a-z0-9-]+, the memory namespace is project:<slug>
    name = "AIREP"                      # required: how the project is named
    kind = "product"                    # product | client | internal (default product)
    description = "Multi-tenant ERP..." # required: stored as the project's core memory
    aliases = ["the ERP"]               # optional: other names used in conversation
    repo = "~/code/airep"               # optional: repository path
    database_url = "postgresql://..."   # optional: stored with any password removed
    facts = ["Prod runs Postgres 16."]  # optional: more core context for the pack

A `client` project's facts use subjects `client:<name>/...` (slug without a `client-` prefix), so
"Hartley's support hours" and the pack of project `client-hartley` meet on `client:hartley/support_hours`.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ProjectKind = Literal["product", "client", "internal"]
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class WorkspaceError(ValueError):
    """The workspace file is missing or invalid; the message names the file and the field."""


class Project(BaseModel):
    """One project of the owner."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slug: str
    name: str = Field(min_length=1, max_length=120)
    kind: ProjectKind = "product"
    description: str = Field(min_length=1, max_length=2000)
    aliases: tuple[str, ...] = ()
    repo: str | None = None
    database_url: str | None = None
    facts: tuple[str, ...] = ()

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError("must be lowercase letters, digits and dashes, e.g. 'client-hartley'")
        return value

    @property
    def namespace(self) -> str:
        """Return the memory namespace of the project."""
        return f"project:{self.slug}"

    @property
    def entity(self) -> str:
        """Return the subject prefix facts about this project use."""
        if self.kind == "client":
            return f"client:{self.slug.removeprefix('client-')}"
        return f"project:{self.slug}"

    def names(self) -> tuple[str, ...]:
        """Return every way the project is referred to: name, slug, aliases."""
        extra = [self.slug.removeprefix("client-")] if self.kind == "client" else []
        return tuple(dict.fromkeys([self.name, self.slug, *extra, *self.aliases]))


class Workspace(BaseModel):
    """The owner's projects."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    owner: str | None = None
    projects: tuple[Project, ...] = ()

    def digest(self) -> str:
        """Return a stable hash of the content, to load a changed workspace again."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def project(self, slug: str) -> Project | None:
        """Return the project with a slug."""
        return next((p for p in self.projects if p.slug == slug), None)


def load_workspace(path: Path) -> Workspace:
    """Read and validate a workspace file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WorkspaceError(f"workspace file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise WorkspaceError(f"{path}: not valid TOML ({exc})") from exc
    try:
        workspace = Workspace.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WorkspaceError(f"{path}: {where}: {first['msg']}") from exc
    slugs = [p.slug for p in workspace.projects]
    dupes = sorted({s for s in slugs if slugs.count(s) > 1})
    if dupes:
        raise WorkspaceError(f"{path}: duplicate project slug(s): {', '.join(dupes)}")
    return workspace


def redact_url(url: str) -> str:
    """Remove a password from a connection URL before it is stored."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def project_pack(project: Project) -> list[tuple[str, str]]:
    """Return (subject, text) for the memories making up a project's context pack."""
    pack = [(f"{project.entity}/description", f"{project.name}: {project.description.strip()}")]
    if project.repo:
        pack.append((f"{project.entity}/repo", f"{project.name} repository: {project.repo}"))
    if project.database_url:
        pack.append((f"{project.entity}/database_url", f"{project.name} database: {redact_url(project.database_url)}"))
    for n, fact in enumerate(project.facts, start=1):
        pack.append((f"{project.entity}/fact_{n}", fact.strip()))
    return pack
