"""Separators of the per-instrument experiment: the Open-Unmix network trained here, the
separator registry, and the adapters of published weights (run at random weights, their
files served by a real loopback HTTP server)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from http_server import serve

from mirsim.datasets.download import ChecksumError, fetch_file
from mirsim.datasets.synthetic_multitrack import synthetic_multitrack
from mirsim.errors import MirsimError
from mirsim.experiments.per_instrument import separate_songs
from mirsim.separation.separators import (HPSSSeparator, load_separator, make_separator,
                                         run_separator)
from mirsim.separation.unmix import TARGETS, OpenUnmixSeparator, UnmixNet

SR = 8000
TINY = dict(n_fft=256, hop_length=64, hidden_size=8, nb_layers=1, excerpt_seconds=0.5,
            batch_size=4)


@pytest.fixture(scope="module")
def songs():
    return synthetic_multitrack(4, 2.0, SR, seed=0)


@pytest.fixture(scope="module")
def fitted(songs):
    return OpenUnmixSeparator(epochs=4, lr=3e-3, **TINY).fit([s["mix"] for s in songs[:3]],
                                                             songs[:3], SR)


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_trained_separator_gives_finite_stems_of_the_mix_length(fitted, songs):
    mix = songs[3]["mix"][: SR + 123]  # not a whole number of hops
    out = fitted.separate(mix, SR)
    assert sorted(out) == sorted(TARGETS)
    for stem in out.values():
        assert stem.shape == mix.shape and np.isfinite(stem).all()
    # the soft masks (with the residual's) sum to one: the stems never exceed the mix
    total = sum(out.values())
    assert np.sqrt(np.mean(total ** 2)) <= np.sqrt(np.mean(mix ** 2)) * 1.05


def test_training_reduces_the_loss(fitted):
    assert len(fitted.history_) == 4
    assert fitted.history_[-1] < fitted.history_[0]


def test_training_is_seeded(songs):
    def fit(seed):
        return OpenUnmixSeparator(epochs=1, seed=seed, **TINY).fit(
            [s["mix"] for s in songs[:2]], songs[:2], SR).separate(songs[3]["mix"], SR)

    a, b, c = fit(0), fit(0), fit(1)
    assert np.array_equal(a["bass"], b["bass"]) and not np.array_equal(a["bass"], c["bass"])


def test_save_and_load_give_identical_stems(fitted, songs, tmp_path):
    fitted.save(tmp_path / "separator")
    again = load_separator(tmp_path / "separator")
    assert isinstance(again, OpenUnmixSeparator) and again.history_ == fitted.history_
    mix = songs[3]["mix"]
    for name, stem in fitted.separate(mix, SR).items():
        assert np.array_equal(again.separate(mix, SR)[name], stem)


def test_a_run_separates_with_its_own_fitted_separator(fitted, songs, tmp_path):
    """What index builds and the stem endpoint use: the run's saved separator, never a new
    untrained one; a trainable separator the run did not save is a one-line error."""
    fitted.save(tmp_path / "run" / "separator")
    mine = run_separator(tmp_path / "run", "openunmix")
    mix = songs[3]["mix"]
    assert np.array_equal(mine.separate(mix, SR)["bass"], fitted.separate(mix, SR)["bass"])
    assert run_separator(tmp_path / "other", "hpss").name == "hpss"
    with pytest.raises(MirsimError, match="not saved"):
        run_separator(tmp_path / "other", "openunmix")


def test_an_unfitted_or_wrong_rate_separation_is_a_one_line_error(fitted, songs):
    with pytest.raises(MirsimError, match="fit the separator"):
        OpenUnmixSeparator(**TINY).separate(songs[0]["mix"], SR)
    with pytest.raises(MirsimError, match=f"trained at {SR} Hz"):
        fitted.separate(songs[0]["mix"], 2 * SR)


def test_separate_songs_fits_on_the_training_songs_only(songs):
    seen = []

    class Recording(OpenUnmixSeparator):
        def fit(self, mixes, stems, sr):
            seen.extend(id(m) for m in mixes)
            return super().fit(mixes, stems, sr)

    # the test songs have no stems: fitting on one of them would fail
    test_song = {"mix": songs[3]["mix"]}
    data = [*songs[:2], test_song]
    out = separate_songs(data, SR, Recording(epochs=1, **TINY), train=[True, True, False])
    assert seen == [id(songs[0]["mix"]), id(songs[1]["mix"])]
    assert {"separated-drums", "separated-bass", "separated-piano"} <= set(out[2])
    assert len(out[2]["separated-piano"]) == len(test_song["mix"])
    with pytest.raises(ValueError, match="train="):
        separate_songs(data, SR, "openunmix")


def test_hpss_is_a_separator_that_learns_nothing(songs):
    from mirsim.separation.hpss import hpss_separate

    sep = make_separator("hpss")
    assert not sep.trainable and sep.fit([], [], SR) is sep
    expected = hpss_separate(songs[0]["mix"], SR)
    out = sep.separate(songs[0]["mix"], SR)
    assert all(np.array_equal(out[k], expected[k]) for k in expected)
    assert isinstance(sep, HPSSSeparator)


def test_bad_separator_names_and_parameters_are_one_line_errors():
    with pytest.raises(MirsimError, match="unknown separator 'demix'.*openunmix"):
        make_separator("demix")
    with pytest.raises(MirsimError, match="no parameter 'epoch'.*epochs"):
        make_separator("openunmix", epoch=3)
    with pytest.raises(MirsimError, match="epochs"):
        make_separator("openunmix", epochs=0)


def test_fetch_file_checks_a_sha256_prefix(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "w.pth").write_bytes(b"weights")
    digest = _sha256(served / "w.pth")
    with serve(served) as (url, requests):
        got = fetch_file(f"{url}/w.pth", tmp_path / "c" / "w.pth", digest[:8],
                         checksum="sha256-prefix")
        assert got.read_bytes() == b"weights"
        fetch_file(f"{url}/w.pth", got, digest[:8], checksum="sha256-prefix")
        assert len(requests) == 1  # present and valid: not downloaded again
        wrong = "0" * 8 if not digest.startswith("0" * 8) else "1" * 8
        with pytest.raises(ChecksumError):
            fetch_file(f"{url}/w.pth", tmp_path / "d" / "w.pth", wrong, checksum="sha256-prefix")
        assert not (tmp_path / "d" / "w.pth").exists()


@pytest.fixture(scope="module")
def umx_files(tmp_path_factory):
    """Random Open-Unmix networks (a small width) saved as the published umxhq files are:
    a state dict per target, under the published names."""
    from mirsim.separation.pretrained import OPENUNMIX_MODELS
    from mirsim.separation.unmix import max_bin_for

    folder = tmp_path_factory.mktemp("umxhq")
    torch.manual_seed(0)
    for target, name in OPENUNMIX_MODELS["umxhq"]["files"].items():
        net = UnmixNet(2049, 2, 16, 3, max_bin_for(44100, 4096, 16000))
        state = {**net.state_dict(), "stft.window": torch.hann_window(4096)}  # extra kept keys
        torch.save(state, folder / name)
    return folder


def test_umxhq_adapter_downloads_checks_and_separates(umx_files, tmp_path):
    from mirsim.separation.pretrained import OPENUNMIX_MODELS

    expected = {t: _sha256(umx_files / n) for t, n in OPENUNMIX_MODELS["umxhq"]["files"].items()}
    mix = np.random.default_rng(0).standard_normal(11025).astype(np.float32) * 0.1
    with serve(umx_files) as (url, requests):
        sep = make_separator("umxhq", weights_dir=tmp_path / "cache", base_url=url,
                             expected=expected, hidden_size=16)
        out = sep.separate(mix, 22050)
        assert len(requests) == 4
        again = make_separator("umxhq", weights_dir=tmp_path / "cache", base_url=url,
                               expected=expected, hidden_size=16).separate(mix, 22050)
        assert len(requests) == 4  # the cached, verified files are reused
    assert sorted(out) == ["bass", "drums", "piano"]
    for name, stem in out.items():
        assert stem.shape == mix.shape and np.isfinite(stem).all()
        assert np.array_equal(stem, again[name])


def test_umx_adapter_refuses_a_wrong_file_and_missing_weights(umx_files, tmp_path):
    from mirsim.separation.pretrained import OPENUNMIX_MODELS

    mix = np.zeros(4000, np.float32)
    with serve(umx_files) as (url, _):
        sep = make_separator("umxhq", weights_dir=tmp_path / "a", base_url=url, hidden_size=16)
        with pytest.raises(MirsimError, match="checksum mismatch"):
            sep.separate(mix, 22050)  # random weights do not have the published checksum
        wrong_width = {t: _sha256(umx_files / n)
                       for t, n in OPENUNMIX_MODELS["umxhq"]["files"].items()}
        sep = make_separator("umxhq", weights_dir=tmp_path / "b", base_url=url,
                             expected=wrong_width)  # the published width: 512
        with pytest.raises(MirsimError, match="size mismatch"):
            sep.separate(mix, 22050)
    sep = make_separator("umxl", weights_dir=tmp_path / "c", base_url="http://127.0.0.1:9")
    with pytest.raises(MirsimError, match="weights not present") as exc:
        sep.separate(mix, 22050)
    assert "\n" not in str(exc.value)


def test_htdemucs_adapter_at_random_weights(tmp_path):
    pytest.importorskip("demucs")
    from demucs.htdemucs import HTDemucs

    from mirsim.separation.pretrained import DEMUCS_MODELS

    served = tmp_path / "served"
    served.mkdir()
    torch.manual_seed(0)
    kwargs = {"sources": ["drums", "bass", "other", "vocals"], "channels": 8, "t_layers": 1,
              "segment": 1}
    net = HTDemucs(**kwargs)
    name = DEMUCS_MODELS["htdemucs"]["file"]
    torch.save({"klass": HTDemucs, "args": (), "kwargs": kwargs,
                "state": {k: v.half() for k, v in net.state_dict().items()},
                "training_args": {}}, served / name)
    mix = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    with serve(served) as (url, requests):
        sep = make_separator("htdemucs", weights_dir=tmp_path / "cache", base_url=url,
                             expected=_sha256(served / name))
        out = sep.separate(mix, 16000)
        assert len(requests) == 1
        with pytest.raises(MirsimError, match="checksum mismatch"):
            make_separator("htdemucs", weights_dir=tmp_path / "other", base_url=url
                           ).separate(mix, 16000)
    assert sorted(out) == ["bass", "drums", "piano"]
    for stem in out.values():
        assert stem.shape == mix.shape and np.isfinite(stem).all()


def test_reproduce_per_instrument_with_the_trained_separator_and_resume(tmp_path):
    from typer.testing import CliRunner

    from mirsim.cli import app

    runner = CliRunner()
    args = ["reproduce", "per-instrument", "--quick", "--conditions", "mix,separated-drums",
            "--separator", "openunmix", "--separator-param", "seconds_per_song=4",
            "--runs", str(tmp_path), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = json.loads(result.output.strip().splitlines()[-1])
    run_dir = tmp_path / next(p.name for p in tmp_path.iterdir())
    assert table["separator"] == "openunmix"
    assert set(table["separation"]) == {"drums", "bass", "piano"}
    assert "separated stem (openunmix)" in (run_dir / "per_instrument.md").read_text()
    saved = json.loads((run_dir / "separator" / "config.json").read_text())
    assert saved["params"]["seconds_per_song"] == 4 and len(saved["history"]) == 2
    # a resumed run separates with the saved separator: the same stems, the same Table I
    again = runner.invoke(app, ["reproduce", "per-instrument", "--resume", str(run_dir),
                                "--json"])
    assert again.exit_code == 0, again.output
    assert "separator saved in" in again.output
    assert json.loads(again.output.strip().splitlines()[-1])["separation"] == table["separation"]
    bad = runner.invoke(app, ["reproduce", "per-instrument", "--quick", "--separator", "demix",
                              "--runs", str(tmp_path)])
    assert bad.exit_code != 0 and "unknown separator 'demix'" in bad.output
    assert "Traceback" not in bad.output


def test_separator_parameters_from_the_command_line():
    from mirsim.cli.reproduce import _separator_params

    assert _separator_params("openunmix", ["epochs=3", "lr=0.01"], 7) == {
        "seed": 7, "epochs": 3, "lr": 0.01}
    assert _separator_params("umxhq", ["weights_dir=/w", "hidden_size=16"], 0) == {
        "weights_dir": "/w", "hidden_size": 16}
    assert _separator_params("hpss", [], 0) == {}
    with pytest.raises(MirsimError, match="bass_cutoff_hz, margin"):
        _separator_params("hpss", ["weights_dir=/w"], 0)
