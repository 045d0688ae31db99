"""save/load: safetensors + JSON, bit-identical imputations, clear errors on bad files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError

from revml import MLPAutoencoder, ReverseImputer, masks
from revml.persistence import CONFIG_FILE, MODEL_FILE

TINY = {
    "hidden": (8,),
    "bottleneck": 2,
    "epochs": 3,
    "n_steps": 8,
    "random_state": 0,
    "backend": "reference",
    "device": "cpu",
}


def table(n=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    x = z @ rng.normal(size=(2, d)) + 3.0
    return masks.apply(x, masks.mcar(x.shape, 0.2, seed=seed))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    x = table()
    imp = ReverseImputer(dropout=0.1, missing_weight=0.5, **TINY).fit(x)
    folder = imp.save(tmp_path_factory.mktemp("model") / "m")
    return imp, folder, x


def test_files_are_safetensors_and_json_only(saved):
    imp, folder, _ = saved
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_FILE, MODEL_FILE]
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["format"] == "revml.ReverseImputer" and config["format_version"] == 1
    assert config["architecture"]["hidden"] == [8] and config["revml_version"]
    assert config["params"]["dropout"] == 0.1
    from safetensors.torch import load_file

    tensors = set(load_file(folder / MODEL_FILE))
    prior = {"prior.mean", "prior.precision"}
    assert (prior <= tensors) == (imp.prior_ is not None)
    blend = {"blend.weights", "blend.data", "blend.seed", "blend.filled"}
    assert (blend <= tensors) == (imp.state_.blend is not None)
    copula = {"blend.copula_weights"}
    taken = imp.state_.blend is not None and imp.state_.blend.copula_weights is not None
    assert (copula <= tensors) == taken
    assert tensors - prior - blend - copula == {
        "encoder.0.weight",
        "encoder.0.bias",
        "encoder.2.weight",
        "encoder.2.bias",
        "decoder.0.weight",
        "decoder.0.bias",
        "decoder.2.weight",
        "decoder.2.bias",
    }


def test_round_trip_is_bit_identical(saved):
    imp, folder, x = saved
    loaded = ReverseImputer.load(folder)
    assert loaded.get_params() == imp.get_params()
    for name, want in imp.scaler_.arrays().items():
        got = loaded.scaler_.arrays()[name]
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    assert loaded.radius_ == imp.radius_ and loaded.history_ == imp.history_
    assert loaded.n_updates_ == imp.n_updates_ > 0
    assert loaded.state_.fingerprint() == imp.state_.fingerprint()
    a, b = imp.transform_details(x), loaded.transform_details(x)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.loss, b.loss)
    assert np.array_equal(a.X_before_clean, b.X_before_clean)
    direct = loaded.set_params(strategy="direct").transform(x)
    assert np.array_equal(direct, imp.set_params(strategy="direct").transform(x))
    imp.set_params(strategy="reverse")


def test_frame_round_trip_keeps_the_encoder(tmp_path):
    rng = np.random.default_rng(1)
    z = rng.normal(size=50)
    df = pd.DataFrame(
        {
            "x": z,
            "n": pd.array(np.round(z * 3).astype(int), dtype="Int64"),
            "c": pd.Categorical(np.where(z > 0, "up", "down")),
            "s": np.where(z > 1, "big", "small").astype(object),
        },
        index=np.arange(50)[::-1],
    )
    df.loc[::6, ["x", "n", "c", "s"]] = None
    imp = ReverseImputer(missing_values=-7, **TINY).fit(df)
    loaded = ReverseImputer.load(imp.save(tmp_path / "frame"))
    pd.testing.assert_frame_equal(loaded.transform(df), imp.transform(df))
    assert loaded.feature_names_in_.tolist() == ["x", "n", "c", "s"]
    assert loaded.encoder_.specs_[2].categories == ["down", "up"]
    assert loaded.missing_values == -7


def test_one_feature_and_pretrained_models(tmp_path):
    x = table(d=1)
    with pytest.warns(UserWarning, match="1 feature"):
        imp = ReverseImputer(**TINY).fit(x)
    loaded = ReverseImputer.load(imp.save(tmp_path / "one"))
    assert loaded.autoencoder_ is None and np.array_equal(loaded.transform(x), imp.transform(x))
    x = table()
    ae = MLPAutoencoder(5, hidden=(6,), bottleneck=2, output_activation="identity")
    imp = ReverseImputer(autoencoder=ae, scaling="minmax", **TINY).fit(x)
    loaded = ReverseImputer.load(imp.save(tmp_path / "pre"))
    assert isinstance(loaded.autoencoder, MLPAutoencoder)  # a refit reuses the given AE
    assert np.array_equal(loaded.transform(x), imp.transform(x))


def test_what_cannot_be_saved(tmp_path):
    x = table()
    with pytest.raises(NotFittedError):
        ReverseImputer().save(tmp_path / "unfitted")
    net = torch.nn.Sequential(torch.nn.Linear(5, 2), torch.nn.ReLU(), torch.nn.Linear(2, 5))
    imp = ReverseImputer(autoencoder=net, sphere_weight=0.0, **TINY).fit(x)
    with pytest.raises(TypeError, match=r"only revml\.model\.MLPAutoencoder"):
        imp.save(tmp_path / "custom")
    imp = ReverseImputer(**{**TINY, "random_state": np.random.RandomState(0)}).fit(x)
    with pytest.raises(ValueError, match="RandomState instance"):
        imp.save(tmp_path / "rs")


def _copy(folder, tmp_path, name):
    import shutil

    return shutil.copytree(folder, tmp_path / name)


def test_missing_truncated_and_tampered_files(saved, tmp_path):
    _, folder, _ = saved
    with pytest.raises(FileNotFoundError, match="no saved imputer"):
        ReverseImputer.load(tmp_path / "nowhere")
    gone = _copy(folder, tmp_path, "gone")
    (gone / MODEL_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors is missing"):
        ReverseImputer.load(gone)

    short = _copy(folder, tmp_path, "short")
    data = (short / MODEL_FILE).read_bytes()
    (short / MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated, corrupted or replaced"):
        ReverseImputer.load(short)

    flipped = _copy(folder, tmp_path, "flipped")
    data = bytearray((flipped / MODEL_FILE).read_bytes())
    data[-3] ^= 0xFF  # same size, one weight changed
    (flipped / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the checksum"):
        ReverseImputer.load(flipped)

    edited = _copy(folder, tmp_path, "edited")
    config = json.loads((edited / CONFIG_FILE).read_text())
    config["params"]["n_steps"] = 1000
    (edited / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="modified after it was saved"):
        ReverseImputer.load(edited)

    cut = _copy(folder, tmp_path, "cut")
    text = (cut / CONFIG_FILE).read_text()
    (cut / CONFIG_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not valid JSON"):
        ReverseImputer.load(cut)

    newer = _copy(folder, tmp_path, "newer")
    config = json.loads((newer / CONFIG_FILE).read_text())
    config["format_version"] = 99
    (newer / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="newer than this revml reads"):
        ReverseImputer.load(newer)


def test_load_on_an_absent_gpu_says_what_to_do(saved, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    _, folder, _ = saved
    with pytest.raises(ValueError, match="pass device='cpu'"):
        ReverseImputer.load(folder, device="cuda")
