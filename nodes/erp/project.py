"""A Django project's schema and tenancy audit, read from source again only when its files change.

Both reads parse every Python file of the project, and erp.schema, erp.tenancy, erp.query and the issue_fix
pipeline ask for them on every turn or step. `ProjectReader` keeps the last read of each project root with the
stamp of its files (path, inode, size, mtime and ctime of each file `project_files` lists): an unchanged project
is a stat per file, and a fixed leak or an added field shows on the next request, with no restart.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from nodes.erp.schema import SchemaReport, extract_schema, project_files
from nodes.erp.tenancy_audit import AuditReport, audit_tenancy

Stamp = tuple[tuple[str, int, int, int, int], ...]


def project_stamp(root: Path) -> Stamp:
    """Return each project file's relative path, inode, size, mtime and ctime (ns).

    Any edit, addition, removal or replacement changes it: an editor that saves by renaming a new file over the
    old one changes the inode, and a copy that keeps the old mtime still changes the ctime.
    """
    stamp = []
    for path in project_files(root):
        try:
            info = path.stat()
        except OSError:  # removed while listing: the next call sees the removal
            continue
        stamp.append((str(path.relative_to(root)), info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    return tuple(stamp)


@dataclass
class _Read:
    root: Path
    stamp: Stamp
    schema: SchemaReport
    audit: AuditReport | None = None


class ProjectReader:
    """The schema and the audit of up to `max_roots` project roots, each re-read when its stamp changes.

    Blocking (file I/O and parsing): call it from a worker thread. Safe to share between threads; concurrent
    reads of one changed project parse it once.
    """

    def __init__(self, max_roots: int = 8) -> None:
        self.max_roots = max_roots
        self.reads = 0
        self._cache: OrderedDict[Path, _Read] = OrderedDict()
        self._lock = threading.Lock()

    def schema(self, root: Path) -> SchemaReport:
        """Return the project's schema (`extract_schema`), from the last read while no file changed."""
        with self._lock:
            return self._current(root).schema

    def audit(self, root: Path) -> tuple[SchemaReport, AuditReport]:
        """Return the project's schema and its tenancy audit (`audit_tenancy`), both of the same read."""
        with self._lock:
            read = self._current(root)
            if read.audit is None:
                read.audit = audit_tenancy(read.root, schema=read.schema)
            return read.schema, read.audit

    def _current(self, root: Path) -> _Read:
        key = root.resolve()
        stamp = project_stamp(key)
        read = self._cache.get(key)
        if read is None or read.stamp != stamp:
            read = _Read(key, stamp, extract_schema(key))
            self.reads += 1
        self._cache[key] = read
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_roots:
            self._cache.popitem(last=False)
        return read
