"""The JSON-lines files runs append to and resume from."""

from editkit.jsonl import append_line, read_lines


def test_append_and_read_skip_an_interrupted_line(tmp_path):
    path = tmp_path / "sub" / "runs.jsonl"
    append_line(path, {"a": 1})
    append_line(path, {"b": float("nan")})
    with open(path, "a") as f:
        f.write('{"c": 3, "half')  # a process killed mid-write
    assert read_lines(path)[0] == {"a": 1} and len(read_lines(path)) == 2
    assert read_lines(tmp_path / "missing.jsonl") == []


def test_emit_prints_and_appends_only_with_a_path(tmp_path, capsys):
    import json

    from editkit.jsonl import emit, read_lines

    emit({"a": 1})
    emit({"b": 2}, tmp_path / "r" / "out.jsonl")
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == [{"a": 1}, {"b": 2}]
    assert read_lines(tmp_path / "r" / "out.jsonl") == [{"b": 2}]
