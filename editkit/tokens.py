"""Tokenisation helpers shared by keys, targets, tracing and evaluation.

A request's prompt holds "{}" where the subject goes ("{} plays the sport of"). After
tokenisation we need the index of the subject's *last* token: that is where keys are read and
where the target vector δ is added. It is found from the tokenizer's character offsets, so
BPE merges across the subject boundary ("Jordan's") cannot shift it.
"""

from __future__ import annotations


class SubjectNotFoundError(ValueError):
    pass


def fill(prompt: str, subject: str) -> str:
    """The prompt with its "{}" replaced by the subject."""
    return prompt.replace("{}", subject, 1)


def template_of(prompt: str, subject: str) -> str:
    """A prompt with "{}" for the subject; accepts the subject written out in the prompt."""
    if "{}" in prompt:
        return prompt
    i = prompt.find(subject)
    if not subject or i < 0:
        raise SubjectNotFoundError(
            f"subject {subject!r} does not occur in prompt {prompt!r}: write '{{}}' where the "
            "subject goes, or include the subject verbatim in the prompt."
        )
    return prompt[:i] + "{}" + prompt[i + len(subject) :]


def subject_span(tok, text: str, char_start: int, char_end: int) -> tuple[int, int]:
    """Token indices [first, last] covering characters [char_start, char_end) of `text`."""
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=True)
    hits = [
        i
        for i, (s, e) in enumerate(enc["offset_mapping"])
        if e > s and s < char_end and e > char_start and text[max(s, char_start) : min(e, char_end)].strip()
    ]
    if not hits:
        raise SubjectNotFoundError(
            f"no token of {text!r} covers characters {char_start}:{char_end} "
            f"({text[char_start:char_end]!r}) after tokenisation; check the subject and the prompt."
        )
    return hits[0], hits[-1]


def locate_subject(tok, template: str, subject: str, prefix: str = "") -> tuple[str, int, int]:
    """Fill `prefix + template` with `subject`; return (text, first, last subject token index)."""
    if "{}" not in template:
        raise SubjectNotFoundError(f"template {template!r} has no '{{}}' for the subject.")
    if not subject.strip():
        raise SubjectNotFoundError("the subject is empty: give the entity whose fact is edited.")
    full = prefix + template
    start = full.index("{}")
    text = fill(full, subject)
    first, last = subject_span(tok, text, start, start + len(subject))
    return text, first, last


# Which token of the filled prompt carries the edit (ROME's `fact_token`): the key is read and δ is
# added there. "subject_last" is the papers' default; "last" suits a model that gathers the subject
# at the final prompt token before recalling (see its causal trace).
FACT_TOKENS = {
    "subject_last": lambda first, last, n: last,
    "subject_first": lambda first, last, n: first,
    "last": lambda first, last, n: n - 1,
}


def edit_position(tok, template: str, subject: str, fact_token: str = "subject_last", prefix: str = "") -> tuple[str, int]:
    """(filled text, index of the token where the key is read and δ is added)."""
    if fact_token not in FACT_TOKENS:
        raise ValueError(f"unknown fact_token {fact_token!r}: choose one of {sorted(FACT_TOKENS)}")
    text, first, last = locate_subject(tok, template, subject, prefix)
    n = len(tok(text, add_special_tokens=True)["input_ids"])
    return text, FACT_TOKENS[fact_token](first, last, n)


def pad_id(tok) -> int:
    """The id padding uses: the tokenizer's pad id, else its eos id, else 0. Masked positions never
    matter (every read is at a real token and attention ignores them)."""
    return tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)


def pad_rows(rows, pad: int, left: bool = False):
    """Token-id lists → (input_ids (B, T) long, attention_mask (B, T) long), T = the longest row;
    each row at the start (right padding) or, with left=True, at the end (left padding)."""
    import torch

    T = max(len(x) for x in rows)
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, x in enumerate(rows):
        at = slice(T - len(x), T) if left else slice(0, len(x))
        ids[i, at] = torch.tensor(x, dtype=torch.long)
        mask[i, at] = 1
    return ids, mask


def encode_batch(tok, texts: list[str], device=None):
    """Right-padded batch: (input_ids (B, T), attention_mask (B, T), lengths list[int])."""
    ids = [tok(t, add_special_tokens=True)["input_ids"] for t in texts]
    input_ids, mask = pad_rows(ids, pad_id(tok))
    if device is not None:
        input_ids, mask = input_ids.to(device), mask.to(device)
    return input_ids, mask, [len(x) for x in ids]


def target_ids(tok, target: str) -> list[int]:
    """Token ids of a target continuation (with its leading space), or a clear error."""
    if not target.strip():
        raise ValueError("the target is empty: give the new object the prompt should complete to")
    ids = tok(target if target.startswith(" ") else " " + target, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"the target {target!r} tokenises to nothing; give a non-empty word")
    return ids


def shared_prefix(seqs: list[list[int]], cap: int) -> int:
    """How many leading tokens every sequence has alike, at most `cap` (the first edit position
    among them): the prefix that rows of one context template can share as an attention cache
    (keys and targets both use it)."""
    first, P = seqs[0], min(cap, len(seqs[0]))
    for x in seqs[1:]:
        k = 0
        while k < P and k < len(x) and x[k] == first[k]:
            k += 1
        P = k
    return P


def pieces(ids: list[int], length: int, min_len: int = 2):
    """Consecutive pieces of `length` tokens of one document's ids (the last one shorter, kept if it
    has ≥ min_len tokens): how key statistics and the held-out NLL cut text, never across documents."""
    for s in range(0, len(ids), length):
        if len(ids[s : s + length]) >= min_len:
            yield ids[s : s + length]
