"""Checkpoints and result files, written atomically and read back safely.

A checkpoint holds tensors and plain data only; it loads with ``torch.load(weights_only=True)``
and anything else (a pickled object, a truncated or tampered file) is refused with a message.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from mannrl_gym.errors import DataError

FORMAT_VERSION = 2


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, tampered with or carries a pickled object."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C or a full disk: no partial file left beside the old one
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save(path: Path, payload: dict[str, Any]) -> None:
    """Save a checkpoint atomically (temporary file, fsync, rename).

    The payload is serialised, hashed (SHA-256) and stored as a byte tensor beside its hash,
    so a file altered after writing is detected on load, not silently used.
    """
    inner = io.BytesIO()
    torch.save(payload, inner)
    body = inner.getvalue()
    _refuse_unloadable(path, payload, body)  # refused on load? say so now, not at the resume
    outer = io.BytesIO()
    torch.save({"format": FORMAT_VERSION, "sha256": hashlib.sha256(body).hexdigest(),
                "body": torch.frombuffer(bytearray(body), dtype=torch.uint8)}, outer)
    atomic_write_bytes(path, outer.getvalue())


def check_storable(path: Path, payload: dict[str, Any]) -> None:
    """CheckpointError where ``save(path, payload)`` would refuse ``payload`` (a value that
    ``torch.load(weights_only=True)`` cannot read back): called before a run's first epoch,
    so that an agent's state_dict() holding a NumPy array fails at once, not an epoch later."""
    if _first_odd_value(payload) is not None:
        inner = io.BytesIO()
        torch.save(payload, inner)
        _refuse_unloadable(path, payload, inner.getvalue())


def _refuse_unloadable(path: Path, payload: dict[str, Any], body: bytes) -> None:
    """CheckpointError naming the first value of ``payload`` that makes its serialised
    ``body`` unreadable by ``torch.load(weights_only=True)``; nothing where it loads."""
    odd = _first_odd_value(payload)
    if odd is None:
        return
    try:
        torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        where, value = odd
        raise CheckpointError(
            f"{path}: cannot keep {where}, a {type(value).__module__}."
            f"{type(value).__qualname__}: a checkpoint holds tensors and plain data (it "
            f"loads with torch.load(weights_only=True)); a state_dict() must return only "
            f"those (torch.as_tensor(array), a float, a list)") from None


PLAIN = (torch.Tensor, int, float, bool, str, bytes, type(None), torch.Size, torch.dtype,
         torch.device)


def _first_odd_value(value: Any, where: str = "state") -> tuple[str, Any] | None:
    """The first value in ``value`` (dicts, lists and tuples walked) that is not a tensor
    or plain data, with where it lies (``state['experiment']['agent']['obj']``); None if
    there is none."""
    if isinstance(value, dict):
        items = ((f"{where}[{key!r}]", item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{where}[{i}]", item) for i, item in enumerate(value))
    else:
        return None if isinstance(value, PLAIN) else (where, value)
    return next((odd for odd in (_first_odd_value(item, at) for at, item in items) if odd),
                None)


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message (its type when the message is empty),
    without terminal colour codes."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def _load_weights_only(source, name: str):
    if isinstance(source, Path) and source.stat().st_size == 0:
        raise CheckpointError(f"{name}: empty file (0 bytes), not a checkpoint")
    if not zipfile.is_zipfile(source):  # torch.save writes a zip archive; anything else is not ours
        raise CheckpointError(f"{name}: not a checkpoint (not a file torch.save wrote)")
    if not isinstance(source, Path):
        source.seek(0)  # is_zipfile read the stream
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        raise CheckpointError(f"{name}: refused: the file holds objects other than tensors and "
                              f"plain data ({found[1] if found else _reason(exc)}), which "
                              f"torch.load(weights_only=True) does not unpickle") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError,
            KeyError) as exc:
        raise CheckpointError(f"{name}: unreadable or truncated checkpoint "
                              f"({_reason(exc)})") from None


def load(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and check its hash.

    Raises CheckpointError naming the file if it is missing, truncated, altered, or holds
    anything but tensors and plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    outer = _load_weights_only(path, str(path))
    if not isinstance(outer, dict) or outer.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a mannrl-gym checkpoint (format "
                              f"{outer.get('format') if isinstance(outer, dict) else '?'})")
    if not isinstance(outer.get("body"), torch.Tensor) or outer["body"].dtype != torch.uint8:
        raise CheckpointError(f"{path}: checkpoint damaged (no payload)")
    body = outer["body"].numpy().tobytes()
    if hashlib.sha256(body).hexdigest() != outer.get("sha256"):
        raise CheckpointError(f"{path}: checkpoint altered or damaged (SHA-256 mismatch)")
    return _load_weights_only(io.BytesIO(body), str(path))


class MetricsLog:
    """Metrics as JSON lines, one per epoch. A row is appended and fsynced (the cost of an
    epoch's row does not grow with the run: rewriting the file took 27 ms at 2,048 rows), so a
    crash leaves at most a cut-off last line, which ``read`` skips; ``keep_through`` rewrites
    the whole file atomically (write, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.torn: str | None = None  # after ``read``: the unreadable last line it skipped

    def read(self) -> list[dict[str, Any]]:
        """The rows of the file. An unreadable last line (a copy or an older writer cut off
        mid-line) is skipped and kept in ``torn``; an unreadable line before it raises
        DataError naming the file and line."""
        self.torn = None
        if not self.path.exists():
            return []
        lines = [line for line in self.path.read_text(errors="replace").splitlines()
                 if line.strip()]
        rows = []
        for number, line in enumerate(lines, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                if number == len(lines):
                    self.torn = line
                    break
                raise DataError(f"{self.path}:{number}: not a JSON line ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{self.path}:{number}: not a JSON object")
            rows.append(row)
        return rows

    def _write(self, rows: list[dict[str, Any]]) -> None:
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))

    def keep_through(self, epoch: int) -> None:
        """Keep only epochs <= ``epoch``: what a checkpoint taken after ``epoch`` epochs saw."""
        self._write([r for r in self.read() if r.get("epoch", 0) <= epoch])

    def append(self, row: dict[str, Any]) -> None:
        """Add ``row`` as the last line (a file ending in a cut-off line is rewritten
        without it first, so the new row never joins it)."""
        if not self._ends_whole():
            self._write(self.read())
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _ends_whole(self) -> bool:
        """Whether the file is absent, empty or ends with a newline."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return True
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"
