"""``revml`` command line.

    revml detect data.csv                      report values that look like missing markers
    revml fit data.csv -o model                train an imputer and save it
    revml impute data.csv -o filled.csv        fill the missing cells (--model to reuse one;
                                               --restarts 5 --std-out spread.csv: the
                                               spread of each cell over 5 restarts)
    revml evaluate data.csv --chart err.png    compare every method on hidden cells
    revml mnist                                the MNIST reproduction

This module builds the parser (the estimator's flags come from :mod:`revml.params`); the
commands live in :mod:`revml.commands`, the reading of tables in :mod:`revml.table_input`.
User errors go to stderr as ``revml: error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from . import params as param_table
from .commands import (
    DEFAULT_CHUNK_ROWS,
    detect_cmd,
    evaluate_cmd,
    fit_cmd,
    impute_cmd,
    mnist_cmd,
)
from .errors import InvalidParameterError, RevmlError

__all__ = ["build_parser", "main"]


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
        "'-999,?,unknown') or a JSON file from `revml detect --json` (edit it first to accept "
        "or reject markers). Write --missing-values=-999,? when the list starts with '-'. "
        "Empty CSV fields are always missing, and so are pandas' default NA tokens unless "
        "--no-default-na",
    )
    _add_default_na(p)
    p.add_argument(
        "--exclude",
        metavar="COLS",
        help="comma-separated columns left out of the model and copied unchanged (e.g. IDs)",
    )


def _add_default_na(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-default-na",
        action="store_true",
        help="keep pandas' default NA tokens (NA, N/A, NULL, NaN, None, n/a, nan, null, "
        "#N/A, <NA>, ...) and blank cells of a CSV/TSV file as data, for tables where 'NA' "
        "is a value; only empty fields are missing then (as pandas' keep_default_na=False)",
    )


def _add_model(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """The estimator's flags, from the parameter table (:mod:`revml.params`): a flag the
    user does not give is absent from the arguments, so the estimator's default (or a
    loaded model's saved value) applies."""
    for param in param_table.cli_params():
        if param.name in skip:
            continue
        choices = param.choices
        p.add_argument(
            param.flag,
            dest=param.name,
            default=argparse.SUPPRESS,
            choices=choices if choices and param.parse is None else None,
            type=_flag_type(param),
            help=param.help.replace("%(default)s", str(param.default)),
        )


def _flag_type(param):
    parse = param.parse or str

    def read(text: str):
        try:
            value = parse(text)
            param.check(value)
        except (ValueError, InvalidParameterError) as err:
            raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None
        return value

    read.__name__ = param.name  # argparse names the type in its messages
    return read


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
    _add_default_na(p)
    p.set_defaults(func=detect_cmd)

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
    p.set_defaults(func=fit_cmd)

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
        "category, the most probable one) (default: 2, or what the --model was saved with)",
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
    p.set_defaults(func=impute_cmd)

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
    # evaluate compares every method: the table encoders of the baselines take their defaults
    _add_model(p, skip=("strategy", "max_categories"))
    _add_common(p)
    p.set_defaults(func=evaluate_cmd)


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
    p.set_defaults(func=mnist_cmd)
    _add_table_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    A usage error, or an error revml raises for something the user can fix (its own
    :class:`~revml.errors.RevmlError` family, and ``ValueError`` from validating input),
    prints ``revml: error: ...`` and returns 2. Anything else is a bug: its traceback shows.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or a usage error (2), already printed
        return int(stop.code or 0)
    try:
        return args.func(args)
    except (RevmlError, ValueError) as err:
        print(f"revml: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
