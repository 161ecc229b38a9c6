"""Every benchmark script imports (its imports of editkit still exist) without running."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "benchmarks").rglob("*.py"))


@pytest.mark.parametrize("path", SCRIPTS, ids=[str(p.relative_to(ROOT)) for p in SCRIPTS])
def test_benchmark_script_imports(path, monkeypatch):
    monkeypatch.syspath_prepend(str(path.parent))  # sibling helpers (benchmarks/speed/common.py)
    monkeypatch.setattr(sys, "argv", [str(path)])
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)  # module level only: the scripts run under `if __name__ == "__main__"`
    assert module.__doc__, f"{path} should open with what it measures"


def test_the_gpu_check_runs_on_cpu_at_toy_sizes(monkeypatch, tmp_path):
    """benchmarks/gpu/run.py, prepared for a lent GPU, runs end to end on CPU (--quick)."""
    path = ROOT / "benchmarks" / "gpu" / "run.py"
    spec = importlib.util.spec_from_file_location("bench_gpu_run", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    assert module.main(["--device", "cpu", "--quick", "--no-tests", "--out", str(tmp_path)]) == 0
    assert "undo bit-exact True" in (tmp_path / "RESULTS.md").read_text()
