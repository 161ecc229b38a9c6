"""EditRequest constructors, subject location, and deterministic context templates."""

import json

import pytest
from models import DATA, tiny, tokenizer

from editkit import EditRequest
from editkit.context import context_templates
from editkit.tokens import locate_subject


def test_prompt_with_subject_written_out_becomes_a_template():
    r = EditRequest(prompt="Michael Jordan plays the sport of", subject="Michael Jordan", target_new="baseball")
    assert r.prompt == "{} plays the sport of" and r.text == "Michael Jordan plays the sport of"


def test_counterfact_flat_record():
    rec = json.loads((DATA / "counterfact" / "counterfact-train.json").read_text())[1]
    r = EditRequest.from_counterfact(rec)
    assert r.subject in r.text and "{}" in r.prompt
    assert r.target_new == rec["target_new"] and r.target_true == rec["ground_truth"]
    assert r.paraphrase_prompts == [rec["rephrase_prompt"]] and r.neighborhood_answer == rec["locality_ground_truth"]


def test_counterfact_rome_format_record():
    rec = {
        "case_id": 0,
        "requested_rewrite": {
            "prompt": "The mother tongue of {} is",
            "subject": "Danielle Darrieux",
            "target_new": {"str": "English", "id": "Q1860"},
            "target_true": {"str": "French", "id": "Q150"},
        },
        "paraphrase_prompts": ["Shayna does this and Yossel goes still. Danielle Darrieux is a native speaker of"],
        "neighborhood_prompts": ["The mother tongue of Léon Blum is"],
    }
    r = EditRequest.from_counterfact(rec)
    assert (r.prompt, r.subject, r.target_new, r.target_true) == ("The mother tongue of {} is", "Danielle Darrieux", "English", "French")
    assert len(r.paraphrase_prompts) == 1 and len(r.neighborhood_prompts) == 1


def test_zsre_record():
    rec = json.loads((DATA / "zsre" / "zsre_mend_train-1k.json").read_text())[0]
    r = EditRequest.from_zsre(rec)
    assert r.text == rec["src"] and r.target_new == rec["alt"] and r.neighborhood_answer == rec["loc_ans"]


def test_subject_last_token_survives_bpe_merges():
    tok = tokenizer()
    text, first, last = locate_subject(tok, "{}'s sport is", "Michael Jordan")
    ids = tok(text)["input_ids"]
    assert tok.decode(ids[first : last + 1]).strip() == "Michael Jordan"


def test_generated_context_is_deterministic_under_seed():
    model, tok = tiny(), tokenizer()
    a = context_templates(model, tok, "memit", 3, 5, seed=1)
    assert a == context_templates(model, tok, "memit", 3, 5, seed=1)
    assert a != context_templates(model, tok, "memit", 3, 5, seed=2)
    # MEMIT's grouping: the plain prompt alone, then the prefixes ("<text>. {}"), each 5 tokens with its opening word
    assert a[0] == ["{}"] and len(a) == 2 and len(a[1]) == 3
    assert all(t.endswith(". {}") for t in a[1]) and all(t.startswith(o) for t, o in zip(a[1], ["The", "Therefore", "Because"]))
    assert all(len(tok(t[: -len(". {}")])["input_ids"]) <= 5 for t in a[1])
    r = context_templates(model, tok, "rome", seed=1)  # ROME: one group, "{}" + 10 of 5 tokens + 10 of 10
    assert len(r) == 1 and r[0][0] == "{}" and len(r[0]) == 21 and "<|endoftext|>" not in "".join(r[0])
    assert context_templates(model, tok, "none", 3, 5, seed=1) == [["{}"]]
    with pytest.raises(ValueError, match="unknown context kind"):
        context_templates(model, tok, "random", 3, 5, seed=1)


@pytest.mark.parametrize("kind", ["byte-level BPE", "sentencepiece-like"])
def test_rewriting_rows_read_the_target_tokens(kind):
    """Each read position of a rewriting row is followed by the target token it predicts, whether
    the decoder keeps the target's leading space (GPT-2: the prompt + decoded prefix as one string,
    as the originals) or drops it (Metaspace/sentencepiece: the ids are appended)."""
    from editkit.targets import target_rows
    from editkit.tokens import target_ids

    if kind == "byte-level BPE":
        tok = tokenizer()
    else:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        from transformers import PreTrainedTokenizerFast

        tk = Tokenizer(models.Unigram())
        tk.pre_tokenizer, tk.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
        tk.train_from_iterator(["Michael Jordan plays the sport of basketball and baseball in the English language"] * 50,
                               trainers.UnigramTrainer(vocab_size=200, special_tokens=["<unk>"], unk_token="<unk>"))
        tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>")
    r = EditRequest(prompt="{} plays the sport of", subject="Michael Jordan", target_new="English language")
    t = target_ids(tok, r.target_new)
    assert len(t) > 1
    rows = target_rows(tok, [r], [["{}"], ["In the end. {}"]], "{} is a")
    for b in range(2):
        ids = rows.ids[b]
        assert [ids[p + 1] for p in rows.tgt_pos[b][:-1]] == t[:-1] and rows.tgt_pos[b][-1] == len(ids) - 1


def test_a_name_that_cannot_be_loaded_points_to_the_teaching_model():
    from editkit import load_model

    with pytest.raises(OSError, match="load_model\\('editkit-teach'\\)"):
        load_model("no-such-folder/nor/hub-name")  # neither a folder nor a valid hub id: fails without the network
