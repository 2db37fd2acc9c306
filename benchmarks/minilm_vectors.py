"""Write MiniLM stand-in word vectors for a treebank's words as a GloVe-format text file
(``mannrl_gym.minilm_vectors``; ``mannrl vectors CONFIG`` does the same for a config's paths).

    python benchmarks/minilm_vectors.py OUT.txt TREEBANK.conllu [TREEBANK.conllu ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mannrl_gym.minilm_vectors import write_minilm_vectors  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", metavar="OUT.txt", help="the vectors file to write")
    parser.add_argument("treebanks", metavar="TREEBANK.conllu", nargs="+",
                        help="CoNLL-U files whose words get a vector")
    args = parser.parse_args()
    written, total = write_minilm_vectors(Path(args.out), args.treebanks)
    print(f"wrote {written} of {total} words, 384-d, to {args.out}")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
