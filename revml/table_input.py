"""The command line's reading of a table: pandas' NA tokens, markers asked for or saved
with a model, the note on markers nobody asked to apply, and column typing."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path


class Log:
    """Messages for the user on stderr; ``--quiet`` silences all but ``always`` ones."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, msg: str, always: bool = False) -> None:
        if always or not self.quiet:
            print(msg, file=sys.stderr, flush=True)


def split_list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def marker_spec(spec: str) -> dict | list:
    """``--missing-values``: a detection JSON file, or a comma-separated list of values."""
    from .detect import Detection

    if spec.lower().endswith(".json"):
        return Detection.from_json(spec).missing_values
    values: list = []
    for token in spec.split(","):
        if NUMBER.match(token.strip()):  # a number matches numeric cells and "-999.0" alike
            number = float(token)
            values.append(int(number) if number.is_integer() else number)
        else:
            values.append(token)
    return values


NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def describe_markers(raw, markers) -> list[str]:
    from .detect import count_markers

    lines = []
    for column, counts in count_markers(raw, markers).items():
        found = ", ".join(f"{v!r} ({n} cells)" for v, n in counts.items() if n)
        if found:
            lines.append(f"  {column}: {found}")
    return lines


def describe_default_na(counts: dict) -> str:
    """One line: how many cells reading set missing, by token over all columns."""
    totals: dict[str, int] = {}
    for tokens in counts.values():
        for token, n in tokens.items():
            key = token if token.strip() else "blank" if token else "empty"
            totals[key] = totals.get(key, 0) + n
    order = sorted(totals.items(), key=lambda kv: -kv[1])
    listed = ", ".join(f"{t if t in ('empty', 'blank') else repr(t)} ({n})" for t, n in order)
    return (
        f"read {sum(totals.values())} cells as missing: {listed} (pandas' default NA tokens "
        "and empty or blank cells; --no-default-na keeps the tokens as data)"
    )


def markers_note(raw, data: str) -> list[str]:
    """The note for markers `revml detect` finds but nobody asked to apply: which columns,
    which tokens (with counts), and the exact flag that applies them."""
    from .detect import count_markers, detect

    hint = detect(raw)
    flagged = {
        c.name: [m for m in c.markers if m.kind != "empty"]
        for c in hint.columns
        if c.type != "empty"  # every value a marker: nothing left to learn from anyway
    }
    flagged = {name: found for name, found in flagged.items() if found}
    if not flagged:
        return []
    lines = ["note: `revml detect` finds possible missing-value markers, kept as data:"]
    for name, found in list(flagged.items())[:8]:
        lines.append(f"  {name}: " + ", ".join(f"{m.value!r} ({m.count} cells)" for m in found))
    if len(flagged) > 8:
        lines.append(f"  ... and {len(flagged) - 8} more column(s)")
    values = list(dict.fromkeys(m.value for found in flagged.values() for m in found))
    texts = [str(v) for v in values]
    listable = all("," not in t and not t.lower().endswith(".json") for t in texts)
    flag = "--missing-values=" + shlex.quote(",".join(texts))
    extra: dict = {}
    if listable:
        # A --missing-values list applies to every column: say so when it would also hit
        # cells the detector did not flag (a 0 that is a real count elsewhere, say).
        flagged_counts = {name: sum(m.count for m in found) for name, found in flagged.items()}
        for name, counts in count_markers(raw, marker_spec(",".join(texts))).items():
            n = sum(counts.values()) - flagged_counts.get(name, 0)
            if n > 0:
                extra[name] = n
    json_way = (
        f"`revml detect {shlex.quote(data)} --json markers.json`, edit it and pass "
        "--missing-values=markers.json"
    )
    if listable and not extra:
        lines.append(f"add --detect, or {flag} to treat them as missing")
    elif listable:
        where = ", ".join(f"{name} ({n} cells)" for name, n in extra.items())
        lines.append(
            f"add --detect to treat them as missing; {flag} would also hit other cells, as "
            f"it applies to every column: {where}. To limit markers to their columns, run "
            + json_way
        )
    else:
        lines.append(f"add --detect to treat them as missing, or run {json_way}")
    return lines


def read_table(args: argparse.Namespace, log: Log, saved: dict | None = None):
    """Read the data, apply the missing-value markers asked for, type the columns.

    ``saved`` is what a model folder says about reading (:func:`saved_reading`).
    """
    from .detect import apply_markers, detect
    from .io import default_na_counts, infer_types, mark_default_na, read_raw, table_format

    saved = saved or {}
    keep_default_na = reads_default_na(args, saved, log)
    raw = read_raw(args.data, keep_default_na=False)
    if raw.shape[1] == 0 or len(raw) == 0:
        raise ValueError(f"{args.data} has no data rows or no columns")
    read_as_missing: dict = {}
    if table_format(args.data) != "parquet":
        if keep_default_na:
            # What read_raw(keep_default_na=True) does, counted on the way for the log.
            read_as_missing = default_na_counts(raw)
            if read_as_missing:
                log(describe_default_na(read_as_missing))
            raw = mark_default_na(raw)
        else:
            empty = raw.eq("")
            if empty.to_numpy().any():
                log(f"{int(empty.to_numpy().sum())} empty fields are missing values")
                raw = raw.mask(empty, None)
    markers = None
    if args.detect:
        found = detect(raw)
        found.source = str(args.data)
        found.read_as_missing = read_as_missing
        log(found.report(), always=True)
        markers = found.missing_values
    elif args.missing_values:
        markers = marker_spec(args.missing_values)
    elif saved.get("markers"):
        log("using the missing-value markers saved with the model", always=True)
        markers = saved["markers"]
    if markers:
        lines = describe_markers(raw, markers)
        log("treating as missing:" if lines else "no cell matches the markers", always=True)
        for line in lines:
            log(line, always=True)
        frame = apply_markers(raw, markers)
    else:
        frame = raw
        for line in markers_note(raw, str(args.data)):
            log(line, always=True)
    frame = infer_types(frame)
    excluded = split_list(getattr(args, "exclude", None))
    unknown = [c for c in excluded if c not in frame.columns]
    if unknown:
        raise ValueError(f"--exclude names columns that are not in {args.data}: {unknown}")
    return frame, excluded, markers


MARKERS_FILE = "missing_values.json"


def markers_json(markers) -> dict:
    if isinstance(markers, dict):
        return {"columns": {str(k): list(v) for k, v in markers.items()}}
    return {"all_columns": list(markers)}


def saved_reading(folder: Path) -> dict:
    """How `revml fit` read its data: ``{"markers": ..., "keep_default_na": bool}``."""
    import json

    path = folder / MARKERS_FILE
    if not path.is_file():
        return {"markers": None, "keep_default_na": True}
    data = json.loads(path.read_text())
    markers = data["columns"] if "columns" in data else data.get("all_columns")
    return {"markers": markers or None, "keep_default_na": data.get("keep_default_na", True)}


def reads_default_na(args: argparse.Namespace, saved: dict, log: Log) -> bool:
    """Whether pandas' NA tokens are missing: not with --no-default-na, nor for a model
    fitted with it (the same cells must mean the same at fit and at impute)."""
    if args.no_default_na:
        return False
    if saved.get("keep_default_na", True) is False:
        log("reading the data with --no-default-na, as the model was fitted", always=True)
        return False
    return True
