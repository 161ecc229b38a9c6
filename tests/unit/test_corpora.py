"""Corpora by name: local text, JSONL, a dataset saved with `datasets`, registered corpora, and
the errors for what is missing."""

import json

import pytest

from editkit.corpora import CORPORA, corpus_identity, documents, register_corpus


def test_local_text_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text('<doc id="1">\nfirst text\n</doc>\n<doc id="2">\nsecond\n</doc>\n')
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "third"}) + "\n\n" + json.dumps({"text": "fourth"}) + "\n")
    assert list(documents(str(tmp_path))) == ["first text", "second", "third", "fourth"]
    ident = corpus_identity(str(tmp_path))
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "third, longer"}) + "\n")
    assert corpus_identity(str(tmp_path)) != ident  # the statistics cache notices a changed corpus
    (tmp_path / "c.jsonl").write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(ValueError, match="'text' field"):
        list(documents(str(tmp_path)))


def test_registered_corpus(monkeypatch):
    monkeypatch.setattr(CORPORA, "_entries", dict(CORPORA._entries))
    register_corpus("toy", "v3", lambda: iter(["a", "b"]))
    assert list(documents("toy")) == ["a", "b"] and corpus_identity("toy") == "generated:toy:v3"
    assert "editkit-teach" in CORPORA.names()  # editkit.teaching registers its own


def test_a_dataset_saved_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets", exc_type=ImportError)  # also when it is installed but breaks on this hub version
    datasets.Dataset.from_dict({"text": ["one", "", "two"]}).save_to_disk(str(tmp_path / "ds"))
    assert list(documents(str(tmp_path / "ds"))) == ["one", "two"]


def test_hub_name_without_datasets_names_the_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_datasets(name, *a, **k):
        if name == "datasets":
            raise ModuleNotFoundError("No module named 'datasets'", name="datasets")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(ValueError, match=r'pip install "editkit\[hub\]"'):
        list(documents("wikimedia/wikipedia:20231101.en"))


def test_parquet_text_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["alpha", " ", "beta"], "id": [1, 2, 3]}), tmp_path / "part-0.parquet")
    assert list(documents(str(tmp_path))) == ["alpha", "beta"]
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "part-1.parquet")
    with pytest.raises(ValueError, match="'text' column"):
        list(documents(str(tmp_path)))


def test_the_teaching_corpus_reads_wikipedia_through_the_one_reader(tmp_path):
    """load_wikipedia: corpora's `<doc>` reader, minus the title line and blank lines; files from
    the end with from_end; max_chars stops after the document that reaches it."""
    from editkit.teaching.corpus import article_text, load_wikipedia

    wiki = tmp_path / "wikipedia"
    wiki.mkdir()
    (wiki / "wiki_00").write_text('<doc id="1" title="A">\nA\n\n  one  \ntwo\n</doc>\n<doc id="2">\nB\n</doc>\n')
    (wiki / "wiki_01").write_text('<doc id="3">\nC\nthree\n</doc>\n')
    assert article_text("Title\n a \n\n b") == "a\nb"
    assert load_wikipedia(tmp_path) == ["one\ntwo", "three"]  # "B" has nothing after its title
    assert load_wikipedia(tmp_path, from_end=True) == ["three", "one\ntwo"]
    assert load_wikipedia(tmp_path, max_chars=1) == ["one\ntwo"] and load_wikipedia(tmp_path, max_chars=0) == []


def test_missing_wikipedia_is_an_error_not_an_empty_text(tmp_path):
    """A data folder without wikipedia/wiki_* (e.g. a checkout copied away from ../shared) once gave
    the teaching model's statistics corpus no Wikipedia at all, silently; now it names the fix."""
    from editkit.teaching.corpus import load_wikipedia

    for folder in (tmp_path, tmp_path / "nowhere"):
        with pytest.raises(FileNotFoundError, match="EDITKIT_DATA"):
            load_wikipedia(folder)
    (tmp_path / "wikipedia").mkdir()
    with pytest.raises(FileNotFoundError, match="no wiki_"):
        load_wikipedia(tmp_path)


@pytest.mark.parametrize("n,length,min_len", [(0, 4, 2), (9, 4, 2), (9, 4, 4), (8, 4, 4), (5, 4, 1), (1, 4, 2)])
def test_pieces_cut_one_document_in_order(n, length, min_len):
    from editkit.tokens import pieces

    ids = list(range(100, 100 + n))
    got = list(pieces(ids, length, min_len))
    whole = [ids[s : s + length] for s in range(0, n, length)]
    assert got == [p for p in whole if len(p) >= min_len]
    assert all(len(p) <= length for p in got) and sum(got, []) == ids[: sum(len(p) for p in got)]
