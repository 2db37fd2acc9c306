"""Pretrained word vectors from a file: GloVe text (``word v1 v2 ...``) or word2vec text
(the same with a ``count dim`` header line).

The first load parses the text once and writes a binary cache (``.npy`` matrix + word list)
under ``cache_dir``; later loads memory-map the matrix and copy out only the rows asked for,
so a vocabulary of 100k+ words reloads in well under a second and only the needed words stay
in memory. Words missing from the file get a deterministic vector: normal noise with the
file's per-dimension standard deviation, seeded by the SHA-256 of the word (the same word,
the same vector, on every machine).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from mannrl_gym.errors import DataError, not_a_file

DEFAULT_CACHE = Path(os.environ.get("MANNRL_CACHE", Path.home() / ".cache" / "mannrl-gym"))


def _cache_dir(path: Path, cache_dir: Path) -> Path:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    return cache_dir / "vectors" / f"{path.stem}-{key[:16]}"


def _parse_text(path: Path) -> tuple[list[str], np.ndarray]:
    """Every (word, vector) of a GloVe or word2vec text file; DataError names file and line."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    line_numbers: list[int] = []
    dim = None
    # overflow ignored: 1e39 becomes inf and is refused below with its line
    with path.open(encoding="utf-8", errors="replace") as handle, np.errstate(over="ignore"):
        for line_no, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec header: count dim
                continue
            if len(parts) < 2:
                if not line.strip():
                    continue
                raise DataError(f"{path}:{line_no}: expected a word followed by numbers")
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise DataError(f"{path}:{line_no}: expected {dim} values after the word, "
                                f"found {len(parts) - 1}")
            try:
                rows.append(np.asarray(parts[1:], dtype=np.float32))
            except ValueError:
                raise DataError(f"{path}:{line_no}: a value is not a number") from None
            words.append(parts[0])
            line_numbers.append(line_no)
    if not words:
        raise DataError(f"{path}: no vectors in file")
    matrix = np.stack(rows)
    finite = np.isfinite(matrix)
    if not finite.all():  # nan, inf, or beyond float32's range (1e39 reads as inf)
        row, column = np.argwhere(~finite)[0]
        raise DataError(f"{path}:{line_numbers[row]}: value {column + 1} of {words[row]!r} is "
                        f"nan, infinite or beyond float32's range (|x| <= 3.4e38); word vectors "
                        f"must be finite numbers")
    return words, matrix


def _cached(path: Path, cache_dir: Path) -> tuple[list[str], np.ndarray]:
    """(words, matrix memory-mapped read-only), building the cache on first use."""
    folder = _cache_dir(path, cache_dir)
    words_file, matrix_file = folder / "words.json", folder / "vectors.npy"
    if not (words_file.exists() and matrix_file.exists()):
        words, matrix = _parse_text(path)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".vectors.tmp.npy"
        np.save(tmp, matrix)
        os.replace(tmp, matrix_file)
        tmp_words = folder / ".words.tmp"
        tmp_words.write_text(json.dumps(words))
        os.replace(tmp_words, words_file)
    return json.loads(words_file.read_text()), np.load(matrix_file, mmap_mode="r")


DEFAULT_VECTORS = "glove.840B.300d.txt"  # the paper's vectors


def default_vectors_path(cache_dir: str | Path | None = None) -> Path:
    """The paper's GloVe file in the cache folder, if the user put it there."""
    path = Path(cache_dir) if cache_dir else DEFAULT_CACHE
    candidate = path / DEFAULT_VECTORS
    if not candidate.is_file():
        raise DataError(f"vectors_path is not set and the default {candidate} is absent: give "
                        f"vectors_path=FILE (GloVe or word2vec text; `mannrl vectors CONFIG` "
                        f"writes stand-in vectors) or put {DEFAULT_VECTORS} there")
    return candidate


def unknown_vector(word: str, scale: np.ndarray) -> np.ndarray:
    """The documented vector for a word missing from the file (deterministic per word)."""
    seed = int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:8], "little")
    return (np.random.default_rng(seed).standard_normal(scale.shape[0]) * scale).astype(np.float32)


def load_vectors(path: str | Path, words: list[str], cache_dir: str | Path | None = None
                 ) -> tuple[np.ndarray, list[str]]:
    """Vectors for ``words`` (in order): exact match, else lower-cased, else ``unknown_vector``.

    Returns (matrix (len(words), D) float32, the words that were not in the file).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {not_a_file(path, 'vectors file')}")
    file_words, matrix = _cached(path, Path(cache_dir) if cache_dir else DEFAULT_CACHE)
    index = {w: i for i, w in enumerate(file_words)}
    rows = np.array([index.get(w, index.get(w.lower(), -1)) for w in words])
    found = rows >= 0
    out = np.empty((len(words), matrix.shape[1]), dtype=np.float32)
    out[found] = matrix[rows[found]]
    scale = np.asarray(matrix[: min(len(file_words), 10_000)]).std(axis=0)
    missing = [w for w, ok in zip(words, found) if not ok]
    for i in np.nonzero(~found)[0]:
        out[i] = unknown_vector(words[i], scale)
    return out, missing
