"""Objective solvers at d_in = 3072, d_out = 768, float64: time and peak memory for n edits, in
the form each objective chooses and in the other form (to locate the crossover).

    python benchmarks/speed/solvers_bench.py --objectives memit --n 1 10 100 1000 3072 10000

Inputs: K (d_in, n), R (d_out, n) standard normal; C0 = U diag(λ) Uᵀ with U random orthogonal
and λ log-uniform over [1e-4, 1] (so AlphaEdit's null space at threshold 1e-2 is half of d_in);
no earlier keys (Kp = None). Each (objective, form, n) runs in a fresh subprocess:
  cold = first call on a fresh Preservation (includes the Cholesky of C / eigh of C0),
  warm = a second call on the same Preservation (factorisation cached, as when a layer is
         edited again);
  peak = peak RSS during the cold call minus RSS just before it (VmHWM reset through
         /proc/self/clear_refs; torch's CPU allocations are invisible to tracemalloc, RSS sees them).
Forms: nn = the n×n system (EMMET D + αI, MEMIT I + KᵀA⁻¹K, AlphaEdit FᵀF + βI);
       dd = the d_in×d_in system (EMMET KKᵀ + αC, MEMIT λC0 + KKᵀ, AlphaEdit QQᵀ + βI on the r-dim null space).
Appends to benchmarks/speed/results/solvers.jsonl.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import CACHE, load

OUT = Path(__file__).parent / "results" / "solvers.jsonl"
D_IN, D_OUT = 3072, 768


def c0_path() -> Path:
    return CACHE / f"c0-spd-{D_IN}.pt"


def make_c0() -> torch.Tensor:
    p = c0_path()
    if p.exists():
        return torch.load(p)
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(D_IN, D_IN, generator=g, dtype=torch.float64))
    lam = torch.logspace(0, -4, D_IN, dtype=torch.float64)
    C0 = (U * lam) @ U.T
    C0 = (C0 + C0.T) / 2
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save(C0, p)
    return C0


def rss(field: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def solver(objective: str, form: str):
    """(K, R, pres) → ΔW: the objective itself for form 'chosen', else the named form."""
    from editkit.linalg import right_solve
    from editkit.objectives import OBJECTIVES
    from editkit.objectives.null_space import null_basis

    obj = OBJECTIVES.get(objective).build()
    if form == "chosen":
        return obj
    c = obj.config
    if objective in ("emmet", "rome"):
        if form == "nn":
            def f(K, R, p):
                L = p.cholesky(c.mom2_weight, "C", "")
                CinvK = torch.cholesky_solve(K, L)
                D = K.T @ CinvK + c.alpha * torch.eye(K.shape[1], dtype=K.dtype)
                return right_solve(R, D, "D", "") @ CinvK.T
        else:
            def f(K, R, p):
                return right_solve(R @ K.T, K @ K.T + c.alpha * p.weighted(c.mom2_weight), "A", "")
    elif objective == "memit":
        if form == "nn":
            def f(K, R, p):
                L = p.cholesky(c.mom2_weight, "A", "")
                AinvK = torch.cholesky_solve(K, L)
                S = torch.eye(K.shape[1], dtype=K.dtype) + K.T @ AinvK
                return right_solve(R, S, "S", "") @ AinvK.T
        else:
            def f(K, R, p):
                return right_solve(R @ K.T, p.weighted(c.mom2_weight) + K @ K.T, "A", "")
    elif objective == "alphaedit":
        def f(K, R, p):
            U0 = null_basis(p, c.null_threshold)
            Q = U0.T @ K
            if form == "nn":
                G = Q.T @ Q + c.beta * torch.eye(Q.shape[1], dtype=Q.dtype)
                Z = right_solve(R, G, "G", "") @ Q.T
            else:
                G = Q @ Q.T + c.beta * torch.eye(Q.shape[0], dtype=Q.dtype)
                Z = right_solve(R @ Q.T, G, "G", "")
            return Z @ U0.T
    else:
        raise ValueError(objective)
    return f


def one(objective: str, form: str, n: int, threads: int) -> dict:
    """Runs in the child process."""
    from editkit.objectives import Preservation

    torch.set_num_threads(threads)
    C0 = make_c0()
    g = torch.Generator().manual_seed(1)
    K = torch.randn(D_IN, n, generator=g, dtype=torch.float64)
    R = torch.randn(D_OUT, n, generator=g, dtype=torch.float64)
    solve = solver(objective, form)
    pres = Preservation(C0)
    l0 = load()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = rss("VmRSS")
    t = time.perf_counter()
    dW = solve(K, R, pres)
    cold = time.perf_counter() - t
    peak = rss("VmHWM") - base
    t = time.perf_counter()
    solve(K, R, pres)
    warm = time.perf_counter() - t
    fit = float(((dW @ K - R).norm() / R.norm()))
    return dict(objective=objective, form=form, n=n, d_in=D_IN, cold_s=cold, warm_s=warm, peak_mb=peak, rel_residual=fit,
                load=l0, threads=threads, when=time.strftime("%Y-%m-%d %H:%M:%S"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objectives", nargs="+", default=["emmet", "memit", "alphaedit"])
    ap.add_argument("--n", type=int, nargs="+", default=[1, 10, 100, 1000, 2000, 3072, 5000, 10000])
    ap.add_argument("--forms", nargs="+", default=["chosen", "nn", "dd"])
    ap.add_argument("--max-nn", type=int, default=5000, help="largest n for the n×n form")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--one", nargs=3, metavar=("OBJECTIVE", "FORM", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], int(args.one[2]), args.threads)))
        return
    make_c0()
    OUT.parent.mkdir(exist_ok=True)
    print(f"{'objective':<10}{'form':<8}{'n':>7}{'cold s':>9}{'warm s':>9}{'peak MB':>9}{'resid':>10}  load")
    for obj in args.objectives:
        for n in args.n:
            for form in args.forms:
                if form == "nn" and n > args.max_nn:
                    continue
                p = subprocess.run([sys.executable, __file__, "--one", obj, form, str(n), "--threads", str(args.threads)],
                                   capture_output=True, text=True, cwd=Path(__file__).parent)
                if p.returncode:
                    print(f"{obj:<10}{form:<8}{n:>7}  failed: {p.stderr.strip().splitlines()[-1]}", flush=True)
                    continue
                r = json.loads(p.stdout.strip().splitlines()[-1])
                with OUT.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                print(f"{obj:<10}{form:<8}{n:>7}{r['cold_s']:>9.2f}{r['warm_s']:>9.2f}{r['peak_mb']:>9.0f}{r['rel_residual']:>10.2e}  {r['load']}", flush=True)


if __name__ == "__main__":
    main()
