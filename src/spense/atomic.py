"""Durable writes: a file written in full or not at all, and a directory swapped into place.

* :func:`atomic_write`: ``write(path.tmp)``, fsync, ``os.replace(path.tmp, path)``, fsync of the parent; on failure
  ``path`` is as it was.
* :func:`swap_in`: a finished directory renamed onto ``out``, an existing ``out`` moved aside first and deleted after.
* :func:`out_lock`: one writer per output: a second run writing the same ``out`` is refused while the first lives.

Every file the pipeline, the checkpoint writer and the CLI write goes through these.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from spense.errors import InputError

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None

if TYPE_CHECKING:  # torch is imported where tensors are saved: the CLI's help and refusals start without it
    import torch


def fsync_path(path: Path) -> None:
    """fsync ``path`` (a file's data or a directory's entry table); best effort on odd filesystems."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def plain_mode(path: Path) -> None:
    """Give ``path`` (a file, or every file of a directory) the mode a new file gets here (``0o666 & ~umask``):
    safetensors writes its files 0600, which left a checkpoint's weights unreadable to the users who can read
    the rest of it."""
    mask = os.umask(0)
    os.umask(mask)
    for f in (path.iterdir() if path.is_dir() else (path,)):
        if f.is_file():
            os.chmod(f, 0o666 & ~mask)


def fsync_dir(path: Path) -> None:
    """fsync every file in ``path`` and the directory itself."""
    for f in path.iterdir():
        if f.is_file():
            fsync_path(f)
    fsync_path(path)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """The one atomic file write: ``write(tmp)`` fills ``path.tmp``, which is fsynced and renamed onto
    ``path``; then the parent directory is fsynced.  On failure ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        plain_mode(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """:func:`atomic_write` of raw bytes."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict | None = None
) -> Path:
    """:func:`atomic_write` of a safetensors file (tensors moved to CPU, made contiguous)."""
    from safetensors.torch import save_file

    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata=metadata))


def _dead(pid: str) -> bool:
    """No live process has ``pid``, or it is this one (in a container every run may be pid 1: a folder named for
    this pid was left by an earlier run, since this one cleans its own up and holds the output's lock)."""
    try:
        if int(pid) == os.getpid():
            return True
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError, OSError):  # not a pid, or another user's live process
        return False
    return False


def recover_stale(out: Path) -> None:
    """Tidy what a killed run (SIGKILL, power loss) left beside ``out``: its ``.{out}.tmp-<pid>`` folders are
    removed, and a ``.{out}.old-<pid>`` (a :func:`swap_in` stopped between its two renames) is put back as ``out``
    where ``out`` is missing, else removed.  Folders of live processes are left alone."""
    for d in sorted(out.parent.glob(f".{out.name}.old-*")):
        if _dead(d.name.rpartition("-")[2]):
            if out.exists():
                shutil.rmtree(d, ignore_errors=True)
            else:
                os.replace(d, out)
    for d in sorted(out.parent.glob(f".{out.name}.tmp-*")):
        if d.is_dir() and _dead(d.name.rpartition("-")[2]):
            shutil.rmtree(d, ignore_errors=True)


def swap_in(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and deleted after."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    fsync_path(out.parent)


_HELD: set[Path] = set()  # outputs this process holds the lock of


def _open_lock(path: Path) -> int:
    """A descriptor of the lock file, created if missing; read-only where it may not be written (a killed run of
    another user left it: ``flock`` needs no write access). InputError where it cannot be opened at all."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        try:
            return os.open(path, os.O_RDONLY)
        except OSError as e:
            raise InputError(f"cannot open the lock file {path} ({e.strerror or e}): remove it if no spense run "
                             "is writing there, or choose another output") from None


@contextlib.contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold ``.{out}.lock`` beside ``out`` (an exclusive ``flock``) while a run writes ``out`` and its
    ``out.partial`` state; a second run for the same ``out`` is refused at once with :class:`InputError`.

    The kernel drops the lock when its process dies (even by SIGKILL), so a killed run never blocks the
    next one. The file is removed on release (with the folders made for it, if left empty); a run that locked a
    file removed under it locks again. Nested use for an output this process holds already is a no-op."""
    out = Path(out).expanduser().resolve()  # one name per output, however it was given
    if fcntl is None or out in _HELD:  # this process holds it already: `prune --packed` prunes, then packs
        yield
        return
    made = [d for d in (out.parent, *out.parent.parents) if not d.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{out.name}.lock"
    while True:
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InputError(f"another spense run (pid {pid}) is writing {out}: wait for it to end, or choose "
                             "another output") from None
        except OSError as e:
            os.close(fd)
            raise InputError(f"cannot lock {path} ({e.strerror or e}): this file system may not support locks; "
                             "choose an output on another") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino  # not unlinked by a run that just released it
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        with contextlib.suppress(OSError):  # a lock file opened read-only (another user's) keeps its old text
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        _HELD.add(out)
        yield
    finally:
        _HELD.discard(out)
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
        for d in made:  # folders made for the lock alone: a run refused early leaves none behind
            with contextlib.suppress(OSError):
                d.rmdir()
