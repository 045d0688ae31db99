"""Real two-process ``torchrun`` launches (gloo, CPU): sharded imputation equals one process."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from test_streaming import TINY, table

from revml import ReverseImputer
from revml.cli import main
from revml.distributed import shard_bounds

ROOT = Path(__file__).resolve().parent.parent


def torchrun(tmp_path: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*cmd, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_shard_bounds_cover_every_row_once():
    for n in (0, 1, 7, 10, 101):
        for world in (1, 2, 3, 8):
            bounds = [shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


def test_torchrun_two_processes_write_the_single_process_output(tmp_path):
    df = table(240, seed=5)
    data = tmp_path / "in.csv"
    df.to_csv(data, index=False)
    from revml.io import infer_types

    frame = infer_types(df.drop(columns="id").astype(str).replace("None", ""))
    ReverseImputer(**TINY).fit(frame).save(tmp_path / "m")
    args = ["impute", str(data), "--model", str(tmp_path / "m"), "--chunk-rows", "50"]
    single = tmp_path / "single.csv"
    assert main([*args, "-o", str(single), "--quiet"]) == 0
    run = torchrun(tmp_path, "-m", "revml.cli", *args, "-o", str(tmp_path / "dist.csv"))
    assert "on 2 processes" in run.stderr
    assert (tmp_path / "dist.csv").read_bytes() == single.read_bytes()
    assert not list(tmp_path.glob(".dist.csv*"))  # the shared temporary parts are removed


SCRIPT = """
import sys
import numpy as np
import torch.distributed as dist
from revml import ReverseImputer, distributed

distributed.init("cpu")
X = np.load(sys.argv[1])
imp = ReverseImputer.load(sys.argv[2])
out = distributed.impute_distributed(imp, X)
fitted = distributed.fit_distributed(
    ReverseImputer(random_state=0, epochs=3, n_steps=5, hidden=(8,), bottleneck=2), X
)
weights = np.concatenate([p.detach().numpy().ravel() for p in fitted.autoencoder_.parameters()])
everyone = [None, None]
dist.all_gather_object(everyone, weights)
if dist.get_rank() == 0:
    np.save(sys.argv[3], out)
    np.save(sys.argv[4], np.stack(everyone))
dist.destroy_process_group()
"""


def test_impute_distributed_and_ddp_fit_under_torchrun(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(101, 6))
    X[rng.random(X.shape) < 0.2] = np.nan
    np.save(tmp_path / "x.npy", X)
    imp = ReverseImputer(**TINY).fit(X)
    imp.save(tmp_path / "m")
    (tmp_path / "job.py").write_text(textwrap.dedent(SCRIPT))
    torchrun(tmp_path, "job.py", "x.npy", "m", "out.npy", "w.npy")
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), imp.transform(X), atol=1e-5)
    w = np.load(tmp_path / "w.npy")
    np.testing.assert_array_equal(w[0], w[1])  # DDP keeps the ranks' models identical
