"""``revml`` command line.

    revml detect data.csv                      report values that look like missing markers
    revml fit data.csv -o model                train an imputer and save it
    revml impute data.csv -o filled.csv        fill the missing cells (--model to reuse one;
                                               --restarts 5 --std-out spread.csv: the
                                               spread of each cell over 5 restarts)
    revml evaluate data.csv --chart err.png    compare every method on hidden cells
    revml mnist                                the MNIST reproduction

Errors go to stderr as ``revml: error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def _mnist(args: argparse.Namespace) -> int:
    from .datasets import find_mnist_dir
    from .experiments.mnist import MnistConfig, run

    data_dir = args.data_dir
    if data_dir is None:
        # A local copy beside the checkout, when there is one; otherwise torchvision downloads.
        here = Path(__file__).resolve().parent.parent
        found = find_mnist_dir([here.parent / "shared" / "data", here / "data"])
        data_dir = str(found) if found else None
    if data_dir is None:
        print("no local MNIST copy found: torchvision will download it", file=sys.stderr)
    else:
        print(f"using the MNIST files in {data_dir}", file=sys.stderr)
    run(
        MnistConfig(
            data_dir=data_dir,
            out_dir=args.out,
            n_train=args.n_train,
            n_test=args.n_test,
            band_rows=args.rows,
            seed=args.seed,
            device=args.device,
            backend=args.backend,
            verbose=not args.quiet,
            default_params={} if args.epochs is None else {"epochs": args.epochs},
        )
    )
    return 0


# ---------------------------------------------------------------------- tables


class _Log:
    """Messages for the user on stderr; ``--quiet`` silences all but ``always`` ones."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, msg: str, always: bool = False) -> None:
        if always or not self.quiet:
            print(msg, file=sys.stderr, flush=True)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _marker_spec(spec: str) -> dict | list:
    """``--missing-values``: a detection JSON file, or a comma-separated list of values."""
    from .detect import Detection

    if spec.lower().endswith(".json"):
        return Detection.from_json(spec).missing_values
    values: list = []
    for token in spec.split(","):
        if _NUMBER.match(token.strip()):  # a number matches numeric cells and "-999.0" alike
            number = float(token)
            values.append(int(number) if number.is_integer() else number)
        else:
            values.append(token)
    return values


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _describe_markers(raw, markers) -> list[str]:
    from .detect import count_markers

    lines = []
    for column, counts in count_markers(raw, markers).items():
        found = ", ".join(f"{v!r} ({n} cells)" for v, n in counts.items() if n)
        if found:
            lines.append(f"  {column}: {found}")
    return lines


def _read(args: argparse.Namespace, log: _Log, saved_markers: dict | None = None):
    """Read the data, apply the missing-value markers asked for, type the columns."""
    from .detect import apply_markers, detect
    from .io import infer_types, read_raw, table_format

    raw = read_raw(args.data)
    if raw.shape[1] == 0 or len(raw) == 0:
        raise ValueError(f"{args.data} has no data rows or no columns")
    if table_format(args.data) != "parquet":
        empty = raw.eq("")
        if empty.to_numpy().any():
            log(f"{int(empty.to_numpy().sum())} empty fields are missing values")
            raw = raw.mask(empty, None)
    markers = None
    if args.detect:
        found = detect(raw)
        found.source = str(args.data)
        log(found.report(), always=True)
        markers = found.missing_values
    elif args.missing_values:
        markers = _marker_spec(args.missing_values)
    elif saved_markers:
        log("using the missing-value markers saved with the model", always=True)
        markers = saved_markers
    if markers:
        lines = _describe_markers(raw, markers)
        log("treating as missing:" if lines else "no cell matches the markers", always=True)
        for line in lines:
            log(line, always=True)
        frame = apply_markers(raw, markers)
    else:
        frame = raw
        hint = detect(raw)
        flagged = [str(c.name) for c in hint.columns if c.markers and c.type != "empty"]
        flagged = [c for c in flagged if any(m.kind != "empty" for m in hint[c].markers)]
        if flagged:
            log(
                f"note: `revml detect` finds possible missing-value markers in {len(flagged)} "
                f"column(s) ({', '.join(flagged[:8])}{'...' if len(flagged) > 8 else ''}); "
                "they are kept as data. Add --detect or --missing-values to treat them as "
                "missing.",
                always=True,
            )
    frame = infer_types(frame)
    excluded = _split(getattr(args, "exclude", None))
    unknown = [c for c in excluded if c not in frame.columns]
    if unknown:
        raise ValueError(f"--exclude names columns that are not in {args.data}: {unknown}")
    return frame, excluded, markers


def _imputer_params(args: argparse.Namespace) -> dict:
    params = {
        "random_state": args.seed,
        "device": args.device,
        "verbose": not args.quiet,
        "backend": args.backend,
    }
    if args.epochs is not None:
        params["epochs"] = args.epochs
    if args.n_steps is not None:
        params["n_steps"] = args.n_steps
    if args.hidden is not None:
        try:
            params["hidden"] = tuple(int(h) for h in _split(args.hidden))
        except ValueError:
            raise ValueError(f"--hidden takes widths like 64,32, got {args.hidden!r}") from None
    if args.bottleneck is not None:
        params["bottleneck"] = args.bottleneck
    return params


def _fit_model(frame, args: argparse.Namespace, log: _Log):
    from .imputer import ReverseImputer

    if frame.shape[1] == 0:
        raise ValueError("no column left to learn from (all excluded?)")
    params = _imputer_params(args)
    imp = ReverseImputer(strategy=args.strategy or "reverse", **params)
    log(f"training on {len(frame)} rows x {frame.shape[1]} columns")
    return imp.fit(frame)


def _detect_cmd(args: argparse.Namespace) -> int:
    from .detect import detect

    found = detect(args.data, threshold=args.threshold)
    print(found.report())
    if args.json:
        found.to_json(args.json)
        print(
            f"\nwrote {args.json}: edit it (delete markers you reject), then pass it as "
            "--missing-values to fit, impute or evaluate"
        )
    elif found.missing_values:
        print(
            "\nTo treat these as missing: add --detect to fit, impute or evaluate; or save "
            "them with --json FILE, edit, and pass --missing-values FILE."
        )
    return 0


def _fit_cmd(args: argparse.Namespace) -> int:
    import json

    log = _Log(args.quiet)
    frame, excluded, markers = _read(args, log)
    imp = _fit_model(frame.drop(columns=excluded), args, log)
    out = imp.save(args.output)
    if markers:
        (out / MARKERS_FILE).write_text(json.dumps(_markers_json(markers), indent=1) + "\n")
    loss = f", final training loss {imp.history_[-1]:.5f}" if imp.history_ else ""
    log(f"saved the model to {out}{loss}", always=True)
    return 0


MARKERS_FILE = "missing_values.json"


def _markers_json(markers) -> dict:
    if isinstance(markers, dict):
        return {"columns": {str(k): list(v) for k, v in markers.items()}}
    return {"all_columns": list(markers)}


def _saved_markers(folder: Path):
    import json

    path = folder / MARKERS_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data["columns"] if "columns" in data else data["all_columns"]


def _check_restarts(args: argparse.Namespace) -> None:
    """``--restarts`` / ``--std-out`` mistakes, caught before any work."""
    from .io import table_format

    if args.restarts is not None and args.restarts < 1:
        raise ValueError(f"--restarts must be >= 1, got {args.restarts}")
    if args.std_out is None:
        return
    table_format(args.std_out)
    if args.strategy == "direct":
        raise ValueError(
            "--std-out reports the spread over restarts of reverse training; --strategy "
            "direct is one deterministic pass and has none"
        )
    if args.restarts is not None and args.restarts < 2:
        raise ValueError(f"--std-out needs --restarts K with K >= 2, got {args.restarts}")


def _set_restarts(imp, args: argparse.Namespace) -> None:
    """Apply --restarts to a fitted or loaded imputer (they act on imputation only)."""
    if args.restarts is not None:
        imp.set_params(n_restarts=args.restarts)
    if args.std_out is not None and imp.n_restarts < 2:
        raise ValueError(
            f"--std-out needs --restarts K with K >= 2 (the model in {args.model} has "
            f"n_restarts={imp.n_restarts})"
        )


def _impute_cmd(args: argparse.Namespace) -> int:
    import pandas as pd

    from .imputer import ReverseImputer
    from .io import table_format, write_table
    from .streaming import spread_table

    log = _Log(args.quiet)
    table_format(args.output)  # a bad output name fails before any work
    _check_restarts(args)
    from .distributed import dist_env

    if args.chunk_rows is not None or args.checkpoint is not None or dist_env().active:
        return _impute_chunked(args, log)
    if args.model:
        imp = ReverseImputer.load(args.model, device=args.device)
        imp.set_params(verbose=not args.quiet)
        if args.strategy:
            imp.set_params(strategy=args.strategy)
        frame, excluded, _ = _read(args, log, saved_markers=_saved_markers(Path(args.model)))
        if imp.encoder_ is None:
            raise ValueError(f"the model in {args.model} was not fitted on a table")
        columns = list(imp.encoder_.columns_)
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(f"{args.data} lacks columns the model was fitted on: {absent}")
        passthrough = [c for c in frame.columns if c not in columns]
        if passthrough:
            log(f"columns not in the model, copied unchanged: {passthrough}")
    else:
        frame, excluded, _ = _read(args, log)
        columns = [c for c in frame.columns if c not in excluded]
        imp = _fit_model(frame[columns], args, log)
    _set_restarts(imp, args)
    missing_before = int(frame[columns].isna().to_numpy().sum())
    if args.std_out is None:
        filled = imp.transform(frame[columns])
    else:
        filled, std = imp.transform(frame[columns], return_std=True)
        write_table(spread_table(frame, std), args.std_out)
    result = frame.copy()
    for name in columns:
        result[name] = filled[name]
    result = pd.DataFrame(result, columns=frame.columns)
    left = int(result[columns].isna().to_numpy().sum())
    write_table(result, args.output)
    note = f" ({left} left missing: columns with no observed value)" if left else ""
    spread = f" and the spread over {imp.n_restarts} restarts to {args.std_out}"
    log(
        f"imputed {missing_before - left} missing cells in {len(frame)} rows{note}; wrote "
        f"{args.output}{spread if args.std_out else ''}",
        always=True,
    )
    return 0


#: Rows per chunk when --checkpoint or torchrun asks for chunks and --chunk-rows does not.
DEFAULT_CHUNK_ROWS = 100_000


def _impute_chunked(args: argparse.Namespace, log: _Log) -> int:
    """``impute`` with --chunk-rows / --checkpoint / under torchrun: see revml.streaming."""
    from . import distributed
    from .imputer import ReverseImputer
    from .io import iter_raw, table_format
    from .streaming import impute_file, prepare_chunk

    chunk_rows = args.chunk_rows or DEFAULT_CHUNK_ROWS
    if chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be >= 1, got {chunk_rows}")
    if args.detect:
        raise ValueError(
            "--detect reads the whole table, which chunked imputation avoids: run `revml "
            "detect DATA --json markers.json` once and pass --missing-values markers.json"
        )
    env = distributed.init(args.device)
    device = distributed.device_for(env, args.device)
    prefix = f"[rank {env.rank}/{env.world_size}] " if env.active else ""

    def say(msg: str) -> None:
        log(prefix + msg)

    markers = _marker_spec(args.missing_values) if args.missing_values else None
    if args.model:
        imp = ReverseImputer.load(args.model, device=device)
        imp.set_params(verbose=False)
        if args.strategy:
            imp.set_params(strategy=args.strategy)
        if markers is None:
            markers = _saved_markers(Path(args.model))
        if imp.encoder_ is None:
            raise ValueError(f"the model in {args.model} was not fitted on a table")
    else:
        # No model: train one on the first chunk (every rank the same way; rank 0's
        # weights are then sent to all, so that GPU nondeterminism cannot split them).
        first = next(iter(iter_raw(args.data, chunk_rows)))
        frame = prepare_chunk(first, table_format(args.data), markers, None)
        excluded = _split(args.exclude)
        unknown = [c for c in excluded if c not in frame.columns]
        if unknown:
            raise ValueError(f"--exclude names columns that are not in {args.data}: {unknown}")
        say(f"no --model: training on the first {len(frame)} rows")
        args.device = device
        imp = _fit_model(frame.drop(columns=excluded), args, _Log(True))
        imp.set_params(verbose=False)
        if env.active and imp.autoencoder_ is not None:
            import torch.distributed as dist

            box = [imp.autoencoder_.state_dict() if env.rank == 0 else None, imp.radius_]
            dist.broadcast_object_list(box, src=0)
            imp.autoencoder_.load_state_dict(box[0])
            imp.radius_ = box[1]
    _set_restarts(imp, args)
    stats = impute_file(
        imp,
        args.data,
        args.output,
        chunk_rows,
        args.checkpoint,
        markers=markers,
        rank=env.rank,
        world_size=env.world_size,
        barrier=distributed.barrier if env.active else None,
        log=say,
        std_dst=args.std_out,
    )
    if stats["chunks_skipped"]:
        say(f"resumed: {stats['chunks_skipped']} chunk(s) were done already")
    if env.rank == 0:
        log(
            f"imputed {stats['n_chunks']} chunks of up to {chunk_rows} rows"
            + (f" on {env.world_size} processes" if env.active else "")
            + f"; wrote {args.output}"
            + (f" and {args.std_out}" if args.std_out else ""),
            always=True,
        )
    if env.active:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


def _evaluate_cmd(args: argparse.Namespace) -> int:
    import json

    from .baselines import METHODS
    from .evaluate import compare, format_comparison

    log = _Log(args.quiet)
    methods = _split(args.methods) or None
    unknown = [m for m in methods or [] if m not in METHODS]
    if unknown:  # fail before any work
        raise ValueError(f"unknown method {unknown[0]!r}; expected some of {', '.join(METHODS)}")
    if not 0.0 < args.fraction < 1.0:
        raise ValueError(f"--fraction must be in (0, 1), got {args.fraction}")
    frame, excluded, _ = _read(args, log)
    frame = frame.drop(columns=excluded)
    ae_params = _imputer_params(args)
    ae_params.pop("random_state")
    table = compare(
        frame,
        methods,
        fraction=args.fraction,
        mechanism=args.mechanism,
        seed=args.seed,
        ae_params=ae_params,
        verbose=not args.quiet,
    )
    n_hidden = int(table.loc[table["column"] == "(all)", "n_hidden"].iloc[0])
    print(
        f"{args.data}: {len(frame)} rows x {frame.shape[1]} columns; hid {n_hidden} observed "
        f"cells ({args.fraction:.0%}, {args.mechanism}, seed {args.seed}) and imputed them "
        "with each method.\n"
    )
    print(format_comparison(table))
    if args.json:
        doc = {
            "data": str(args.data),
            "fraction": args.fraction,
            "mechanism": args.mechanism,
            "seed": args.seed,
            "rows": json.loads(table.to_json(orient="records")),
        }
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
        log(f"wrote {args.json}", always=True)
    if args.chart:
        from .plots import error_chart

        error_chart(table, args.chart)
        log(f"wrote {args.chart}", always=True)
    return 0


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--device",
        default=None,
        help="where the autoencoder runs: cpu, cuda, cuda:1... (default: cuda if available)",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars or log lines (results, errors and the markers applied still print)",
    )


def _add_markers(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--detect",
        action="store_true",
        help="treat as missing what `revml detect` reports (the report is printed first)",
    )
    group.add_argument(
        "--missing-values",
        metavar="SPEC",
        help="values that mean missing: a comma-separated list for every column (e.g. "
        "'NA,-999,?') or a JSON file from `revml detect --json` (edit it first to accept or "
        "reject markers). Write --missing-values=-999,NA when the list starts with '-'. Empty "
        "CSV fields are always missing",
    )
    p.add_argument(
        "--exclude",
        metavar="COLS",
        help="comma-separated columns left out of the model and copied unchanged (e.g. IDs)",
    )


def _add_model(p: argparse.ArgumentParser, strategy: bool = True) -> None:
    if strategy:
        p.add_argument(
            "--strategy",
            choices=["reverse", "direct"],
            default=None,
            help="reverse training, or one direct autoencoder pass (default: reverse)",
        )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="autoencoder training epochs (default: sized from the data)",
    )
    p.add_argument(
        "--n-steps", type=int, default=None, help="reverse-training steps per row (default: 75)"
    )
    p.add_argument(
        "--hidden",
        default=None,
        help="encoder hidden widths, e.g. 64,32 (default: sized from the data)",
    )
    p.add_argument(
        "--bottleneck", type=int, default=None, help="code width (default: sized from the data)"
    )
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "reference", "compile", "triton"],
        help="execution path of the reverse loop (default: %(default)s)",
    )


def _add_table_commands(sub) -> None:
    formats = "CSV, TSV or Parquet (by extension)"
    p = sub.add_parser(
        "detect",
        help="report values that look like missing-value markers",
        description="Scan a table and report, per column, the values revml would treat as "
        "missing and why: string markers (NA, null, ?, ...), empty or blank strings, 9s "
        "sentinels far outside the column (-999), zeros where zero is implausible, text in "
        "numeric columns. Nothing is changed; fit, impute and evaluate apply markers only "
        "with --detect or --missing-values.",
    )
    p.add_argument("data", help=f"the table: {formats}")
    p.add_argument("--json", metavar="FILE", help="also write the findings as JSON (editable)")
    p.add_argument(
        "--threshold",
        type=float,
        default=5.0,
        help="robust SDs from the median beyond which a sentinel counts (default: %(default)s)",
    )
    p.set_defaults(func=_detect_cmd)

    p = sub.add_parser(
        "fit",
        help="train an imputer on a table and save it",
        description="Train a ReverseImputer on a table and save it to a folder "
        "(model.safetensors + config.json; no pickle).",
    )
    p.add_argument("data", help=f"the training table: {formats}")
    p.add_argument("-o", "--output", required=True, help="folder to write the model to")
    _add_markers(p)
    _add_model(p)
    _add_common(p)
    p.set_defaults(func=_fit_cmd)

    p = sub.add_parser(
        "impute",
        help="fill the missing values of a table",
        description="Impute a table's missing cells and write the completed table; observed "
        "cells are copied unchanged. Without --model, an imputer is first trained on the "
        "table itself.",
    )
    p.add_argument("data", help=f"the table to complete: {formats}")
    p.add_argument("-o", "--output", required=True, help=f"output table: {formats}")
    p.add_argument("--model", help="a folder written by `revml fit` (default: train one now)")
    p.add_argument(
        "--chunk-rows",
        type=int,
        metavar="N",
        help="read, impute and write N rows at a time, so memory stays bounded whatever the "
        "file size (without --model, the model is trained on the first chunk); under "
        f"torchrun the chunks are shared among the processes (default there: "
        f"{DEFAULT_CHUNK_ROWS})",
    )
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="keep finished chunks in DIR: the same command run again after a crash resumes "
        "where it stopped and writes the same output (implies chunks)",
    )
    p.add_argument(
        "--restarts",
        type=int,
        metavar="K",
        help="run reverse training K times, from the plain start and K-1 perturbed ones, "
        "and write their combination: by default the mean of the K imputations (for a "
        "category, the most probable one) (default: 4, or what the --model was saved with)",
    )
    p.add_argument(
        "--std-out",
        metavar="PATH",
        help="also write the spread of each cell over the K restarts (needs --restarts K >= "
        "2), laid out like the output (format by extension): for numbers the standard "
        "deviation (ddof=1) in the column's units, for categories the share of restarts "
        "that chose another one; 0 for observed cells",
    )
    _add_markers(p)
    _add_model(p)
    _add_common(p)
    p.set_defaults(func=_impute_cmd)

    p = sub.add_parser(
        "evaluate",
        help="compare every imputation method on a table",
        description="Hide a share of the observed cells, impute them with every method "
        "(mean, median, most frequent, iterative regression, kNN, Gaussian (EM), agglomerative "
        "clustering, "
        "direct autoencoder, reverse training) and print RMSE/MAE (min-max scaled) and "
        "accuracy (categorical columns), overall and per column.",
    )
    p.add_argument("data", help=f"the table: {formats}")
    p.add_argument(
        "--fraction",
        type=float,
        default=0.2,
        help="share of observed cells to hide (default: %(default)s)",
    )
    p.add_argument(
        "--mechanism",
        choices=["mcar", "mar", "mnar"],
        default="mcar",
        help="how hidden cells are drawn: completely at random, at random given an observed "
        "column, or not at random (large values hidden more) (default: %(default)s)",
    )
    p.add_argument(
        "--methods",
        help="comma-separated subset of mean,median,most_frequent,iterative,knn,"
        "agglomerative,direct_ae,reverse (default: all)",
    )
    p.add_argument("--chart", metavar="PNG", help="write a per-column error chart")
    p.add_argument("--json", metavar="FILE", help="write the full table as JSON")
    _add_markers(p)
    _add_model(p, strategy=False)
    _add_common(p)
    p.set_defaults(func=_evaluate_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revml",
        description="Missing-data imputation by reverse training. `revml COMMAND --help` "
        "explains each command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "mnist",
        help="reproduce the MNIST experiment (10 of 28 rows missing)",
        description="Train an autoencoder on the MNIST training digits, damage the test "
        "digits by hiding contiguous pixel rows, impute them with zero fill, the "
        "direct autoencoder and reverse training, and print/write the table "
        "(results.json) and a figure (figure.png).",
    )
    p.add_argument(
        "--data-dir",
        help="folder with the four MNIST IDX .gz files (default: "
        "../shared/data/mnist beside the checkout if present, else download)",
    )
    p.add_argument("--out", default="runs/mnist", help="output folder (default: %(default)s)")
    p.add_argument(
        "--n-train", type=int, default=60_000, help="training digits used (default: %(default)s)"
    )
    p.add_argument(
        "--n-test", type=int, default=10_000, help="test digits imputed (default: %(default)s)"
    )
    p.add_argument(
        "--rows",
        type=int,
        default=10,
        help="contiguous pixel rows hidden per digit (default: %(default)s)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="autoencoder training epochs (default: sized from the data)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1... (default: cuda if available)"
    )
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "reference", "compile", "triton"],
        help="execution path of the reverse loop (default: %(default)s)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    p.set_defaults(func=_mnist)
    _add_table_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage or data error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or a usage error (2), already printed
        return int(stop.code or 0)
    try:
        return args.func(args)
    except KeyError as err:
        print(f"revml: error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as err:
        print(f"revml: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
