"""Outputs never touch inputs, and appear whole or not at all.

Every command that writes files checks, before it reads anything, that no output is, or lies
inside, one of its inputs (:func:`check_outputs`): ``profile in.parquet -o in.parquet`` or
``repair RUN -o RUN/<model>/results_<ts>.json`` would otherwise destroy the data they read. Each
output is then written through :func:`atomic_output`: into a temporary file in the output's
folder, renamed into place only once complete. An existing output is therefore replaced only by a
successful run, and a crash or a kill never leaves a truncated file under the output's name.

A process killed outright (SIGKILL runs no cleanup) leaves its temporary file behind. Temporary
files are named ``.<name>.<pid>.<random>.failtrace-tmp``, so the next write of the same output
recognises them and removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from lm_failtrace.errors import InputError

#: Suffix of our temporary files (what the stale-file sweep looks for, and nothing else).
TMP_SUFFIX = ".failtrace-tmp"

#: Permissions of a written output: mkstemp creates 0600, results are meant to be shared.
OUTPUT_MODE = 0o644

#: An output to check: (library parameter that names it, path), e.g. ``("output", "x.csv")``.
Output = tuple[str, "str | Path"]


def _resolve(path: Path, parameter: str | None) -> Path:
    """``path`` with every symlink followed (the file a write would really reach)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        message = f"cannot resolve the path ({exc})"
        raise InputError(message, path=path, parameter=parameter) from None


def _same_file(a: Path, b: Path) -> bool:
    """Whether two existing paths are one file (hard links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(
    outputs: Sequence[Output], inputs: Iterable[str | Path], *, folders: Sequence[Output] = ()
) -> None:
    """Refuse outputs that are, or lie inside, an input; and output files that are folders.

    Args:
        outputs: (parameter, path) of every file the command will write.
        inputs: every file or folder the command reads (a run folder counts as a whole: an
            output inside it could replace, or be mistaken for, one of its files later).
        folders: (parameter, path) of output folders (``--plot DIR``), checked likewise; the
            files written into them are checked as ``outputs`` once their names are known.

    Raises:
        InputError: naming the output's parameter, the output and the input it collides with.
    """
    resolved_inputs = [(Path(p), _resolve(Path(p), None)) for p in inputs]
    checks = [(*o, False) for o in outputs] + [(*o, True) for o in folders]
    for parameter, given, folder in checks:
        output = Path(given)
        target = _resolve(output, parameter)
        if target.is_dir() and not folder:
            raise InputError("is a folder; give a file name", path=output, parameter=parameter)
        blocker = next((p for p in target.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise InputError(
                f"cannot be written: {blocker} is a file, not a folder",
                path=output,
                parameter=parameter,
            )
        for shown, source in resolved_inputs:
            if target == source or (target.exists() and _same_file(target, source)):
                raise InputError(
                    f"is the input {shown} itself: writing it would destroy what is read; "
                    "choose another output",
                    path=output,
                    parameter=parameter,
                )
            if source in target.parents:
                raise InputError(
                    f"lies inside the input folder {shown}: outputs go outside what a command "
                    "reads; choose another output",
                    path=output,
                    parameter=parameter,
                )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporary files of ``path`` left by processes that no longer run.

    Returns the files removed. Only files of our naming are touched (see the module docstring);
    those of a live process (a concurrent writer) are left alone.
    """
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    for stale in path.parent.glob(f"{glob.escape(prefix)}*{TMP_SUFFIX}"):
        pid = stale.name[len(prefix) : -len(TMP_SUFFIX)].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed.append(stale)
    return removed


def _make_folder(folder: Path, parameter: str | None, output: Path) -> list[Path]:
    """Create ``folder`` and missing parents; returns those created, deepest first."""
    missing = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create its folder ({exc.strerror or exc})", path=output, parameter=parameter
        ) from None
    return missing


def _remove_folders(folders: list[Path]) -> None:
    """Remove folders :func:`_make_folder` created, if still empty (a failed run leaves none)."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def atomic_output(path: str | Path, *, parameter: str | None = None) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; rename it into place on success.

    The temporary file is in ``path``'s folder (created if missing), so the rename is atomic.
    If the block raises, or the process is interrupted, the temporary file is removed, folders
    created for it are removed again, and an existing ``path`` is left as it was.

    Raises:
        InputError: the folder cannot be created or written (naming ``parameter``), or ``path``
            cannot be replaced (it is a folder).
    """
    path = Path(path)
    created = _make_folder(path.parent, parameter, path)
    remove_stale_temporaries(path)
    try:
        fd, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX
        )
    except OSError as exc:
        _remove_folders(created)
        raise InputError(
            f"cannot write here ({exc.strerror or exc})", path=path, parameter=parameter
        ) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, OUTPUT_MODE)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise InputError(
                f"cannot replace it ({exc.strerror or exc})", path=path, parameter=parameter
            ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_folders(created)
        raise


def write_atomic(path: str | Path, data: str | bytes, *, parameter: str | None = None) -> Path:
    """Write text (UTF-8) or bytes to ``path`` through :func:`atomic_output`; returns ``path``."""
    with atomic_output(path, parameter=parameter) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return Path(path)
