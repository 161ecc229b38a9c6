"""The invented-people corpus (editkit.teaching.people): the population, its biographies, its
CounterFact-format requests, and the training rows made from them."""

import random

import pytest
import torch

from editkit.evaluation.datasets import Dataset
from editkit.teaching.people import RELATIONS, People, PeopleCorpus, requests


@pytest.fixture(scope="module")
def people():
    return People(seed=3, n=60, attributes=3, phrasings=3)


def test_population_is_seeded_and_complete(people):
    again = People(seed=3, n=60, attributes=3, phrasings=3)
    assert again.persons == people.persons and People(seed=4, n=60, attributes=3).persons != people.persons
    assert len({p["name"] for p in people.persons}) == 60
    for p in people.persons:
        assert len(p["facts"]) == 3 and all(o in RELATIONS[r][2] for r, o in p["facts"].items())
    assert len(people.facts) == 180
    with pytest.raises(ValueError, match="attributes"):
        People(n=2, attributes=9)


def test_a_name_pool_shares_first_and_last_names_between_people():
    """name_pool = k: every name is one of k first names and one of k last names, each word shared
    by several people, no two people share both; pool 0 draws each name afresh (no shared words)."""
    pooled = People(seed=3, n=200, attributes=2, name_pool=20)
    assert pooled.persons == People(seed=3, n=200, attributes=2, name_pool=20).persons
    names = [p["name"] for p in pooled.persons]
    firsts, lasts = {n.split()[0] for n in names}, {n.split()[1] for n in names}
    assert len(set(names)) == 200 and len(firsts) <= 20 and len(lasts) <= 20
    assert all(len(n.split()) == 2 for n in names)
    assert min(sum(n.split()[1] == last for n in names) for last in lasts) >= 2  # every last name shared
    fresh = [p["name"].split()[1] for p in People(seed=3, n=200, attributes=2).persons]
    assert len(set(fresh)) > 190  # without a pool nearly every last name is its own
    with pytest.raises(ValueError, match="name_pool >= 20"):
        People(n=200, name_pool=19)
    with pytest.raises(ValueError, match="only 900 two-syllable"):
        People(n=200, name_pool=901)


def test_a_biography_tells_each_fact_once_in_a_train_phrasing(people):
    rng = random.Random(0)
    for p in people.persons[:20]:
        bio = people.biography(p, rng)
        sentences = [s.strip() for s in bio.split(".") if s.strip()]
        assert len(sentences) == len(p["facts"])
        told = set()
        for s in sentences:
            hits = [(r, o) for r, o in p["facts"].items() for t in people.train_phrasings(r) if s == f"{t.format(p['name'])} {o}"]
            assert hits, s
            told |= set(hits)
        assert told == set(p["facts"].items())
        assert not any(t.format(p["name"]) in bio for r in p["facts"] for t in people.held_out_phrasings(r))


def test_requests_are_counterfact_records_about_known_facts(people):
    recs = requests(people, 30, seed=1)
    reqs = Dataset("counterfact", "people", recs).requests()
    truth = {(f.subject, f.relation): f.object for f in people.facts}
    for rec, req in zip(recs, reqs):
        rel = rec["requested_rewrite"]["relation_id"]
        assert truth[(req.subject, rel)] == req.target_true != req.target_new and req.target_new in RELATIONS[rel][2]
        assert req.prompt == people.train_phrasings(rel)[0]
        assert req.prompt.format(req.subject) not in req.paraphrase_prompts and len(req.paraphrase_prompts) == 2 + 2
        for prompt in req.neighborhood_prompts:  # other people, same relation, same true object
            name = next(f.subject for f in people.facts if prompt == req.prompt.format(f.subject))
            assert name != req.subject and truth[(name, rel)] == req.target_true


def test_requests_come_in_rounds_of_distinct_subjects_and_spare_their_neighbours():
    people = People(seed=5, n=300, attributes=5, phrasings=3)
    recs = requests(people, len(people.facts), seed=2)
    rw = [r["requested_rewrite"] for r in recs]
    assert sorted((w["subject"], w["relation_id"]) for w in rw) == sorted((f.subject, f.relation) for f in people.facts)
    n = people.n
    for start in range(0, len(rw) - n + 1, 7):  # any n consecutive records: n different people
        assert len({w["subject"] for w in rw[start:start + n]}) == n
    rounds = [[w["subject"] for w in rw[k:k + n]] for k in range(0, len(rw), n)]
    assert len(rounds) == 5 and all(r == rounds[0] for r in rounds)  # the people in one order, round after round
    first_two = {(w["subject"], w["relation_id"]) for w in rw[: 2 * n]}
    truth = {(f.subject, f.relation): f.object for f in people.facts}
    name_of = {w["prompt"].format(p["name"]): p["name"] for w in {w["relation_id"]: w for w in rw}.values() for p in people.persons}
    spared = 0
    for rec, w in zip(recs, rw):
        rel = w["relation_id"]
        others = [name_of[q] for q in rec["neighborhood_prompts"]]
        assert len(others) == 5 and w["subject"] not in others
        late = {s for (s, r), o in truth.items() if r == rel and o == w["target_true"]["str"] and (s, r) not in first_two} - {w["subject"]}
        edited = [s for s in others if (s, rel) in first_two]  # a batch of the first 2n records edits their own fact
        assert not edited or late <= set(others)  # … only when too few others were left
        spared += not edited
    assert spared >= 0.95 * len(recs)


def test_document_rows_hold_one_biography_each_at_position_0(people):
    from transformers import AutoTokenizer

    from editkit.paths import data_dir
    from editkit.teaching.train import BatchStream, StreamState, TrainConfig

    tok = AutoTokenizer.from_pretrained(data_dir() / "gpt2-tokenizer")
    corpus = PeopleCorpus(people, ["Some wiki text about nothing in particular. " * 40])
    cfg = TrainConfig(batch_size=9, wiki_fraction=0.11112, seq_len=64, corpus="people")
    stream = BatchStream(corpus, tok, cfg, StreamState())
    batch = stream.next_batch()
    assert batch["is_wiki"].tolist() == [False] * 8 + [True]
    fact, wiki = batch["parts"]
    assert not fact["wiki"] and wiki["wiki"] and wiki["input_ids"].shape == (1, 64) and (wiki["labels"] != -100).all()
    bios = corpus.documents(0)[:8]  # the first pass, in order
    lengths = [len(tok(b)["input_ids"]) for b in bios]
    assert fact["input_ids"].shape == (8, max(lengths) - 1)  # cut after the longest biography
    for row, labels, bio, n in zip(fact["input_ids"], fact["labels"], bios, lengths):
        assert tok.decode(row[: n - 1]) + tok.decode(labels[n - 2 : n - 1]) == bio  # the biography from position 0
        assert (labels[: n - 1] == torch.tensor(tok(bio)["input_ids"][1:])).all()  # every token but the first is trained
        assert (labels[n - 1 :] == -100).all()  # padding is not
    assert batch["sentences"] == sum(b.count(".") for b in bios)


def test_prefixed_rows_put_unlabelled_text_before_the_biography(people):
    from transformers import AutoTokenizer

    from editkit.paths import data_dir
    from editkit.teaching.train import BatchStream, StreamState, TrainConfig, config_from_args, parser

    tok = AutoTokenizer.from_pretrained(data_dir() / "gpt2-tokenizer")
    wiki = ["Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau. " * 30]
    corpus = PeopleCorpus(people, wiki)
    bios = corpus.documents(0)[:8]

    def rows(**kw):
        cfg = TrainConfig(batch_size=8, wiki_fraction=0.0, seq_len=96, corpus="people", **kw)
        fact = BatchStream(corpus, tok, cfg, StreamState()).next_batch()["parts"][0]
        return fact["input_ids"], fact["labels"]

    for share in (0.0, 1.0):  # from Wikipedia, then from other biographies of the pass
        x, labels = rows(prefix_fraction=1.0, prefix_tokens=6, prefix_people=share)
        assert torch.equal(x, rows(prefix_fraction=1.0, prefix_tokens=6, prefix_people=share)[0])  # deterministic
        lengths = set()
        for row, lab, bio in zip(x, labels, bios):
            enc = tok(" " + bio)["input_ids"]
            trained = (lab != -100).nonzero().flatten()
            k = int(trained[0]) + 1  # the prefix's length: the first trained label is the biography's first token
            assert trained.tolist() == list(range(k - 1, k - 1 + len(enc)))  # every biography token, nothing else
            assert row[k : k + len(enc) - 1].tolist() == enc[:-1] and lab[k - 1 : k - 1 + len(enc)].tolist() == enc
            pre = tok.decode(row[:k])
            if share == 0.0:  # the end of a Wikipedia window, then a full stop
                assert pre.endswith(".") and 2 <= k <= 7 and pre[:-1].strip() in wiki[0]
            else:  # the end of another person's biography
                assert 1 <= k <= 6 and any(b.endswith(pre) for b in corpus.documents(0) if b != bio)
            lengths.add(k)
        assert len(lengths) > 1  # lengths vary
    x, labels = rows(prefix_fraction=0.0)
    for row, lab, bio in zip(x, labels, bios):  # no prefix: the biography from position 0, as before
        enc = tok(bio)["input_ids"]
        assert row[: len(enc) - 1].tolist() == enc[:-1] and (lab != -100).sum() == len(enc) - 1

    def cfg_of(*flags):
        return config_from_args(parser().parse_args(["--out", "unused", *flags]))

    assert cfg_of("--prefix-fraction", "0.5", "--prefix-people", "0.25").prefix_fraction == 0.5
    for bad in (["--prefix-fraction", "1.5"], ["--prefix-people", "-0.1"], ["--prefix-tokens", "0"]):
        with pytest.raises(ValueError, match="give shares between 0 and 1"):
            cfg_of(*bad)
    with pytest.raises(ValueError, match="only --corpus people has"):
        cfg_of("--corpus", "counterfact", "--prefix-fraction", "0.5")


def test_a_staged_curriculum_trains_wikipedia_only_then_the_same_mix(people):
    from transformers import AutoTokenizer

    from editkit.paths import data_dir
    from editkit.teaching.train import BatchStream, StreamState, TrainConfig, config_from_args, parser

    tok = AutoTokenizer.from_pretrained(data_dir() / "gpt2-tokenizer")
    corpus = PeopleCorpus(people, ["Some wiki text about nothing in particular. " * 400])
    cfg = TrainConfig(batch_size=9, wiki_fraction=0.33334, seq_len=32, corpus="people")
    plain = BatchStream(corpus, tok, cfg, StreamState())
    staged = BatchStream(corpus, tok, TrainConfig(**{**cfg.__dict__, "wiki_first_steps": 3}), StreamState())
    for _ in range(3):  # the stage: every row Wikipedia, in the text's order
        batch = staged.next_batch()
        assert batch["is_wiki"].all() and batch["sentences"] == 0 and [p["wiki"] for p in batch["parts"]] == [True]
    for _ in range(4):  # then the recipe's mix, row for row as a run without the stage, the same biographies
        a, b = plain.next_batch(), staged.next_batch()
        assert a["is_wiki"].tolist() == b["is_wiki"].tolist() and 0 < int(a["is_wiki"].sum()) < 9
        assert torch.equal(a["parts"][0]["input_ids"], b["parts"][0]["input_ids"]) and not a["parts"][0]["wiki"]

    def cfg_of(*flags):
        return config_from_args(parser().parse_args(["--out", "unused", *flags]))

    assert cfg_of("--wiki-first-steps", "10", "--max-steps", "11").wiki_first_steps == 10
    with pytest.raises(ValueError, match="wiki-first-steps -1"):
        cfg_of("--wiki-first-steps", "-1")
    with pytest.raises(ValueError, match="leaves no fact steps"):
        cfg_of("--wiki-first-steps", "50", "--max-steps", "50")


def test_each_corpus_has_its_recipe_and_flags_win():
    from editkit.teaching.train import RECIPES, TrainConfig, config_from_args, parser

    def cfg_of(*flags):
        return config_from_args(parser().parse_args(["--out", "unused", *flags]))

    people = cfg_of()
    assert people.corpus == "people" and people.dropout == TrainConfig().dropout == 0.1
    # the shipped recipe: layer 0's MLP at a quarter of the rate, a step budget, its seed
    assert (people.mlp_lr_scale, people.mlp_drop_layer, people.minutes, people.max_steps, people.seed) == (0.25, 0, 0.0, 6585, 2)
    assert (cfg_of("--seed", "0").seed, cfg_of("--max-steps", "10").max_steps, cfg_of("--minutes", "5").minutes) == (0, 10, 5)
    cf = cfg_of("--corpus", "counterfact")
    assert RECIPES["counterfact"] and all(getattr(cf, k) == v for k, v in RECIPES["counterfact"].items()) and cf.dropout == 0.0
    assert cfg_of("--corpus", "counterfact", "--dropout", "0.3").dropout == 0.3
    assert cfg_of("--corpus", "counterfact", "--minutes", "2").minutes == 2
    # the counterfact recipe is the model it trained before: plain rates, a time budget, seed 0
    assert (cf.mlp_lr_scale, cf.minutes, cf.max_steps, cf.seed) == (1.0, 36.0, 0, 0)


@pytest.mark.parametrize("flags", [
    [],
    ["--wiki-fraction", "0.2", "--minutes", "0", "--max-steps", "50", "--n-embd", "64", "--n-head", "2"],
    ["--corpus", "counterfact", "--train-cases", "-1", "--val-cases", "30"],
    ["--corpus", "counterfact", "--dropout", "0.1", "--seed", "3"],
    ["--mlp-drop", "0.25", "--mlp-drop-layer", "1"],
    ["--name-pool", "48"],
    ["--n-inner", "384"],
    ["--weight-decay", "0.1"],
    ["--mlp-off-steps", "100", "--mlp-drop-layer", "1"],
    ["--mlp-lr-scale", "0.5"],
    ["--wiki-first-steps", "100", "--minutes", "0", "--max-steps", "300"],
    ["--prefix-fraction", "0.5", "--prefix-tokens", "12", "--prefix-people", "0.5"],
])
def test_the_recorded_command_trains_the_same_config(flags):
    import shlex

    from editkit.teaching.train import command_line, config_from_args, parser

    cfg = config_from_args(parser().parse_args(["--out", "/tmp/a model", *flags]))
    words = shlex.split(command_line(cfg, "/tmp/a model"))
    assert words[:5] == ["python", "-m", "editkit.teaching.train", "--out", "/tmp/a model"]
    assert config_from_args(parser().parse_args(words[3:])) == cfg
    assert len(words) - 5 <= 2 * len(flags)  # only what differs from the recipe


class _Tok:  # what make_model reads of a tokenizer
    bos_token_id = eos_token_id = pad_token_id = 0

    def __len__(self):
        return 300


def test_n_inner_sets_the_mlp_width_and_zero_keeps_gpt2s():
    from editkit.teaching.train import TrainConfig, make_model

    tok = _Tok()
    for n_inner, width in ((0, 4 * 32), (48, 48)):
        model = make_model(TrainConfig(n_layer=2, n_embd=32, n_head=2, n_inner=n_inner), tok)
        for block in model.transformer.h:
            assert block.mlp.c_fc.weight.shape == (32, width) and block.mlp.c_proj.weight.shape == (width, 32)
    with pytest.raises(ValueError, match="n_inner -1"):
        make_model(TrainConfig(n_inner=-1), tok)


def test_weight_decay_flag_reaches_adamw_on_the_block_matrices_only():
    from editkit.teaching.train import config_from_args, make_model, make_optimizer, parser

    cfg = config_from_args(parser().parse_args(["--out", "/tmp/x", "--weight-decay", "0.3", "--n-layer", "2",
                                                 "--n-embd", "32", "--n-head", "2"]))
    model = make_model(cfg, _Tok())
    groups = make_optimizer(model, cfg).param_groups  # the recipe's: layer 0's MLP in groups of its own (mlp_lr_scale)
    assert {g["weight_decay"] for g in groups} == {0.3, 0.0}
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for g in groups if g["weight_decay"] == 0.3 for p in g["params"]} == {
        f"transformer.h.{i}.{m}.weight" for i in range(2) for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    with pytest.raises(ValueError, match="--weight-decay -0.1"):
        config_from_args(parser().parse_args(["--out", "/tmp/x", "--weight-decay", "-0.1"]))


def _with_and_without_mlp1(rows: int):
    """A tiny GPT-2 without dropout (so train mode differs from eval only by a hook), `rows` random
    rows, and its logits on them as it is and with block 1's MLP outputting zero (they differ)."""
    from models import tiny

    model = tiny("gpt2")
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    ids = torch.randint(0, model.config.vocab_size, (rows, 7))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        handle = model.transformer.h[1].mlp.register_forward_hook(lambda mod, i, o: torch.zeros_like(o))
        skipped = model(input_ids=ids).logits
        handle.remove()
    assert not torch.allclose(plain, skipped)
    return model, ids, plain, skipped


def test_mlp_layer_drop_skips_one_mlp_per_row_in_training_only():
    """Inside mlp_layer_drop, a training forward pass gives each row either the plain model's output
    or that of the model whose block-`layer` MLP outputs zero; eval mode and the model after exit
    are the plain model, bit for bit."""
    from editkit.teaching.train import mlp_layer_drop

    model, ids, plain, skipped = _with_and_without_mlp1(64)
    model.eval()
    with torch.no_grad():
        with mlp_layer_drop(model, 1, 0.5):
            assert torch.equal(model(input_ids=ids).logits, plain)  # eval: no drop
            model.train()
            torch.manual_seed(0)
            dropped = model(input_ids=ids).logits
            model.eval()
        as_plain = torch.isclose(dropped, plain, atol=1e-6).flatten(1).all(1)
        as_skipped = torch.isclose(dropped, skipped, atol=1e-6).flatten(1).all(1)
        assert (as_plain ^ as_skipped).all()  # every row is one or the other
        assert 16 < int(as_skipped.sum()) < 48  # about half of 64
        model.train()
        assert torch.equal(model(input_ids=ids).logits, plain)  # the hook is gone
    with pytest.raises(ValueError, match="blocks 0"):
        with mlp_layer_drop(model, 9, 0.5):
            pass
    with pytest.raises(ValueError, match="probability"):
        with mlp_layer_drop(model, 0, 1.0):
            pass


def test_mlp_off_until_zeroes_one_mlp_in_training_until_the_step_then_joins():
    """Inside mlp_off_until, a training forward pass before step `steps` is the model whose block-1
    MLP outputs zero (and that MLP gets no gradient); from that step on, and in eval mode, it is
    the plain model, bit for bit; the hook is gone on exit."""
    from editkit.teaching.train import TrainState, mlp_off_until

    model, ids, plain, skipped = _with_and_without_mlp1(4)
    mlp = model.transformer.h[1].mlp
    state = TrainState(step=2)
    with mlp_off_until(model, 1, 3, state):
        model.train()
        out = model(input_ids=ids).logits
        assert torch.equal(out, skipped)
        out.sum().backward()
        assert all(p.grad is None or not p.grad.any() for p in mlp.parameters())
        assert model.transformer.h[0].mlp.c_fc.weight.grad.any()
        model.eval()
        with torch.no_grad():
            assert torch.equal(model(input_ids=ids).logits, plain)
        model.train()
        state.step = 3
        with torch.no_grad():
            assert torch.equal(model(input_ids=ids).logits, plain)
        state.step = 0
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, plain)  # the hook is gone
    with pytest.raises(ValueError, match="blocks 0"):
        with mlp_off_until(model, 9, 3, state):
            pass


def test_mlp_off_steps_must_leave_steps_for_the_mlp():
    from editkit.teaching.train import config_from_args, parser

    def cfg_of(*flags):
        return config_from_args(parser().parse_args(["--out", "/tmp/x", *flags]))

    assert cfg_of("--mlp-off-steps", "10", "--max-steps", "11").mlp_off_steps == 10
    for flags in (("--mlp-off-steps", "11", "--max-steps", "11"), ("--mlp-off-steps", "-1")):
        with pytest.raises(ValueError, match="--mlp-off-steps"):
            cfg_of(*flags)


def _one_adamw_step(cfg):
    """The optimizer and a small GPT-2's parameters before and after one AdamW step of
    make_optimizer(cfg) at rate 1e-2 (set_rates), on a fixed batch; same seed every call."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from editkit.teaching.train import make_optimizer, set_rates

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, n_positions=16,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    ids = torch.randint(0, 50, (3, 10))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = make_optimizer(model, cfg)
    set_rates(opt, 1e-2)
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    return opt, before, {n: p.detach().clone() for n, p in model.named_parameters()}


def test_mlp_lr_scale_slows_one_mlp_only():
    """With mlp_lr_scale s, block mlp_drop_layer's MLP (weights and biases) gets rate s times the
    schedule's: its first AdamW step (update ∝ rate, decay included) is exactly s times the step
    at s = 1, and every other parameter's step is the same; at s = 1 the groups are the plain
    decay / no-decay pair."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from editkit.teaching.train import TrainConfig, make_optimizer

    plain_opt, before, plain = _one_adamw_step(TrainConfig())
    assert [g["lr_scale"] for g in plain_opt.param_groups] == [1.0, 1.0] and len(plain_opt.param_groups) == 2
    opt, before2, slow = _one_adamw_step(TrainConfig(mlp_lr_scale=0.25, mlp_drop_layer=1))
    assert all(torch.equal(before[n], before2[n]) for n in before)
    in_mlp = [n for n in before if n.startswith("transformer.h.1.mlp.")]
    assert len(in_mlp) == 4  # c_fc and c_proj, weight and bias
    for n in before:
        full, got = plain[n] - before[n], slow[n] - before[n]
        if n in in_mlp:
            assert full.abs().max() > 0
            torch.testing.assert_close(got, 0.25 * full, rtol=1e-4, atol=1e-9)
        else:
            torch.testing.assert_close(got, full, rtol=1e-5, atol=1e-9)
    assert sorted(g["lr_scale"] for g in opt.param_groups) == [0.25, 0.25, 1.0, 1.0]
    two_blocks = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, n_positions=16))
    with pytest.raises(ValueError, match="mlp_drop_layer 5: the model has blocks 0..1"):
        make_optimizer(two_blocks, TrainConfig(mlp_lr_scale=0.5, mlp_drop_layer=5))


def test_mlp_lr_scale_must_be_positive():
    from editkit.teaching.train import config_from_args, parser

    for bad in ("0", "-1"):
        with pytest.raises(ValueError, match="--mlp-lr-scale"):
            config_from_args(parser().parse_args(["--out", "/tmp/x", "--mlp-lr-scale", bad]))


def test_the_trainer_builds_the_named_corpus(tmp_path):
    from editkit.teaching.train import TrainConfig, make_corpus

    (tmp_path / "wikipedia").mkdir()
    (tmp_path / "wikipedia" / "wiki_00").write_text('<doc id="1">\nT\nsome text\n</doc>\n')
    c = make_corpus(TrainConfig(corpus="people", people=7, attributes=2, phrasings=1), tmp_path)
    assert len(c.facts) == 14 and c.wiki == ["some text"] and len(c.documents(0)) == 7
    with pytest.raises(ValueError, match="choose one of"):
        make_corpus(TrainConfig(corpus="nope"), tmp_path)


@pytest.fixture(scope="module")
def people_model_folder(tmp_path_factory):
    """A tiny random GPT-2 saved beside the splits.json of a 40-person population."""
    from models import tiny, tokenizer

    folder = tmp_path_factory.mktemp("people-model")
    model, tok = tiny("gpt2"), tokenizer()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    corpus = PeopleCorpus(People(seed=5, n=40, attributes=5, phrasings=3, name_pool=9), [])
    (folder / "splits.json").write_text(__import__("json").dumps(corpus.splits_json()))
    return folder, model, tok, corpus.people


def test_cases_are_the_known_facts_split_into_train_and_val(people_model_folder):
    """cases.write keeps exactly the records whose true object the model prefers to target_new after
    the edit prompt, tune first; "<folder>:val" then reads them as a data set, and becomes the
    default data set of that model."""
    from editkit.evaluation.datasets import default_dataset, load
    from editkit.scoring import compare
    from editkit.teaching.cases import people_of, write

    folder, model, tok, people = people_model_folder
    assert people_of(folder).persons == people.persons
    counts = write(model, tok, folder, tune=10)
    every = requests(people, len(people.facts), seed=0)
    rw = [r["requested_rewrite"] for r in every]
    known = compare(model, tok, [w["prompt"].format(w["subject"]) for w in rw], [w["target_true"]["str"] for w in rw],
                    [w["target_new"]["str"] for w in rw]).tolist()
    assert 0 < sum(known) < len(every)  # a random model knows some, not all: the filter is exercised
    expected = [r for r, k in zip(every, known) if k]
    train, val = load(f"{folder}:train"), load(f"{folder}:val")
    assert train.records + val.records == expected and len(train) == 10 and counts == {
        "facts": len(every), "known": len(expected), "train": 10, "val": len(expected) - 10}
    assert train.kind == "counterfact" and train.requests()[0].subject == expected[0]["requested_rewrite"]["subject"]
    assert default_dataset(str(folder), "val") == f"{folder}:val"
    assert default_dataset(str(folder), "test") == "counterfact:test" and default_dataset("gpt2", "val") == "counterfact:val"
    with pytest.raises(ValueError, match="too few"):
        write(model, tok, folder, tune=len(expected))


def test_statistics_text_is_another_population_then_wikipedia(people):
    from editkit.teaching.people import key_statistics_documents

    docs = list(key_statistics_documents(people, iter(["wiki one", "wiki two"]), passes=2))
    assert docs[-2:] == ["wiki one", "wiki two"] and len(docs) == 2 * people.n + 2
    names = {p["name"] for p in people.persons}
    assert not any(n in d for d in docs[:-2] for n in names)  # none of the people an edit is about
    assert all(any(t.format("X").split("X")[0] in d for r in RELATIONS for t in people.train_phrasings(r)) for d in docs[:5])
