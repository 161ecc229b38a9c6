"""How a teaching tokenizer cuts the people's names and Wikipedia, for the BPE settings of train.py.

    OMP_NUM_THREADS=1 python benchmarks/teaching/bpe_names.py [--data ../shared/data]

For each (vocabulary, passes over the biographies, Wikipedia characters) the BPE is learnt as
`train.py` learns it (`corpus.train_tokenizer`) and measured:

    surname 1 token   share of the 1,000 surnames that are one token after a space (" Kagodi")
    name tokens       mean tokens of a full name ("Kosa Kagodi"), the edit's subject
    wiki chars/token  characters per token over the last 200 Wikipedia articles (held out of training)

BPE merges by frequency, so the biographies' weight in the BPE's text decides whether the
invented surnames survive as whole tokens beside Wikipedia's words. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SETTINGS = [(2048, 3, 0), (2048, 30, 0), (4096, 3, 2_000_000), (4096, 100, 2_000_000), (8192, 3, 6_000_000),
            (8192, 100, 2_000_000), (8192, 300, 6_000_000)]


def measure(corpus, vocab: int, passes: int, wiki_chars: int) -> dict:
    from editkit.teaching.corpus import train_tokenizer

    tok = train_tokenizer(corpus, vocab_size=vocab, wiki_chars=wiki_chars, doc_passes=passes)
    names = [p["name"] for p in corpus.people.persons]
    held = [corpus.wiki[i] for i in corpus.wiki_order(0)[-200:]]
    return {
        "surname_one_token": sum(len(tok(" " + n.split()[-1])["input_ids"]) == 1 for n in names) / len(names),
        "name_tokens": sum(len(tok(n)["input_ids"]) for n in names) / len(names),
        "wiki_chars_per_token": sum(map(len, held)) / sum(len(tok(h)["input_ids"]) for h in held),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="the shared data folder (default: editkit.paths.data_dir())")
    a = ap.parse_args(argv)
    from transformers.utils import logging as hf_logging

    from editkit.paths import data_dir
    from editkit.teaching.train import TrainConfig, make_corpus

    hf_logging.set_verbosity_error()  # long Wikipedia articles exceed model_max_length: only counted here
    corpus = make_corpus(TrainConfig(), a.data or data_dir())
    print("| vocabulary | biography passes | Wikipedia chars | surname 1 token | name tokens | wiki chars/token |")
    print("|---|---|---|---|---|---|")
    for vocab, passes, wiki in SETTINGS:
        m = measure(corpus, vocab, passes, wiki)
        print(f"| {vocab:,} | {passes} | {wiki:,} | {m['surname_one_token']:.3f} | {m['name_tokens']:.2f} | {m['wiki_chars_per_token']:.2f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
