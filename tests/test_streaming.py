"""Chunked imputation of files: equals the in-memory result, same dtypes in every chunk,
atomic outputs, and a checkpointed run that survives SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from revml import ReverseImputer
from revml.cli import main
from revml.streaming import impute_file

ROOT = Path(__file__).resolve().parent.parent

#: Tiny model; dropout > 0 so the per-sample (counter-based) randomness matters.
TINY = dict(random_state=0, epochs=2, n_steps=5, hidden=(8,), bottleneck=2, dropout=0.3)


def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "id": [f"r{i:06d}" for i in range(n)],
            "x": np.round(z + rng.normal(0, 0.3, n), 4),
            "n": np.round(40 + 10 * z).astype(np.int64),
            "flag": z > 0,
            "c": np.where(z > 0.5, "hi", np.where(z < -0.5, "lo", "mid")),
        }
    ).astype({"n": object, "x": object, "flag": object, "c": object})
    hide = rng.random((n, 4)) < 0.15
    for j, col in enumerate(["x", "n", "flag", "c"]):
        df.loc[hide[:, j], col] = None
    df.loc[: n // 3, "n"] = df.loc[: n // 3, "n"].fillna(40)  # a chunk with no missing `n`
    return df


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    from revml.io import infer_types

    frame = infer_types(table(200, seed=1).drop(columns="id").astype(str).replace("None", ""))
    imp = ReverseImputer(**TINY).fit(frame)
    imp.save(folder / "m")
    return folder / "m"


def test_row_offset_reproduces_the_slice_of_a_full_call():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(97, 5))
    X[rng.random(X.shape) < 0.25] = np.nan
    imp = ReverseImputer(**TINY).fit(X)
    full = imp.transform(X)
    for a, b in [(0, 13), (13, 60), (60, 97)]:
        part = imp.transform_details(X[a:b], row_offset=a).X
        np.testing.assert_allclose(part, full[a:b], rtol=0, atol=1e-5)
    # the offset does matter to the loop (on these independent columns the blend may lean
    # wholly on the normal models' conditional means, which no row's seed moves)
    imp.set_params(blend="none")
    shifted = imp.transform_details(X[13:60], row_offset=0).X
    assert not np.allclose(shifted, imp.transform(X)[13:60], atol=1e-5)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_chunked_equals_in_memory(model, tmp_path, ext):
    data = tmp_path / f"in.{ext}"
    df = table(150)
    if ext == "csv":
        df.to_csv(data, index=False)
    else:
        df.astype(str).replace("None", None).to_parquet(data)
    whole, chunked = tmp_path / f"whole.{ext}", tmp_path / f"chunked.{ext}"
    base = ["impute", str(data), "--model", str(model), "--quiet"]
    assert main([*base, "-o", str(whole)]) == 0
    assert main([*base, "-o", str(chunked), "--chunk-rows", "40"]) == 0
    read = pd.read_csv if ext == "csv" else pd.read_parquet
    a, b = read(whole), read(chunked)
    assert list(a.columns) == list(b.columns) and len(a) == len(b) == 150
    assert not b[["x", "n", "flag", "c"]].isna().any().any()
    for col in ["id", "n", "flag", "c"]:
        assert a[col].tolist() == b[col].tolist(), col
    np.testing.assert_allclose(a["x"].astype(float), b["x"].astype(float), rtol=0, atol=1e-5)
    if ext == "csv":
        text = b["n"].astype(str)
        assert text.str.fullmatch(r"-?\d+").all()  # integers in every chunk, never "41.0"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp parts gone


def test_chunk_dtypes_do_not_depend_on_the_chunk(model, tmp_path):
    data = tmp_path / "in.csv"
    table(90).to_csv(data, index=False)
    out = tmp_path / "out.parquet"
    imp = ReverseImputer.load(model)
    stats = impute_file(imp, data, out, chunk_rows=30, checkpoint_dir=tmp_path / "ck")
    assert stats["n_chunks"] == 3 and stats["missing_after"] == 0
    import pyarrow.parquet as pq

    parts = sorted((tmp_path / "ck").glob("part-*.parquet"))
    assert len({str(pq.read_schema(p)) for p in parts}) == 1  # the same schema, uncast
    got = pd.read_parquet(out)
    assert str(got["n"].dtype) == "int64" and got["flag"].dtype == bool


def test_checkpoint_refuses_another_job(model, tmp_path):
    data = tmp_path / "in.csv"
    table(60).to_csv(data, index=False)
    imp = ReverseImputer.load(model)
    impute_file(imp, data, tmp_path / "a.csv", 20, tmp_path / "ck")
    with pytest.raises(ValueError, match=r"different job .*chunk_rows"):
        impute_file(imp, data, tmp_path / "a.csv", 25, tmp_path / "ck")


def _manifest_parts(folder: Path) -> int:
    return len(list(folder.glob("part-*"))) if (folder / "manifest.json").is_file() else 0


def test_resume_after_sigkill_gives_the_uninterrupted_output(model, tmp_path):
    data = tmp_path / "big.csv"
    table(3000, seed=3).to_csv(data, index=False)
    args = ["impute", str(data), "--model", str(model), "--chunk-rows", "100", "--quiet"]
    ref = tmp_path / "ref.csv"
    assert main([*args, "-o", str(ref)]) == 0

    out, ck = tmp_path / "out.csv", tmp_path / "ck"
    cmd = [sys.executable, "-m", "revml.cli", *args, "-o", str(out), "--checkpoint", str(ck)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _manifest_parts(ck) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed: use a bigger file"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _manifest_parts(ck)
    assert 2 <= done < 30 and not out.exists()  # killed mid-run; no partial output
    assert json.loads((ck / "manifest.json").read_text())["chunk_rows"] == 100

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert out.read_bytes() == ref.read_bytes()


def test_a_failed_write_leaves_no_partial_output(tmp_path, monkeypatch):
    from revml.io import write_table

    out = tmp_path / "out.csv"

    def crash(self, path, **kwargs):
        Path(path).write_text("id,x\n1,")  # half a table, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(OSError, match="disk full"):
        write_table(pd.DataFrame({"id": [1], "x": [2.0]}), out)
    assert list(tmp_path.iterdir()) == []


def test_chunked_without_a_model_trains_on_the_first_chunk(tmp_path, capsys):
    data = tmp_path / "in.csv"
    table(120).to_csv(data, index=False)
    out = tmp_path / "out.csv"
    fast = ["--epochs", "2", "--n-steps", "4", "--hidden", "8", "--bottleneck", "2"]
    args = ["impute", str(data), "-o", str(out), "--chunk-rows", "50", "--exclude", "id"]
    assert main([*args, *fast]) == 0
    assert "training on the first 50 rows" in capsys.readouterr().err
    got = pd.read_csv(out)
    assert len(got) == 120 and not got.drop(columns="id").isna().any().any()
    assert main([*args, "--detect"]) == 2
    assert "--detect reads the whole table" in capsys.readouterr().err
