"""Sizes are checked before anything large is read or allocated, and every spec within the
limits goes through codegen, check and derive in bounded memory (issue 11, item 3)."""

import io
import json
import zipfile

import numpy as np
import pytest

from symbp.errors import UnusableInput
from symbp.io.from_keras import load_data, load_model
from symbp.spec import MAX_SPEC_BYTES, Spec, SpecError, dense, network


def dense_config(units: int, inputs: int = 4) -> dict:
    """A Sequential config.json as Keras 3 writes it, with one Dense layer of ``units``."""
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, inputs], "name": "input"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": units, "activation": "linear"},
         "build_config": {"input_shape": [None, inputs]}}]}}


def write_keras(path, config_text: str, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("config.json", config_text)
    return path


def test_keras_file_declaring_a_huge_dense_is_refused_before_loading(tmp_path):
    # 2 KB on disk; building this layer would take 20000 x 20000 x 8 bytes = 3.2 GB
    path = write_keras(tmp_path / "huge.keras", json.dumps(dense_config(20_000)))
    assert path.stat().st_size < 4096
    with pytest.raises(UnusableInput, match=r"units of 20,000; symbp allows at most 1,024"):
        load_model(path)


def test_keras_file_declaring_a_huge_input_is_refused(tmp_path):
    path = write_keras(tmp_path / "wide.keras", json.dumps(dense_config(4, inputs=5_000_000)))
    with pytest.raises(UnusableInput, match=r"input dimension of 5,000,000"):
        load_model(path)


def test_keras_file_with_an_inflating_config_is_refused_by_its_declared_size(tmp_path):
    # a few KB compressed, 5 MB once inflated (the reporter's was 2 GB): refused unread
    padding = " " * (5 * 2**20)
    path = write_keras(tmp_path / "bomb.keras", json.dumps(dense_config(3)) + padding, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(UnusableInput, match=r"config\.json is 5,2\d\d,\d\d\d bytes uncompressed"):
        load_model(path)


def write_npz_headers(path, shapes: dict, dtype="<f8"):
    """A .npz whose members hold only .npy headers declaring ``shapes`` (no data at all)."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, shape in shapes.items():
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": dtype, "fortran_order": False, "shape": shape})
            archive.writestr(f"{key}.npy", header.getvalue())
    return path


def test_npz_declaring_huge_arrays_is_refused_from_its_header(tmp_path):
    path = write_npz_headers(tmp_path / "big.npz", {"x": (20_000, 20_000), "y": (20_000, 1)})
    with pytest.raises(UnusableInput, match=r"array x has shape \(20000, 20000\): at most 10,000 samples"):
        load_data(path)


def test_npz_too_many_features_is_refused(tmp_path):
    path = write_npz_headers(tmp_path / "wide.npz", {"x": (10, 2_000), "y": (10, 1)})
    with pytest.raises(UnusableInput, match=r"at most 1,024 columns"):
        load_data(path)


def test_npz_object_arrays_are_refused(tmp_path):
    path = write_npz_headers(tmp_path / "objects.npz", {"x": (2, 2), "y": (2, 1)}, dtype="|O")
    with pytest.raises(UnusableInput, match=r"array x holds Python objects \(dtype object\)"):
        load_data(path)


def test_npz_within_limits_is_read(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.ones((3, 2)), y=np.zeros((3, 1)))
    data, training = load_data(path)
    assert data == {"x": [[1.0, 1.0]] * 3, "y": [[0.0]] * 3} and training == {}


def test_data_toml_has_the_spec_size_cap(tmp_path):
    path = tmp_path / "data.toml"
    path.write_text("[data]\nx = [[1.0]]\ny = [[0.0]]\n" + "#" * (MAX_SPEC_BYTES + 10) + "\n")
    with pytest.raises(UnusableInput, match=r"larger than 16 MB"):
        load_data(path)


def small_network(widths, samples=4, batch_size=4) -> dict:
    return {"name": "big", "data": {"x": np.zeros((samples, widths[0])).tolist(),
                                    "y": np.zeros((samples, widths[-1])).tolist()},
            "layers": [dense(w, "relu") for w in widths[1:]], "loss": {"name": "mse"},
            "optimizer": {"name": "sgd"}, "training": {"batch_size": batch_size}}


def test_parameter_count_is_limited():
    # 5 layers of 1024 units: 5.2 million parameters, past LIMITS["parameters"]
    widths = [8] + [1024] * 5
    with pytest.raises(SpecError, match=r"layers: at most 4194304 parameters"):
        Spec.from_dict(small_network(widths))


def test_values_in_one_batch_are_limited():
    # 4500 samples in one batch through 1024 units: 4.6 million values
    with pytest.raises(SpecError, match=r"training.batch_size: at most 4194304 values in one batch"):
        Spec.from_dict(small_network([1, 1023, 1], samples=4500, batch_size=4500))
    Spec.from_dict(small_network([1, 1023, 1], samples=4500, batch_size=2000))


def widest_cnn(samples: int, kernel_size: int, batch_size: int) -> dict:
    """32x32 grey images through one Conv2D with "same" padding: 1,024 positions, each a window
    of kernel_size^2 entries."""
    rng = np.random.default_rng(0)
    return {"name": "widest", "data": {"x": rng.random((samples, 32, 32, 1)).round(2).tolist(),
                                       "y": np.eye(2)[rng.integers(0, 2, samples)].tolist()},
            "layers": [{"type": "Conv2D", "filters": 1, "kernel_size": kernel_size, "padding": "same",
                        "activation": "tanh"}, {"type": "Flatten"}, {"units": 2, "activation": "softmax"}],
            "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "adam"},
            "training": {"batch_size": batch_size, "epochs": 2}}


def test_window_entries_in_one_batch_are_limited():
    """The window matrix (positions x window x channels a sample) outgrows every layer's output
    with a large kernel: a 1024x1024 kernel on one 32x32 image asked for 8 GiB."""
    with pytest.raises(SpecError, match=r"layers: at most 16777216 window entries in one batch .* found 1073741824"):
        Spec.from_dict(widest_cnn(1, 1024, 1))
    with pytest.raises(SpecError, match=r"training.batch_size: at most 16777216 window entries .* found 17825792"):
        Spec.from_dict(widest_cnn(17, 32, 17))
    Spec.from_dict(widest_cnn(17, 32, 16))   # 16 x 1024 x 1024: the limit


def many_numbers_spec(samples=300, features=20) -> Spec:
    """A spec with more numbers than a module writes as literals (x alone: 6,000)."""
    rng = np.random.default_rng(1)
    return network("sidecar_net", x=rng.normal(size=(samples, features)).round(3),
                   y=rng.normal(size=(samples, 2)).round(3),
                   layers=[dense(8, "tanh", weights=rng.normal(size=(features, 8)).round(2).tolist(),
                                 bias=[0.1] * 8), dense(2)],
                   loss="mse", optimizer="adam", batch_size=64, epochs=2)


def test_many_numbers_go_to_a_sidecar_npz_the_module_reads(tmp_path, symbp_cli):
    spec = many_numbers_spec()
    out = tmp_path / "gen"
    spec.save(tmp_path / "net.toml")
    result = symbp_cli("codegen", str(tmp_path / "net.toml"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    module_file, data_file = out / "sidecar_net.py", out / "sidecar_net_data.npz"
    assert f"wrote {data_file}" in result.stdout
    source = module_file.read_text()
    assert len(source) < 20_000 and "np.array([[" not in source  # no big literal left
    with np.load(data_file, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["X"], np.array(spec.x))
        np.testing.assert_array_equal(data["W0"], spec.initial_params()["W0"])
    # the written module, imported from its own folder, trains as the spec says
    import importlib.util
    loader = importlib.util.spec_from_file_location("sidecar_net", module_file)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    np.testing.assert_array_equal(module.Y, np.array(spec.y))
    params = module.initial_params()
    params["W0"][0, 0] = 99.0  # the caller's copy: the module's own stays as given
    assert module.initial_params()["W0"][0, 0] == spec.initial_params()["W0"][0, 0]
    from symbp.witnesses.module import module_train
    trained, losses = module.train()
    expected, expected_losses = module_train(spec)
    np.testing.assert_array_equal(trained["W1"], expected["W1"])
    assert losses == expected_losses
    # the same spec regenerates the same bytes
    again = symbp_cli("codegen", str(tmp_path / "net.toml"), "-o", str(tmp_path / "again"))
    assert again.returncode == 0
    assert (tmp_path / "again" / data_file.name).read_bytes() == data_file.read_bytes()


def wide_spec(units=48, depth=3, samples=48, epochs=30) -> Spec:
    """The reporter's --pdf case: 3 layers of 48 units, 48 samples in one batch; many epochs."""
    rng = np.random.default_rng(2)
    return network("wide", x=rng.normal(size=(samples, units)).round(2), y=np.eye(4)[np.arange(samples) % 4],
                   layers=[dense(units, "tanh") for _ in range(depth - 1)] + [dense(4, "softmax")],
                   loss="categorical_crossentropy", optimizer="sgd", batch_size=samples, epochs=epochs)


def widest_matrix(tex: str) -> tuple[int, int]:
    """(rows, columns) of the largest bmatrix in ``tex``."""
    import re
    shapes = [(body.count(r"\\") + 1, body.split(r"\\")[0].count("&") + 1)
              for body in re.findall(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", tex, re.S)]
    return max(r for r, _ in shapes), max(c for _, c in shapes)


def test_handouts_summarize_large_matrices():
    from symbp.emit.handouts import render_handouts
    from symbp.emit.latex import MAX_SHOWN
    handouts = render_handouts(wide_spec())
    for kind, tex in handouts.items():
        rows, columns = widest_matrix(tex)
        assert rows <= MAX_SHOWN and columns <= MAX_SHOWN, (kind, rows, columns)
        assert len(tex) < 300_000, (kind, len(tex))
    assert r"\vdots" in handouts["solution"] and r"\cdots" in handouts["student"]


def test_handouts_of_the_reporters_size_compile_to_pdf(tmp_path):
    from symbp.emit.outputs import compiled_handouts, rendered_outputs
    spec = wide_spec()
    pdfs = compiled_handouts(spec, rendered_outputs(spec, tmp_path), tmp_path)
    assert sorted(p.name for p in pdfs) == ["wide_solution.pdf", "wide_student.pdf"]
    assert all(len(data) > 10_000 and data.startswith(b"%PDF") for data in pdfs.values())


def test_notebooks_past_their_literal_limit_exit_2_and_write_nothing(tmp_path, symbp_cli):
    # 8 layers of 256 units: 399,361 weights and biases the notebooks would write out as literals
    spec = network("deep", x=np.ones((4, 16)), y=np.ones((4, 1)),
                   layers=[dense(256, "relu") for _ in range(7)] + [dense(1)], loss="mse",
                   optimizer="sgd", batch_size=4)
    spec.save(tmp_path / "deep.toml")
    result = symbp_cli("derive", str(tmp_path / "deep.toml"), "--notebook", "--no-check", "-o", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "--notebook: the notebooks would write 399,429 numbers" in result.stderr
    assert not (tmp_path / "out").exists()


def test_long_trainings_show_progress_on_stderr(monkeypatch, capsys):
    from symbp.witnesses import module as generated
    from symbp.witnesses.compare import check
    spec = many_numbers_spec(samples=40)
    check(spec)
    assert "epoch" not in capsys.readouterr().err  # short: nothing printed
    monkeypatch.setattr(generated, "PROGRESS_WORK", generated.training_work(spec))  # as if long
    report = check(spec)
    err = capsys.readouterr().err.splitlines()
    assert report.match
    for who in ("Keras model.fit", "generated module"):
        assert f"{who}: epoch 1/2" in err and f"{who}: epoch 2/2" in err, err


# ---------------------------------------------------------------- memory of whole commands
MEASURE = """\
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE, text=True)
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(done.returncode, peak_kb, done.stderr[-2000:].replace(chr(10), " | "))
"""


def peak_memory(*args: str, timeout: float = 1800) -> tuple[int, int, str]:
    """(exit status, peak resident memory in MB, stderr's end) of ``python -m symbp ARGS``, run in
    a fresh process so that no other child of the test run counts (RUSAGE_CHILDREN is a maximum)."""
    import os
    import subprocess
    import sys
    from tests.conftest import ROOT
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "symbp", *args],
                          env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    status, peak_kb, stderr = done.stdout.split(" ", 2)
    return int(status), int(peak_kb) // 1024, stderr


def write_zeros_spec(path, samples, features, units: list[int], outputs, batch_size, epochs) -> None:
    """A spec file written as text (zeros as ``0``: the most numbers the 16 MB cap lets in)."""
    row = "[" + ",".join(["0"] * features) + "]"
    label = "[" + ",".join(["0"] * (outputs - 1) + ["1"]) + "]"
    layers = "".join(f'\n[[layers]]\nunits = {n}\nactivation = "relu"\n' for n in units)
    path.write_text(
        f'name = "{path.stem}"\n\n[data]\nx = [{",".join([row] * samples)}]\n'
        f'y = [{",".join([label] * samples)}]\n{layers}\n[[layers]]\nunits = {outputs}\n'
        f'activation = "softmax"\n\n[loss]\nname = "categorical_crossentropy"\n\n'
        f'[optimizer]\nname = "adam"\n\n[training]\nbatch_size = {batch_size}\nepochs = {epochs}\n')


def test_a_mid_size_spec_derives_in_little_memory_with_small_outputs(tmp_path):
    # the reporter's mid-size spec: 8 x 256 relu, 1,000 samples (its solution .tex was 159 MB)
    spec_path = tmp_path / "mid.toml"
    write_zeros_spec(spec_path, 1000, 64, [256] * 8, 10, batch_size=1000, epochs=2)
    status, peak_mb, stderr = peak_memory("derive", str(spec_path), "--no-check", "-o", str(tmp_path / "out"))
    assert status == 0, stderr
    assert peak_mb < 700, peak_mb
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "out").iterdir()}
    assert set(sizes) == {"mid.py", "mid_data.npz", "mid_solution.tex", "mid_student.tex"}
    assert sizes["mid.py"] < 30_000 and max(sizes["mid_solution.tex"], sizes["mid_student.tex"]) < 500_000, sizes


@pytest.mark.slow
def test_the_largest_spec_the_validator_accepts_goes_through_in_2_gb(tmp_path):
    """10,000 samples of 780 features (a 15 MB spec file), 4 x 1024 relu + 10 softmax (3.96
    million parameters, the limit 4.19), batches of 858 (4.19 million values, the limit), adam,
    2 epochs: codegen, check and derive each peak under 2 GB (1.8 GB measured; 1.5-4 min)."""
    spec_path = tmp_path / "largest.toml"
    write_zeros_spec(spec_path, 10_000, 780, [1024] * 4, 10, batch_size=858, epochs=2)
    assert spec_path.stat().st_size < MAX_SPEC_BYTES
    spec = Spec.from_dict(__import__("tomllib").loads(spec_path.read_text()))   # accepted
    for command in (["codegen", "-o", str(tmp_path / "gen")], ["check"], ["derive", "-o", str(tmp_path / "out")]):
        status, peak_mb, stderr = peak_memory(command[0], str(spec_path), *command[1:])
        assert status == 0, (command, stderr)
        assert peak_mb < 2048, (command, peak_mb)
        if command[0] != "codegen":
            assert "generated module: epoch 2/2" in stderr  # progress of a long training
    assert (tmp_path / "out" / f"{spec.name}_data.npz").exists()


@pytest.mark.slow
def test_the_widest_cnn_the_validator_accepts_goes_through_in_2_gb(tmp_path):
    """Batches at the window-entries limit (16 images, each 1,024 windows of 32x32), adam,
    2 epochs: codegen, check and derive each peak under 2 GB (0.9 GB measured; ~25 s)."""
    spec_path = tmp_path / "widest.toml"
    spec_path.write_text(Spec.from_dict(widest_cnn(16, 32, 16)).to_toml())
    for command in (["codegen", "-o", str(tmp_path / "gen")], ["check"], ["derive", "-o", str(tmp_path / "out")]):
        status, peak_mb, stderr = peak_memory(command[0], str(spec_path), *command[1:])
        assert status == 0, (command, stderr)
        assert peak_mb < 2048, (command, peak_mb)


def test_data_values_are_limited_before_reading(tmp_path):
    # 10,000 x 1024 is within the samples and features limits, but 10.3 million numbers of data
    path = write_npz_headers(tmp_path / "much.npz", {"x": (10_000, 1024), "y": (10_000, 10)})
    with pytest.raises(UnusableInput, match=r"x and y hold 10,340,000 numbers; at most 8,388,608"):
        load_data(path)


def test_every_registered_numeric_argument_has_a_range():
    """One rule (rules.ranges.require_ranges) for losses and optimizers of both frameworks: a
    numeric argument without an interval is refused where it is registered."""
    from symbp.rules import loss_registry, optimizer_registry
    from symbp.rules.ranges import require_ranges
    from symbp.rules.losses import ARGUMENT_RANGES as KERAS_LOSS_RANGES
    from symbp.rules.optimizers import ARGUMENT_RANGES as KERAS_OPTIMIZER_RANGES
    from symbp.rules.torch_losses import ARGUMENT_RANGES as TORCH_LOSS_RANGES
    from symbp.rules.torch_optimizers import ARGUMENT_RANGES as TORCH_OPTIMIZER_RANGES
    for registry, ranges in ((loss_registry("keras"), KERAS_LOSS_RANGES),
                             (loss_registry("torch"), TORCH_LOSS_RANGES)):
        for name in registry.names():
            require_ranges(name, registry[name].arguments, ranges)
    for registry, ranges in ((optimizer_registry("keras"), KERAS_OPTIMIZER_RANGES),
                             (optimizer_registry("torch"), TORCH_OPTIMIZER_RANGES)):
        for name in registry.names():
            require_ranges(name, registry[name].defaults, ranges)
    require_ranges("a switch needs none", {"amsgrad": False}, {})
    with pytest.raises(ValueError, match=r"loss focal: no range in ARGUMENT_RANGES for \['gamma'\]"):
        require_ranges("loss focal", {"gamma": 2.0, "from_logits": False}, {})
