"""The `editkit` command line: a thin layer over the Python API.

    editkit edit  --prompt "{} plays the sport of" --subject "Michael Jordan" --target baseball
    editkit edit  --requests reqs.json --objective memit --distribute --save-edit my-edit
    editkit eval  --dataset counterfact:val --n 200 [--edit my-edit] [--generation]
    editkit sweep --spec sweep.json --out results.jsonl --plots plots/ --table table.md
    editkit stats --layers 3,4,5 --n-tokens 100000
    editkit sequential --objective encore --batches 20 --batch-size 100 --out runs/encore
    editkit list      (the registered objectives, strategies and transforms)
    editkit trace --facts counterfact:val --n 100 --out trace.png      editkit demo …   (editkit.demo.main)

Common flags: --model (default: editkit-teach, the shipped teaching model), --objective,
--strategy (--distribute = --strategy spread), --layers, --hparam k=v (repeatable; any Editor keyword or objective
hyperparameter), --seed, --no-progress. Results are printed as tables; progress goes to logging
and tqdm.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from .report import fmt

log = logging.getLogger(__name__)

DEFAULT_MODEL = "editkit-teach"
PASSTHROUGH = {"demo": "editkit.demo"}
SINGULAR_COND = 1e12  # `stats`: above this λmax/λmin, C0 is called (numerically) singular (its message says 1e12)


# ---------------------------------------------------------------- parsing helpers
def parse_layers(text: str | None) -> list[int] | str | None:
    """"3,4,5", "3-5" or "5" → [3, 4, 5] / [5]; "auto" stays "auto" (a causal trace picks them); None stays None."""
    if text is None or text.strip() == "auto":
        return None if text is None else "auto"
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part[1:]:
            a, b = part.split("-", 1) if not part.startswith("-") else (part, "")
            out += list(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def parse_value(text: str):
    """JSON when it parses (numbers, true/false, lists), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_pairs(items: list[str] | None, flag: str = "--hparam") -> dict:
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SystemExit(f"{flag} {item!r}: write key=value")
        out[key.strip()] = parse_value(value)
    return out


def parse_grid(items: list[str] | None) -> dict[str, list]:
    """--grid alpha=0.01,0.1,1 → {"alpha": [0.01, 0.1, 1]} (a JSON list also works)."""
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"--grid {item!r}: write key=v1,v2,…")
        v = parse_value(value)
        out[key.strip()] = v if isinstance(v, list) else [parse_value(x) for x in value.split(",")]
    return out


def read_requests(path: str):
    """EditRequests from a JSON file: a list (or one object) of EditRequest fields, CounterFact
    records (flat or ROME format) or zsRE records."""
    from .requests import EditRequest

    data = json.loads(Path(path).read_text())
    data = data if isinstance(data, list) else [data]
    out = []
    for r in data:
        if "requested_rewrite" in r or "rephrase_prompt" in r or "ground_truth" in r:
            out.append(EditRequest.from_counterfact(r))
        elif "src" in r and "alt" in r:
            out.append(EditRequest.from_zsre(r))
        else:
            out.append(EditRequest(**r))
    return out


# ---------------------------------------------------------------- the parser
def _common(p: argparse.ArgumentParser, editing: bool = True) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help="hub name, local folder, or a shipped model (default: %(default)s)")
    p.add_argument("--device", default=None, help="e.g. cuda, cpu (default: where the model loads)")
    p.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"])
    if editing:
        p.add_argument("--objective", default=None, help="a registered objective (`editkit list`; default: emmet)")
        p.add_argument("--strategy", default=None, help="a registered edit-distribution strategy (`editkit list`; default: single)")
        p.add_argument("--distribute", action="store_true", help="the older spelling of --strategy spread (MEMIT-style)")
        p.add_argument("--layers", default=None, help="edited layers: 3,4,5 or 3-5, or auto (from a causal trace; default: the model's)")
        p.add_argument("--hparam", action="append", metavar="K=V", help="any Editor keyword or objective hyperparameter (repeatable)")
        p.add_argument("--no-shipped-hparams", action="store_true",
                       help="ignore the model's hparams.json (by default a model that ships one starts from it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (on a busy shared CPU, 1 can be several times faster than the default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="editkit", description="Locate-and-edit knowledge editing: objective solver × edit-distribution strategy.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("edit", help="edit a model and show before/after predictions")
    _common(p)
    p.add_argument("--requests", help="JSON file of requests (EditRequest fields, CounterFact or zsRE records)")
    p.add_argument("--prompt", help='prompt with "{}" for the subject (or the subject written out)')
    p.add_argument("--subject")
    p.add_argument("--target", help="the new object")
    p.add_argument("--true", dest="target_true", help="the true object (to show P(true))")
    p.add_argument("--show-tokens", type=int, default=3, help="greedy tokens shown as the top prediction")
    p.add_argument("--save-edit", metavar="DIR", help="save the Edit (safetensors + JSON)")
    p.add_argument("--save-model", metavar="DIR", help="save the edited model and tokenizer (save_pretrained)")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("eval", help="metrics of a model (or model + a saved edit) on a data set slice")
    _common(p, editing=False)
    p.add_argument("--dataset", default=None, help="counterfact[:train|val|rome], zsre[:train|eval|rome], <model>:val (cases a model "
                   "folder ships) or a path; default: the model's own cases (editkit-teach:val), else counterfact:val")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--edit", metavar="DIR", help="a saved Edit to apply before evaluating (the unedited model is evaluated too)")
    p.add_argument("--generation", action="store_true", help="add generation entropy and reference score (CounterFact)")
    p.add_argument("--batch-size", type=int, default=64, help="sequences per forward pass")
    p.add_argument("--out", metavar="JSON", help="write summary and per-request rows here")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("sweep", help="grid over objective × strategy × batch size × hyperparameters")
    _common(p)
    p.add_argument("--spec", help="JSON file with SweepSpec fields (flags given here override it)")
    p.add_argument("--dataset")
    p.add_argument("--start", type=int)
    p.add_argument("--n", type=int, help="cases per run (at least the batch size)")
    p.add_argument("--objectives", help="comma-separated (default: rome,emmet,memit,alphaedit)")
    p.add_argument("--strategies", help="comma-separated registered strategies, e.g. single,spread,pmet (`editkit list`)")
    p.add_argument("--batch-sizes", help="comma-separated, e.g. 1,16,64")
    p.add_argument("--grid", action="append", metavar="K=V1,V2", help="a swept hyperparameter (objective.key for one objective)")
    p.add_argument("--generation", action="store_true")
    p.add_argument("--rows", action="store_true", help="also store each run's per-request rows (for bootstrap intervals)")
    p.add_argument("--out", default="sweep.jsonl", help="JSONL results (appended; done runs skipped)")
    p.add_argument("--plots", metavar="DIR", help="write PNG plots here")
    p.add_argument("--table", metavar="MD", help="write the markdown table here")
    p.add_argument("--report-only", action="store_true", help="only make plots/table from --out")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("stats", help="precompute key statistics C0 = E[kkᵀ] for layers")
    _common(p, editing=False)
    p.add_argument("--layers", default=None, help="3,4,5 or 3-5 (default: the model's hparams.json layers, else its default edit layers)")
    p.add_argument("--corpus", default=None, help="default: the model's hparams.json corpus, else wikipedia")
    p.add_argument("--n-tokens", type=int, default=None, help="default: the model's hparams.json, else 100000")
    p.add_argument("--max-len", type=int, default=None, help="default: the model's hparams.json, else 128")
    p.add_argument("--recipe", default=None, choices=["editkit", "original"], help="original: 100000 documents at the model's context, as rome/layer_stats.py")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--stats-dtype", default=None, choices=["float32", "float64"])
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--export-npz", metavar="DIR",
                   help="also write them in rome/memit/AlphaEdit's layout: DIR/<model>/<corpus>_stats/<module>_<dtype>_mom2_<n>.npz")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("hparams", help="read an hparams file of rome/memit/EMMET/AlphaEdit/ENCORE/EasyEdit, or write editkit's settings as one")
    p.add_argument("file", nargs="?", help="a .json or .yaml hparams file to translate into Editor keyword arguments")
    p.add_argument("--objective", default=None, help="the algorithm, when the file has no alg_name (or to export)")
    p.add_argument("--strategy", default=None)
    p.add_argument("--export", action="store_true", help="print the settings editkit would use on --model under the originals' key names")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_hparams, device=None, dtype=None)

    p = sub.add_parser("sequential", help="T batches of b edits applied cumulatively, with degradation measured (resumable)")
    _common(p)
    p.add_argument("--dataset", default=None, help="default: the model's own cases (editkit-teach:val), else counterfact:train")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--every", type=int, default=5, help="measure every this many batches")
    p.add_argument("--n-other", type=int, default=200, help="never-edited known facts tracked")
    p.add_argument("--transform", action="append", help="a registered post-edit transform (repeatable): rect, prune")
    p.add_argument("--out", help="run folder (spec.json, records.jsonl, edits/); rerun to resume")
    p.add_argument("--report", nargs="+", metavar="RUN", help="only report these run folders")
    p.add_argument("--plots", metavar="DIR")
    p.add_argument("--table", metavar="MD")
    p.set_defaults(func=cmd_sequential)

    p = sub.add_parser("trace", help="causal traces averaged over facts (ROME's protocol): heat maps and the top MLP layers")
    _common(p, editing=False)
    p.add_argument("--facts", "--dataset", dest="facts", default=None,
                   help="facts file: known_1000 (subject, prompt, attribute) or CounterFact (prompt, subject, ground_truth), JSON or JSONL; "
                   "or a data set name (knowns, counterfact:val, editkit-teach:val); default: the model's own cases, else counterfact:val")
    p.add_argument("--n", type=int, default=100, help="number of facts read (default 100)")
    p.add_argument("--out", default="causal_trace.png", help="PNG written")
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--noise", type=float, default=3.0, help="noise std in units of std(W_E)")
    p.add_argument("--window", type=int, default=None,
                   help="layers restored together for mlp/attn (ROME: 10 of GPT-2 XL's 48); default: a fifth of the model's layers, 1 to 10")
    p.add_argument("--k", type=int, default=3, help="how many MLP layers to print")
    p.add_argument("--all", action="store_true", help="also trace facts the model does not know")
    p.add_argument("--min-prob", type=float, default=None, help="a fact is known when P(target) >= this (default: target is the argmax)")
    p.add_argument("--batch-size", type=int, default=512, help="rows per forward pass")
    p.add_argument("--quiet", dest="no_progress", action="store_true", help=argparse.SUPPRESS)  # the older spelling of --no-progress
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("list", help="the registered objectives, strategies and transforms, with the code each follows")
    p.set_defaults(func=cmd_list)

    for name in PASSTHROUGH:
        sub.add_parser(name, help=f"see `editkit {name} --help`", add_help=False)
    return ap


# ---------------------------------------------------------------- shared pieces
def _setup(args) -> None:
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def _load(args):
    from .models import ASSETS, TEACHING_MODEL, load_model, quiet_loading, resolve

    if args.model == TEACHING_MODEL and resolve(args.model) == args.model:
        raise SystemExit(f"the teaching model is not installed ({ASSETS / TEACHING_MODEL} has no config.json); "
                         "pass --model with a hub name or a local folder")
    if args.no_progress:
        quiet_loading()
    try:
        return load_model(args.model, dtype=args.dtype, device=args.device)
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot load model {args.model!r}: {e}") from None


def _strategy(args) -> str:
    if args.distribute and args.strategy not in (None, "spread"):
        raise ValueError(f"--distribute means --strategy spread, but --strategy {args.strategy} was given: give one of them")
    return args.strategy or ("spread" if args.distribute else "single")


def _editor(args, model):
    from .editor import make_editor

    kw = parse_pairs(args.hparam)
    if args.layers:
        kw["layers"] = parse_layers(args.layers)
    return make_editor(model, args.objective or "emmet", _strategy(args), not args.no_shipped_hparams,
                       seed=args.seed, progress=not args.no_progress, **kw)


def _table(header: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in header]] + [[fmt(c, 4) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------- edit
def cmd_edit(args) -> int:
    from .requests import EditRequest

    if args.requests:
        requests = read_requests(args.requests)
    elif args.prompt and args.subject and args.target:
        requests = [EditRequest(prompt=args.prompt, subject=args.subject, target_new=args.target, target_true=args.target_true)]
    else:
        raise SystemExit("give --requests FILE, or --prompt, --subject and --target")
    model, tok = _load(args)
    editor = _editor(args, model)
    from .evaluation.compare import edit_and_compare

    edit, rows = edit_and_compare(model, tok, editor, requests, args.show_tokens)
    print(f"{editor}: {len(requests)} request(s)")
    print(_table(
        ["prompt", "new", "top before", "top after", "P(new) before", "P(new) after", "P(true) before", "P(true) after"],
        [[r["prompt"], r["target_new"], repr(r["before"]), repr(r["after"]), r["p_new_before"], r["p_new_after"],
          r["p_true_before"] if r["target_true"] else None, r["p_true_after"] if r["target_true"] else None] for r in rows],
    ))
    print()
    print(edit.report())
    if args.save_edit:
        print(f"edit saved to {edit.save(args.save_edit)}")
    if args.save_model:
        model.save_pretrained(args.save_model)
        tok.save_pretrained(args.save_model)
        print(f"edited model saved to {args.save_model}")
    return 0


# ---------------------------------------------------------------- eval
def cmd_eval(args) -> int:
    from .evaluation import load
    from .evaluation.compare import evaluate_slice
    from .evaluation.datasets import default_dataset

    args.dataset = args.dataset or default_dataset(args.model, "val")
    data = load(args.dataset, args.start, args.n)  # bad data settings fail before the model loads
    if args.generation and data.kind != "counterfact":
        raise ValueError(f"--generation: generation metrics are defined for CounterFact only, and {args.dataset!r} is {data.kind}")
    model, tok = _load(args)
    res = evaluate_slice(model, tok, data, args.edit, args.generation, args.batch_size, args.seed)
    d = res["dataset"]
    print(f"{d['dataset']} [{d['start']}:{d['start'] + d['n']}] ({d['kind']}), model {args.model}")
    names = [k for k in res["unedited"] if k != "n"]
    if "edited" in res:
        names += [k for k in res["edited"] if k not in names and k != "n"]
        print(_table(["metric", "unedited", "edited"], [[k, res["unedited"].get(k), res["edited"].get(k)] for k in names]))
        e = res["edit"]
        print()
        print(_table(["edit", "value"], [["‖ΔW‖ layer " + l, v] for l, v in e["delta_norm"].items()]
                     + [[k, e[k]] for k in ("memorization_error", "final_memorization_error", "preservation")]))
    else:
        print(_table(["metric", "value"], [[k, res["unedited"][k]] for k in names]))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1, default=str))
        print(f"written to {args.out}")
    return 0


# ---------------------------------------------------------------- sweep
def sweep_spec(args):
    """SweepSpec from --spec (JSON) with the flags given on the command line on top."""
    from .sweep import SweepSpec

    d = json.loads(Path(args.spec).read_text()) if args.spec else {}
    if args.model != DEFAULT_MODEL or "model" not in d:
        d["model"] = args.model
    for name in ("dataset", "start", "n"):
        if getattr(args, name) is not None:
            d[name] = getattr(args, name)
    for name in ("objectives", "strategies"):
        if getattr(args, name):
            d[name] = [x.strip() for x in getattr(args, name).split(",")]
    if args.batch_sizes:
        d["batch_sizes"] = [int(x) for x in args.batch_sizes.split(",")]
    if args.objective and not args.objectives:
        d["objectives"] = [args.objective]
    if (args.distribute or args.strategy) and not args.strategies:
        d["strategies"] = [_strategy(args)]
    fixed = dict(d.get("fixed", {}))
    fixed.update(parse_pairs(args.hparam))
    if args.layers:
        fixed["layers"] = parse_layers(args.layers)
    d["fixed"] = fixed
    d["grid"] = {**d.get("grid", {}), **parse_grid(args.grid)}
    if args.generation:
        d["generation"] = True
    if args.rows:
        d["keep_rows"] = True
    if args.no_shipped_hparams:
        d["shipped_defaults"] = False
    if args.seed or "seed" not in d:
        d["seed"] = args.seed
    return SweepSpec(**d)


def cmd_sweep(args) -> int:
    from .report import markdown_table, plot, require_matplotlib
    from .sweep import read_run_records, run_sweep

    if args.plots:
        require_matplotlib()

    if args.report_only:
        records = [r for r in read_run_records(Path(args.out)) if r.get("kind") == "run"]
        if not records:
            raise SystemExit(f"no runs in {args.out}")
    else:
        spec = sweep_spec(args)
        model, tok = _load(args)
        records = run_sweep(spec, args.out, model, tok, progress=not args.no_progress)
    table = markdown_table(records)
    print(table)
    if args.table:
        Path(args.table).write_text(table + "\n")
    if args.plots:
        for p in plot(records, args.plots):
            log.info("wrote %s", p)
    return 0


# ---------------------------------------------------------------- stats
def cmd_sequential(args) -> int:
    from .report import require_matplotlib
    from .sequential import SequentialSpec, plot, read_runs, run_sequential, table

    if args.plots:
        require_matplotlib()
    folders = args.report or []
    if not args.report:
        if not args.out:
            raise ValueError("--out is required (the run folder; rerun with the same flags to resume)")
        fixed = parse_pairs(args.hparam)
        if args.layers:
            fixed["layers"] = parse_layers(args.layers)
        spec = SequentialSpec(model=args.model, dataset=args.dataset, start=args.start, objective=args.objective or "memit",
                              strategy=_strategy(args) if (args.strategy or args.distribute) else ("single" if args.objective == "rome" else "spread"),
                              transforms=args.transform or [], fixed={"seed": args.seed, **fixed}, batch_size=args.batch_size,
                              n_batches=args.batches, every=args.every, n_other=args.n_other,
                              shipped_defaults=not args.no_shipped_hparams)
        model, tok = _load(args)
        run_sequential(spec, args.out, model, tok, progress=not args.no_progress)
        folders = [args.out]
    runs = read_runs(folders)
    text = table(runs)
    print(text)
    if args.table:
        Path(args.table).write_text(text + "\n")
    if args.plots:
        plot(runs, args.plots)
    return 0


def cmd_hparams(args) -> int:
    from .interop import from_reference_hparams, to_reference_hparams

    if args.export:
        model, _ = _load(args)
        from .editor import make_editor

        editor = make_editor(model, args.objective or "emmet", args.strategy or "single", True, progress=False)
        print(json.dumps(to_reference_hparams(editor.config, model), indent=2))
        return 0
    if not args.file:
        raise ValueError("give an hparams file to read, or --export")
    objective, kwargs, ignored = from_reference_hparams(args.file, args.objective)
    print(json.dumps({"objective": objective, "kwargs": kwargs, "ignored": ignored}, indent=2))
    print(f"# Editor(objective={objective!r}, **kwargs)  (strategy: 'spread' for MEMIT-style layer ranges)", file=sys.stderr)
    return 0


def registered() -> dict[str, dict[str, str]]:
    """{kind: {name: reference}} of every plug-in registered in this installation."""
    from .distribution import STRATEGIES
    from .objectives import OBJECTIVES
    from .transforms import TRANSFORMS

    return {
        "objectives": {n: OBJECTIVES.get(n).reference for n in OBJECTIVES.names()},
        "strategies": {n: STRATEGIES.get(n).reference for n in STRATEGIES.names()},
        "transforms": {n: TRANSFORMS.get(n).reference for n in TRANSFORMS.names()},
    }


def cmd_trace(args) -> int:
    from .trace import run

    model, tok = _load(args)
    return run(args, model.eval(), tok)


def cmd_list(args) -> int:
    for kind, entries in registered().items():
        print(f"{kind}:")
        for name, ref in entries.items():
            print(f"  {name:<12} {ref}")
    return 0


def cmd_stats(args) -> int:
    import torch

    from .architectures import check_layers
    from .config import StatsConfig
    from .distributed import init_from_env, rank, world
    from .editor import default_layers, shipped_hparams
    from .stats import cache_dir, cache_key, entry_name, layer_stats, shipped_dir

    if init_from_env():  # under torchrun: each rank runs its share of the batches
        log.info("key statistics: rank %d of %d", rank(), world())
        if args.device is None and torch.cuda.is_available():
            args.device = f"cuda:{torch.cuda.current_device()}"
    model, tok = _load(args)
    shipped = shipped_hparams(model) or {}  # the settings `edit` and `demo` use on this model
    layers = parse_layers(args.layers) or shipped.get("layers") or default_layers(model)
    check_layers(model, layers)
    given = {"recipe": args.recipe, "corpus": args.corpus, "n_tokens": args.n_tokens, "max_len": args.max_len,
             "batch_size": args.batch_size, "dtype": args.stats_dtype, "cache_dir": args.cache_dir}
    cfg = StatsConfig(**{**shipped.get("stats", {}), **{k: v for k, v in given.items() if v is not None}})
    log.info("key statistics for layers %s: %s", layers, cfg.model_dump(mode="json", exclude={"cache_dir"}))
    stats = layer_stats(model, tok, layers, cfg, progress=not args.no_progress)
    if rank() != 0:
        return 0
    rows = []
    for l in layers:
        C0 = stats[l]
        ev = torch.linalg.eigvalsh(C0)
        name = entry_name(cache_key(model, l, cfg)) + ".safetensors"
        shipped = shipped_dir(model)
        where = shipped / name if shipped is not None and (shipped / name).exists() else cache_dir(cfg) / name
        rows.append([l, C0.shape[0], float(torch.trace(C0)), float(ev[-1] / ev[0].clamp_min(1e-300)), str(where)])
    print(_table(["layer", "d_in", "tr C0", "cond C0 (λmax/λmin)", "file"], rows))
    if args.export_npz:
        from .interop import npz_name, write_mom2_npz

        name = Path(getattr(model.config, "_name_or_path", "") or "model").name
        corpus = "wikipedia" if cfg.corpus == "wikipedia" else Path(cfg.corpus).name.replace(":", "_")
        n = cfg.n_docs or cfg.n_tokens
        for l in layers:
            out = Path(args.export_npz) / name / f"{corpus}_stats" / npz_name(model, l, cfg.dtype, n)
            write_mom2_npz(out, stats[l], count=n, sample_size=n, dtype=cfg.dtype)  # C0 = sum / count whatever the count
            print(f"wrote {out}")
    if any(r[3] > SINGULAR_COND for r in rows):
        print("cond C0 > 1e12: C0 is (numerically) singular there, usually MLP units that never fire on the corpus;"
              " solves then need a ridge (Editor(..., ridge=1e-6)) or statistics over more text.")
    return 0


# ---------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASSTHROUGH:
        try:
            mod = importlib.import_module(PASSTHROUGH[argv[0]])
        except ModuleNotFoundError as e:
            if e.name == PASSTHROUGH[argv[0]]:
                raise SystemExit(f"`editkit {argv[0]}` is not available in this installation ({e.name} is missing)") from None
            raise
        result = mod.main(argv[1:])  # Python callers get the module's return value; the shell gets 0
        return result if isinstance(result, int) else 0
    args = build_parser().parse_args(argv)
    _setup(args)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:  # bad settings, unknown names, missing data: a message, not a traceback
        raise SystemExit(f"editkit {args.command}: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
