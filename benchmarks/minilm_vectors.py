"""Write MiniLM stand-in word vectors for a treebank's words as a GloVe-format text file
(``mannrl_gym.minilm_vectors``; ``mannrl vectors CONFIG`` does the same for a config's paths).

    python benchmarks/minilm_vectors.py OUT.txt TREEBANK.conllu [TREEBANK.conllu ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mannrl_gym.minilm_vectors import write_minilm_vectors  # noqa: E402


def main() -> None:
    out, treebanks = Path(sys.argv[1]), sys.argv[2:]
    written, total = write_minilm_vectors(out, treebanks)
    print(f"wrote {written} of {total} words, 384-d, to {out}")


if __name__ == "__main__":
    main()
