"""Generation metrics of ROME (Meng et al. 2022, §3 and App. C), as ROME/MEMIT define them:

Generation Entropy (fluency) — for one generated text, with word n-gram frequencies f_n:

    H_n = −Σ_g f_n(g) log₂ f_n(g)            (over the distinct n-grams g of the text)
    GE  = mean( 2/3 · H_2 ,  4/3 · H_3 )      (ROME's weights; the arithmetic mean of the two)

averaged over the texts. A model that repeats itself has low GE. ROME splits words with NLTK's
`word_tokenize`; here a regular expression (runs of word characters, or single punctuation
marks) stands in, which agrees with it on plain prose.

Reference Score (consistency) — cosine similarity of TF-IDF vectors between the text generated
about the subject and reference text about the new object:

    tf(w)  = raw count of w,   idf(w) = ln((1 + N) / (1 + df(w))) + 1     (N documents, smoothed)
    v      = tf · idf, L2-normalised;    RS = v_gen · v_ref

ROME fits the vocabulary and idf on Wikipedia and takes the reference text from Wikipedia
passages about entities that share the new object (its `attribute_snippets`, by relation and
object id). The flat CounterFact here has no relation or object ids, so the reference text is the
first `k` Wikipedia paragraphs that mention the new object as a whole word (`reference_passages`);
when none does, RS is undefined (NaN) for that request. Words are lower-cased and a word is a run
of ≥ 2 word characters (scikit-learn's default, which ROME's vectoriser used).

Text is sampled as in ROME: top-k (k = 5) sampling up to `max_len` = 100 tokens in all (prompt
included), batched with left padding and a KV cache, deterministic under a seed; the entropy and
the reference score are measured on prompt + continuation, as ROME's generated texts include the
prompt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import torch
from tqdm.auto import tqdm

from ..architectures import device_of
from ..compat import cache_kwargs, cache_of
from ..config import StatsConfig
from ..corpora import corpus_identity, documents
from ..stats import cache_dir as _stats_cache_dir
from ..tokens import pad_id, pad_rows

log = logging.getLogger(__name__)

_WORDS = re.compile(r"\w+|[^\w\s]")  # n-gram entropy: words and punctuation marks
_TFIDF_WORDS = re.compile(r"(?u)\b\w\w+\b")  # TF-IDF: words of ≥ 2 characters


# ---------------------------------------------------------------- entropy
def ngram_entropy(text: str, ns: Sequence[int] = (2, 3), weights: Sequence[float] = (2 / 3, 4 / 3)) -> float:
    """ROME's weighted n-gram entropy of one text (bits): mean over n of weight_n · H_n."""
    words = _WORDS.findall(text)
    terms = []
    for n, w in zip(ns, weights):
        grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        total = sum(grams.values())
        h = -sum(c / total * math.log2(c / total) for c in grams.values()) if total else 0.0
        terms.append(w * h)
    return sum(terms) / len(terms)


def mean_ngram_entropy(texts: Iterable[str]) -> float:
    vals = [ngram_entropy(t) for t in texts]
    return sum(vals) / len(vals) if vals else float("nan")


# ---------------------------------------------------------------- TF-IDF
class TfIdf:
    """Vocabulary and idf fitted on a corpus of documents; `similarity(a, b)` = cosine of TF-IDF vectors."""

    def __init__(self, idf: dict[str, float], n_docs: int, corpus: str = ""):
        self.idf = idf
        self.n_docs = n_docs
        self.corpus = corpus

    @classmethod
    def fit(cls, docs: Iterable[str], corpus: str = "", min_df: int = 1) -> "TfIdf":
        df: Counter = Counter()
        n = 0
        for doc in docs:
            df.update(set(_TFIDF_WORDS.findall(doc.lower())))
            n += 1
        idf = {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items() if c >= min_df}
        return cls(idf, n, corpus)

    def vector(self, text: str) -> dict[str, float]:
        tf = Counter(w for w in _TFIDF_WORDS.findall(text.lower()) if w in self.idf)
        v = {w: c * self.idf[w] for w, c in tf.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        return {w: x / norm for w, x in v.items()} if norm > 0 else {}

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity in [0, 1]; 0 when either text has no known word."""
        va, vb = self.vector(a), self.vector(b)
        if len(vb) < len(va):
            va, vb = vb, va
        return float(sum(x * vb.get(w, 0.0) for w, x in va.items()))

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"format": 1, "corpus": self.corpus, "n_docs": self.n_docs, "idf": self.idf}))
        return path

    @classmethod
    def load(cls, path: Path) -> "TfIdf":
        meta = json.loads(Path(path).read_text())
        return cls(meta["idf"], meta["n_docs"], meta.get("corpus", ""))


def wikipedia_tfidf(corpus: str = "wikipedia", cache: Path | None = None) -> TfIdf:
    """TF-IDF fitted on the corpus's documents (one document per Wikipedia article), cached as JSON
    in the statistics cache folder, keyed by the corpus identity."""
    folder = Path(cache) if cache is not None else _stats_cache_dir(StatsConfig())
    ident = corpus_identity(corpus)
    path = folder / f"tfidf-{hashlib.sha256(ident.encode()).hexdigest()[:16]}.json"
    if path.exists():
        tf = TfIdf.load(path)
        if tf.corpus == ident:
            return tf
    log.info("fitting TF-IDF on %s", corpus)
    tf = TfIdf.fit(documents(corpus), corpus=ident)
    tf.save(path)
    return tf


class ReferenceTexts:
    """Paragraphs of a corpus that mention a given word or phrase (whole-word, case-sensitive)."""

    def __init__(self, corpus: str = "wikipedia", min_chars: int = 80):
        self.paragraphs = [
            p.strip() for doc in documents(corpus) for p in doc.split("\n") if len(p.strip()) >= min_chars
        ]
        self._found: dict[tuple[str, int], list[str]] = {}

    def passages(self, phrase: str, k: int = 5) -> list[str]:
        key = (phrase, k)
        if key not in self._found:
            pat = re.compile(r"(?<!\w)" + re.escape(phrase.strip()) + r"(?!\w)")
            needle = phrase.strip()
            out = []
            for p in self.paragraphs:
                if needle in p and pat.search(p):
                    out.append(p)
                    if len(out) == k:
                        break
            self._found[key] = out
        return self._found[key]


# ---------------------------------------------------------------- sampling
@torch.no_grad()
def generate(
    model,
    tok,
    prompts: list[str],
    max_len: int = 100,
    top_k: int = 5,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = False,
    max_new_tokens: int | None = None,
) -> list[str]:
    """Top-k samples continuing each prompt (the continuation only) up to `max_len` tokens in all
    (the longest prompt of a batch counts, at least one new token), or exactly `max_new_tokens`
    new tokens when given (fewer at end of text); batched with left padding. top_k=1 is greedy.

    Row i of a batch has ℓ_i real tokens placed at the right end; positions are counted from its
    first real token (position_ids = cumsum(mask) − 1), so padding changes nothing."""
    g = torch.Generator().manual_seed(seed)
    dev = device_of(model)
    pad = pad_id(tok)
    eos = tok.eos_token_id
    out: list[str] = []
    for s in tqdm(range(0, len(prompts), batch_size), desc="generate", disable=not progress, leave=False):
        chunk = [tok(p)["input_ids"] for p in prompts[s : s + batch_size]]
        ids, mask = pad_rows(chunk, pad, left=True)
        B, T = ids.shape
        ids, mask = ids.to(dev), mask.to(dev)
        pos = (mask.cumsum(-1) - 1).clamp_min(0)
        new = torch.empty((B, 0), dtype=torch.long, device=dev)
        done = torch.zeros(B, dtype=torch.bool, device=dev)
        past, step_ids, step_pos = None, ids, pos
        for _ in range(max_new_tokens if max_new_tokens is not None else max(1, max_len - T)):
            o = model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos, use_cache=True, **cache_kwargs(model, past))
            past = cache_of(o)
            logits = o.logits[:, -1].float().cpu()  # (B, vocab)
            top = logits.topk(top_k, dim=-1)
            pick = torch.multinomial(top.values.softmax(-1), 1, generator=g)[:, 0]
            nxt = top.indices[torch.arange(B), pick].to(dev)  # (B,)
            if eos is not None:
                nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
                done |= nxt == eos
            new = torch.cat([new, nxt[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=dev)], dim=1)
            step_ids, step_pos = nxt[:, None], step_pos[:, -1:] + 1
            if bool(done.all()):
                break
        for i in range(B):
            row = new[i].tolist()
            if eos is not None and eos in row:
                row = row[: row.index(eos)]
            out.append(tok.decode(row))
    return out


def generation_metrics(
    model,
    tok,
    prompts: list[list[str]],
    references: list[str] | None = None,
    tfidf: TfIdf | None = None,
    max_len: int = 100,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = False,
) -> list[dict]:
    """Per request: {ngram_entropy, reference_score, texts}. `prompts[i]` are request i's generation
    prompts; `references[i]` its reference text (or "" / None when there is none)."""
    flat = [p for ps in prompts for p in ps]
    cont = generate(model, tok, flat, max_len, seed=seed, batch_size=batch_size, progress=progress)
    texts = [p + c for p, c in zip(flat, cont)]
    rows, j = [], 0
    for i, ps in enumerate(prompts):
        gen = texts[j : j + len(ps)]
        j += len(ps)
        row = {"ngram_entropy": mean_ngram_entropy(gen), "texts": gen}
        ref = references[i] if references is not None else None
        row["reference_score"] = tfidf.similarity(" ".join(gen), ref) if (tfidf is not None and ref) else float("nan")
        rows.append(row)
    return rows
