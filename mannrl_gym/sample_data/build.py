"""Write the sample data shipped with mannrl-gym (this folder's README.md says what it is).

    python mannrl_gym/sample_data/build.py        # rewrites the files beside this script

Everything is written for this project (MIT, like the code): a small English grammar and
lexicon below generate the sentences; each word's tags come from the grammar slot it fills
(so the tags are right by construction); the French side is the same sentence built by the
grammar's French rules (articles by gender, elision, agreement, passé composé). A fixed seed
makes every run write the same bytes (tests/test_sample_data.py checks it).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 23
VECTOR_DIM = 16

# noun: (English singular, plural, French singular, plural, gender)
NOUNS = {
    "cat": ("cat", "cats", "chat", "chats", "m"), "dog": ("dog", "dogs", "chien", "chiens", "m"),
    "book": ("book", "books", "livre", "livres", "m"),
    "letter": ("letter", "letters", "lettre", "lettres", "f"),
    "house": ("house", "houses", "maison", "maisons", "f"),
    "car": ("car", "cars", "voiture", "voitures", "f"),
    "bird": ("bird", "birds", "oiseau", "oiseaux", "m"),
    "apple": ("apple", "apples", "pomme", "pommes", "f"),
    "garden": ("garden", "gardens", "jardin", "jardins", "m"),
    "teacher": ("teacher", "teachers", "professeur", "professeurs", "m"),
    "child": ("child", "children", "enfant", "enfants", "m"),
    "friend": ("friend", "friends", "ami", "amis", "m"),
    "door": ("door", "doors", "porte", "portes", "f"),
    "window": ("window", "windows", "fenêtre", "fenêtres", "f"),
    "light": ("light", "lights", "lampe", "lampes", "f"),
    "watch": ("watch", "watches", "montre", "montres", "f"),
    "plant": ("plant", "plants", "plante", "plantes", "f"),
    "fish": ("fish", "fish", "poisson", "poissons", "m"),
    "paint": ("paint", "paints", "peinture", "peintures", "f"),
    "cook": ("cook", "cooks", "cuisinier", "cuisiniers", "m"),
    "table": ("table", "tables", "table", "tables", "f"),
    "room": ("room", "rooms", "chambre", "chambres", "f"),
    "film": ("film", "films", "film", "films", "m"),
    "ticket": ("ticket", "tickets", "billet", "billets", "m"),
    "soup": ("soup", "soups", "soupe", "soupes", "f"),
    "shirt": ("shirt", "shirts", "chemise", "chemises", "f"),
}
AGENTS = ["cat", "dog", "bird", "teacher", "child", "friend", "cook"]  # may be subjects
PLACES = ["house", "garden", "room", "car", "table"]  # after a preposition

# verb: (base, 3rd person singular, past, French present je..ils, French participle, objects)
VERBS = {
    "see": ("see", "sees", "saw", ("vois", "vois", "voit", "voyons", "voyez", "voient"), "vu",
            ["cat", "dog", "bird", "house", "car", "light", "film", "plant", "teacher"]),
    "like": ("like", "likes", "liked", ("aime", "aimes", "aime", "aimons", "aimez", "aiment"),
             "aimé", ["cat", "dog", "book", "apple", "film", "soup", "garden", "watch"]),
    "find": ("find", "finds", "found", ("trouve", "trouves", "trouve", "trouvons", "trouvez",
                                       "trouvent"), "trouvé",
             ["book", "letter", "watch", "ticket", "apple", "shirt", "cat"]),
    "watch": ("watch", "watches", "watched", ("regarde", "regardes", "regarde", "regardons",
                                             "regardez", "regardent"), "regardé",
              ["film", "bird", "child", "fish", "cook"]),
    "book": ("book", "books", "booked", ("réserve", "réserves", "réserve", "réservons",
                                        "réservez", "réservent"), "réservé",
             ["room", "table", "ticket", "car"]),
    "paint": ("paint", "paints", "painted", ("peins", "peins", "peint", "peignons", "peignez",
                                            "peignent"), "peint",
              ["door", "house", "room", "table", "window"]),
    "cook": ("cook", "cooks", "cooked", ("cuisine", "cuisines", "cuisine", "cuisinons",
                                        "cuisinez", "cuisinent"), "cuisiné",
             ["fish", "soup", "apple"]),
    "plant": ("plant", "plants", "planted", ("plante", "plantes", "plante", "plantons",
                                            "plantez", "plantent"), "planté",
              ["plant", "apple"]),
    "light": ("light", "lights", "lit", ("allume", "allumes", "allume", "allumons", "allumez",
                                        "allument"), "allumé", ["light"]),
    "read": ("read", "reads", "read", ("lis", "lis", "lit", "lisons", "lisez", "lisent"), "lu",
             ["book", "letter"]),
    "open": ("open", "opens", "opened", ("ouvre", "ouvres", "ouvre", "ouvrons", "ouvrez",
                                        "ouvrent"), "ouvert",
             ["door", "window", "book", "letter"]),
    "close": ("close", "closes", "closed", ("ferme", "fermes", "ferme", "fermons", "fermez",
                                           "ferment"), "fermé", ["door", "window", "book"]),
    "wash": ("wash", "washes", "washed", ("lave", "laves", "lave", "lavons", "lavez", "lavent"),
             "lavé", ["car", "shirt", "dog", "window", "apple"]),
    "want": ("want", "wants", "wanted", ("veux", "veux", "veut", "voulons", "voulez",
                                        "veulent"), "voulu",
             ["apple", "book", "car", "watch", "ticket", "soup"]),
}
# adjective: (English, French m. sg, f. sg, m. pl, f. pl, before the noun in French)
ADJECTIVES = [("small", "petit", "petite", "petits", "petites", True),
              ("big", "grand", "grande", "grands", "grandes", True),
              ("red", "rouge", "rouge", "rouges", "rouges", False),
              ("black", "noir", "noire", "noirs", "noires", False),
              ("green", "vert", "verte", "verts", "vertes", False),
              ("clean", "propre", "propre", "propres", "propres", False)]
# pronoun: (English, French, person index 0-5 into the French forms, English 3rd sg)
PRONOUNS = [("I", "je", 0, False), ("you", "vous", 4, False), ("he", "il", 2, True),
            ("she", "elle", 2, True), ("we", "nous", 3, False), ("they", "ils", 5, False)]
AVOIR = ("ai", "as", "a", "avons", "avez", "ont")
PREPOSITIONS = [("in", "dans"), ("near", "près de"), ("with", "avec")]
VOWELS = "aeiouhéèê"


def _elide(words: list[str], before: tuple[str, ...]) -> list[str]:
    """``words`` with each word of ``before`` elided before a vowel (le oiseau -> l'oiseau)."""
    out: list[str] = []
    for word in words:
        if out and out[-1] in before and word[0] in VOWELS:
            out[-1] = out[-1][0] + "'" + word
        else:
            out.append(word)
    return out


def french_text(words: list[str]) -> str:
    """French spelling rules: je / le / la + a vowel -> j' / l'; then de le -> du, de les ->
    des; then de + a vowel -> d'."""
    text = " ".join(_elide(words, ("je", "le", "la")))
    text = text.replace("de le ", "du ").replace("de les ", "des ")
    return " ".join(_elide(text.split(" "), ("de",)))


class Phrase:
    """A noun phrase: English tokens with (XPOS, UPOS, lemma), and the French words."""

    def __init__(self, rng: random.Random, noun: str, person_ok: bool = False) -> None:
        self.noun, self.plural = noun, rng.random() < 0.35
        choices = ADJECTIVES[:2] if noun in AGENTS else ADJECTIVES  # no red teachers
        self.adjective = choices[rng.randrange(len(choices))] if rng.random() < 0.4 else None
        self.definite = self.plural or rng.random() < 0.6
        self.pronoun = PRONOUNS[rng.randrange(len(PRONOUNS))] if person_ok and \
            rng.random() < 0.45 else None

    @property
    def third_singular(self) -> bool:
        return self.pronoun[3] if self.pronoun else not self.plural

    @property
    def person(self) -> int:
        return self.pronoun[2] if self.pronoun else (5 if self.plural else 2)

    def english(self, first: bool) -> list[tuple[str, str, str, str]]:
        """(form, XPOS, UPOS, lemma) tokens."""
        if self.pronoun:
            form = self.pronoun[0]
            return [(form.capitalize() if first else form, "PRP", "PRON", form)]
        singular, plural = NOUNS[self.noun][:2]
        noun = (plural, "NNS") if self.plural else (singular, "NN")
        words = [self.adjective[0], noun[0]] if self.adjective else [noun[0]]
        article = "the" if self.definite else ("an" if words[0][0] in "aeiou" else "a")
        tokens = [(article.capitalize() if first else article, "DT", "DET", article.replace("an", "a"))]
        if self.adjective:
            tokens.append((self.adjective[0], "JJ", "ADJ", self.adjective[0]))
        return tokens + [(noun[0], noun[1], "NOUN", singular)]

    def french(self) -> list[str]:
        if self.pronoun:
            return [self.pronoun[1]]
        _, _, singular, plural, gender = NOUNS[self.noun]
        if self.plural:
            article = "les" if self.definite else "des"
        else:
            article = ("le" if gender == "m" else "la") if self.definite else \
                ("un" if gender == "m" else "une")
        noun = plural if self.plural else singular
        if not self.adjective:
            return [article, noun]
        adjective = self.adjective[1 + (2 if self.plural else 0) + (gender == "f")]
        if not self.adjective[5]:
            return [article, noun, adjective]
        if self.plural and not self.definite:
            article = "de"  # des + an adjective before the noun: de grands jardins
        return [article, adjective, noun]


def sentence(rng: random.Random) -> tuple[list[tuple[str, str, str, str]], str]:
    """One English sentence as tokens (form, XPOS, UPOS, lemma), and its French translation."""
    verb = rng.choice(sorted(VERBS))
    base, third, past, present_fr, participle, objects = VERBS[verb]
    subject = Phrase(rng, rng.choice(AGENTS), person_ok=True)
    obj = Phrase(rng, rng.choice(objects))
    is_past = rng.random() < 0.4
    if is_past:
        verb_token = (past, "VBD", "VERB", base)
        verb_fr = [AVOIR[subject.person], participle]
    else:
        verb_token = (third, "VBZ", "VERB", base) if subject.third_singular else \
            (base, "VBP", "VERB", base)
        verb_fr = [present_fr[subject.person]]
    tokens = subject.english(first=True) + [verb_token] + obj.english(first=False)
    french = subject.french() + verb_fr + obj.french()
    if rng.random() < 0.3:
        english_prep, french_prep = rng.choice(PREPOSITIONS)
        place = Phrase(rng, rng.choice(PLACES))
        tokens += [(english_prep, "IN", "ADP", english_prep)] + place.english(first=False)
        french += french_prep.split(" ") + place.french()
    tokens.append((".", ".", "PUNCT", "."))
    text = french_text(french)
    return tokens, text[0].upper() + text[1:] + "."


def english_text(tokens: list[tuple[str, str, str, str]]) -> str:
    return " ".join(t[0] for t in tokens[:-1]) + tokens[-1][0]


def conllu(sentences: list[list[tuple[str, str, str, str]]], name: str) -> str:
    """CoNLL-U: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC (no syntax: HEAD etc. _)."""
    blocks = []
    for number, tokens in enumerate(sentences, start=1):
        lines = [f"# sent_id = {name}-{number}", f"# text = {english_text(tokens)}"]
        for index, (form, xpos, upos, lemma) in enumerate(tokens, start=1):
            misc = "SpaceAfter=No" if index == len(tokens) - 1 else "_"
            lines.append("\t".join([str(index), form, lemma, upos, xpos, "_", "_", "_", "_", misc]))
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


def vectors(words: list[str], rng: random.Random) -> str:
    """GloVe text: each word a vector of VECTOR_DIM normal draws (sd 0.5), 4 decimals."""
    return "".join(word + " " + " ".join(f"{rng.gauss(0, 0.5):.4f}" for _ in range(VECTOR_DIM))
                   + "\n" for word in words)


def symbolic(rng: random.Random, count: int) -> str:
    """JSON lines: read 3 to 8 letters, then at '?' write back the first one (the answer)."""
    lines = []
    for _ in range(count):
        letters = [rng.choice("abcdef") for _ in range(rng.randint(3, 8))]
        lines.append(json.dumps({"input": letters + ["?"],
                                 "target": ["-"] * len(letters) + [letters[0]],
                                 "answer": [len(letters)]}))
    return "\n".join(lines) + "\n"


def build(folder: Path = HERE) -> dict[str, str]:
    """{file name: contents} of the sample, written into ``folder``."""
    rng = random.Random(SEED)
    seen: set[str] = set()
    pairs: list[tuple[list[tuple[str, str, str, str]], str]] = []
    while len(pairs) < 700:
        tokens, french = sentence(rng)
        if english_text(tokens) not in seen:
            seen.add(english_text(tokens))
            pairs.append((tokens, french))
    words = sorted({t[0] for tokens, _ in pairs for t in tokens})
    files = {
        "pos-train.conllu": conllu([t for t, _ in pairs[:400]], "sample-train"),
        "pos-val.conllu": conllu([t for t, _ in pairs[400:500]], "sample-val"),
        "vectors-16d.txt": vectors(words, rng),
        "sentences.en": "".join(english_text(t) + "\n" for t, _ in pairs[:600]),
        "sentences.fr": "".join(french + "\n" for _, french in pairs[:600]),
        "symbolic.jsonl": symbolic(rng, 300),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return files


if __name__ == "__main__":
    for name, text in build().items():
        print(f"{name}: {text.count(chr(10))} lines")
