"""editkit.teaching.quality.top1_rate (quality's people_knowledge, benchmarks/teaching/prefix_recall.py),
batched with padding, is the plain rate: for each prompt alone, is the argmax of the next-token
logits the object's first token?"""

import torch


def test_batched_top1_is_each_prompt_alone():
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from editkit.paths import data_dir
    from editkit.teaching.quality import top1_rate

    tok = AutoTokenizer.from_pretrained(data_dir() / "gpt2-tokenizer")
    tok.pad_token, tok.padding_side = tok.eos_token, "right"
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=16, n_layer=2, n_head=2)).eval()
    prompts = ["The birthplace of Tefi Todine is", "A. Zeja Jadiro speaks", "Mote Totosi works as a", "Some longer text. Size Lekalu plays the"]
    with torch.no_grad():  # what the model predicts for each prompt alone, unpadded
        argmax = [int(model(**tok(p, return_tensors="pt")).logits[0, -1].argmax()) for p in prompts]
    hits = [tok.decode([a]).strip() for a in argmax]  # objects whose first token is the argmax
    miss = [h + "zzq" if h else "zzq" for h in hits]  # a word that tokenises differently
    objects = [h if i % 2 == 0 else m for i, (h, m) in enumerate(zip(hits, miss))]
    assert all(tok(" " + o)["input_ids"][0] == a for o, a in zip(objects[::2], argmax[::2]))  # the test's premise
    want = sum(tok(" " + o)["input_ids"][0] == a for o, a in zip(objects, argmax)) / len(prompts)
    assert 0 < want < 1
    assert top1_rate(model, tok, prompts, objects, batch_size=3) == want
