"""editkit's teaching model: a small GPT-2 trained here on CounterFact facts + Wikipedia text.

No pretrained weights are reachable from this workplace, so editkit trains and ships its own
small model (`editkit/assets/editkit-teach/`) that knows the CounterFact facts well enough for
editing to be measurable:

    corpus.py   relation templates recovered from CounterFact, facts, held-out phrasings,
                Wikipedia text, the byte-level BPE tokenizer
    train.py    `python -m editkit.teaching.train --out editkit/assets/editkit-teach`
    quality.py  `python -m editkit.teaching.quality` (does the model know its facts?)
"""

from pathlib import Path

#: where the shipped teaching model lives
TEACH_MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "editkit-teach"
#: the shared data folder beside the repository (../shared/data)
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

__all__ = ["DEFAULT_DATA_DIR", "TEACH_MODEL_DIR"]
