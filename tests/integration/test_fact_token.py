"""Where keys are read and δ is added (`fact_token`): the subject's last token (the papers'
default), its first token, or the prompt's last token (for a model whose causal trace shows it
recalls there, like editkit's teaching model)."""

import pytest
import torch
from models import same, snapshot, tiny, tokenizer

from editkit import Editor, EditRequest
from editkit.architectures import architecture_of, module
from editkit.keys import ModelAccess
from editkit.tokens import edit_position, locate_subject

REQ = EditRequest(prompt="The mother tongue of {} is", subject="Danielle Darrieux", target_new="English")


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def test_edit_position_of_each_fact_token(tok):
    text, first, last = locate_subject(tok, REQ.prompt, REQ.subject)
    n = len(tok(text)["input_ids"])
    assert edit_position(tok, REQ.prompt, REQ.subject, "subject_last") == (text, last)
    assert edit_position(tok, REQ.prompt, REQ.subject, "subject_first") == (text, first)
    assert edit_position(tok, REQ.prompt, REQ.subject, "last") == (text, n - 1)
    assert first < last < n - 1
    with pytest.raises(ValueError, match="fact_token"):
        edit_position(tok, REQ.prompt, REQ.subject, "middle")


def test_keys_are_read_at_the_chosen_token(tok):
    """ModelAccess(fact_token="last") reads the MLP projection's input at the final position."""
    model = tiny("gpt2")
    proj = module(model, architecture_of(model).proj, 1)
    seen = {}
    h = proj.register_forward_hook(lambda m, i, o: seen.__setitem__("x", i[0].detach()))
    try:
        with torch.no_grad():
            model(**tok(REQ.prompt.format(REQ.subject), return_tensors="pt"))
    finally:
        h.remove()
    k = ModelAccess(model, tok, [REQ], ["{}"], fact_token="last").keys(1)
    assert torch.allclose(k[:, 0], seen["x"][0, -1].double(), atol=1e-6)


def test_an_edit_at_the_last_token_meets_its_constraint_and_undoes(tok):
    model = tiny("gpt2")
    before = snapshot(model)
    editor = Editor(objective="emmet", alpha=0.0, layers=[2], fact_token="last", steps=3, n_tokens=2000,
                    corpus="wikipedia", context="none", progress=False)
    with editor.applied(model, tok, [REQ]) as edit:
        assert edit.config["target"]["fact_token"] == "last"
        assert max(row["error"] for row in edit.constraint_errors()) < 1e-6
    assert same(before, snapshot(model))
