"""The command line's commands: ``mnist``, ``detect``, ``fit``, ``impute``, ``evaluate``.

Each takes the parsed arguments (:func:`revml.cli.build_parser`) and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import params as param_table
from .table_input import (
    MARKERS_FILE,
    Log,
    marker_spec,
    markers_json,
    read_table,
    reads_default_na,
    saved_reading,
    split_list,
)


def mnist_cmd(args: argparse.Namespace) -> int:
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


def imputer_params(args: argparse.Namespace) -> dict:
    """The estimator parameters the command line sets: the shared options and every flag
    of the parameter table the user gave (the estimator's defaults apply to the rest)."""
    params = {"random_state": args.seed, "device": args.device, "verbose": not args.quiet}
    # Flags the user did not give are absent (argparse.SUPPRESS), so the estimator's
    # defaults apply, and a loaded model keeps what it was saved with.
    for p in param_table.cli_params():
        if hasattr(args, p.name):
            params[p.name] = getattr(args, p.name)
    return params


#: Flags that act on imputation only, so they apply to a loaded --model too (the others
#: describe training and are the model's own).
TRANSFORM_FLAGS = ("strategy", "n_steps", "backend", "threads", "precision")


def transform_flags(args: argparse.Namespace) -> dict:
    """The imputation-time flags the user gave (see :data:`TRANSFORM_FLAGS`)."""
    return {name: getattr(args, name) for name in TRANSFORM_FLAGS if hasattr(args, name)}


def fit_model(frame, args: argparse.Namespace, log: Log):
    from .imputer import ReverseImputer

    if frame.shape[1] == 0:
        raise ValueError("no column left to learn from (all excluded?)")
    params = imputer_params(args)
    imp = ReverseImputer(**params)
    log(f"training on {len(frame)} rows x {frame.shape[1]} columns")
    imp.fit(frame)
    # getattr: estimators from before n_updates_ existed, and fits that train no autoencoder.
    n_updates = getattr(imp, "n_updates_", None)
    if n_updates is not None:
        log(f"trained the autoencoder: {n_updates} updates")
    return imp


def detect_cmd(args: argparse.Namespace) -> int:
    from .detect import detect

    found = detect(args.data, threshold=args.threshold, keep_default_na=not args.no_default_na)
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


def fit_cmd(args: argparse.Namespace) -> int:
    import json

    log = Log(args.quiet)
    frame, excluded, markers = read_table(args, log)
    imp = fit_model(frame.drop(columns=excluded), args, log)
    out = imp.save(args.output)
    if markers or args.no_default_na:
        saved = markers_json(markers or [])
        if args.no_default_na:  # impute --model then reads the data as fit did
            saved["keep_default_na"] = False
        (out / MARKERS_FILE).write_text(json.dumps(saved, indent=1) + "\n")
    loss = f", final training loss {imp.history_[-1]:.5f}" if imp.history_ else ""
    log(f"saved the model to {out}{loss}", always=True)
    return 0


def check_restarts(args: argparse.Namespace) -> None:
    """``--restarts`` / ``--std-out`` mistakes, caught before any work."""
    from .io import table_format

    if args.restarts is not None and args.restarts < 1:
        raise ValueError(f"--restarts must be >= 1, got {args.restarts}")
    if args.std_out is None:
        return
    table_format(args.std_out)
    if getattr(args, "strategy", None) == "direct":
        raise ValueError(
            "--std-out reports the spread over restarts of reverse training; --strategy "
            "direct is one deterministic pass and has none"
        )
    if args.restarts is not None and args.restarts < 2:
        raise ValueError(f"--std-out needs --restarts K with K >= 2, got {args.restarts}")


def set_restarts(imp, args: argparse.Namespace) -> None:
    """Apply --restarts to a fitted or loaded imputer (they act on imputation only)."""
    if args.restarts is not None:
        imp.set_params(n_restarts=args.restarts)
    if args.std_out is not None and imp.n_restarts < 2:
        raise ValueError(
            f"--std-out needs --restarts K with K >= 2 (the model in {args.model} has "
            f"n_restarts={imp.n_restarts})"
        )


def impute_cmd(args: argparse.Namespace) -> int:
    import pandas as pd

    from .imputer import ReverseImputer
    from .io import table_format, write_table
    from .streaming import spread_table

    log = Log(args.quiet)
    table_format(args.output)  # a bad output name fails before any work
    check_restarts(args)
    from .distributed import dist_env

    if args.chunk_rows is not None or args.checkpoint is not None or dist_env().active:
        return impute_chunked(args, log)
    if args.model:
        imp = ReverseImputer.load(args.model, device=args.device)
        imp.set_params(verbose=not args.quiet, **transform_flags(args))
        frame, excluded, _ = read_table(args, log, saved=saved_reading(Path(args.model)))
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
        frame, excluded, _ = read_table(args, log)
        columns = [c for c in frame.columns if c not in excluded]
        imp = fit_model(frame[columns], args, log)
    set_restarts(imp, args)
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


def impute_chunked(args: argparse.Namespace, log: Log) -> int:
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

    markers = marker_spec(args.missing_values) if args.missing_values else None
    saved = saved_reading(Path(args.model)) if args.model else {}
    keep_default_na = reads_default_na(args, saved, Log(True))
    if args.model:
        imp = ReverseImputer.load(args.model, device=device)
        imp.set_params(verbose=False, **transform_flags(args))
        if markers is None:
            markers = saved["markers"]
        if imp.encoder_ is None:
            raise ValueError(f"the model in {args.model} was not fitted on a table")
    else:
        # No model: train one on the first chunk (every rank the same way; rank 0's
        # weights are then sent to all, so that GPU nondeterminism cannot split them).
        first = next(iter(iter_raw(args.data, chunk_rows, keep_default_na=keep_default_na)))
        frame = prepare_chunk(first, table_format(args.data), markers, None)
        excluded = split_list(args.exclude)
        unknown = [c for c in excluded if c not in frame.columns]
        if unknown:
            raise ValueError(f"--exclude names columns that are not in {args.data}: {unknown}")
        say(f"no --model: training on the first {len(frame)} rows")
        args.device = device
        imp = fit_model(frame.drop(columns=excluded), args, Log(True))
        imp.set_params(verbose=False)
        if env.active:
            distributed.broadcast_state(imp)
    set_restarts(imp, args)
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
        keep_default_na=keep_default_na,
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
        distributed.shutdown()
    return 0


def evaluate_cmd(args: argparse.Namespace) -> int:
    import json

    from .baselines import METHODS
    from .evaluate import compare, format_comparison

    log = Log(args.quiet)
    methods = split_list(args.methods) or None
    unknown = [m for m in methods or [] if m not in METHODS]
    if unknown:  # fail before any work
        raise ValueError(f"unknown method {unknown[0]!r}; expected some of {', '.join(METHODS)}")
    if not 0.0 < args.fraction < 1.0:
        raise ValueError(f"--fraction must be in (0, 1), got {args.fraction}")
    frame, excluded, _ = read_table(args, log)
    frame = frame.drop(columns=excluded)
    ae_params = imputer_params(args)
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
