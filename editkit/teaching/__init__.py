"""editkit's teaching model: a small GPT-2 trained here on invented people's biographies + Wikipedia.

No pretrained weights are reachable from this workplace, so editkit trains and ships its own
small model (`editkit/assets/editkit-teach/`) that knows the facts of 1,000 invented people and,
like GPT-2 in ROME's causal trace, recalls them at the subject:

    people.py   the invented people, their biographies, their CounterFact-format requests
    corpus.py   Wikipedia text, the byte-level BPE tokenizer; CounterFact's relations and facts
                (the "counterfact" recipe: the model shipped before issue 10)
    train.py    `python -m editkit.teaching.train --out editkit/assets/editkit-teach`
    cases.py    `python -m editkit.teaching.cases` (its own edit cases: the facts it knows)
    quality.py  `python -m editkit.teaching.quality` (does the model know its facts?)
    defaults.py `python -m editkit.teaching.defaults` (layers from its trace, C0, hparams.json)
"""

from pathlib import Path

from ..corpora import register_corpus

#: where the shipped teaching model lives
TEACH_MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "editkit-teach"
__all__ = ["TEACH_MODEL_DIR"]


def _shipped_kind() -> str:
    """What the shipped model was trained on: "people" (invented people's biographies) or
    "counterfact" (CounterFact's fact sentences, the model before issue 10)."""
    import json

    try:
        return json.loads((TEACH_MODEL_DIR / "splits.json").read_text()).get("kind", "counterfact")
    except (OSError, ValueError):
        return "counterfact"


def _people_text():
    from ..paths import data_dir
    from .cases import people_of
    from .corpus import load_wikipedia
    from .people import key_statistics_documents

    return key_statistics_documents(people_of(TEACH_MODEL_DIR), load_wikipedia(data_dir()))


def _counterfact_text():
    from ..paths import data_dir
    from .corpus import key_statistics_documents  # built from the data folder on demand

    return key_statistics_documents(data_dir())


#: what the shipped model was trained on → (statistics corpus version, its text)
_STATS_TEXT = {"people": ("v2", _people_text), "counterfact": ("v1", _counterfact_text)}


def _teaching_documents():
    yield from _STATS_TEXT[_KIND][1]()


# the teaching model's own kind of text, for its key statistics; shipped statistics are found
# under this name and version without building it (v1: CounterFact sentences, v2: biographies)
_KIND = _shipped_kind()  # read once, at import
register_corpus("editkit-teach", _STATS_TEXT[_KIND][0], _teaching_documents)
