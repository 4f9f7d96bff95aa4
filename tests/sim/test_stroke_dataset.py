"""Stroke datasets: the npz format round trip and the FRIDA stroke library import."""

import gzip

import numpy as np
import pytest

from sim.stroke_dataset import import_frida_library, load_stroke_dataset, save_stroke_dataset

UPSAMPLE = 4  # the FRIDA fixture's canvas has 4x finer pixels than the shared file


def write_frida_library(folder, data, canvas_px=(1800, 800)):
    """A FRIDA-format folder from a dataset: each crop put back into a full-canvas photo.

    Every stroke starts at the canvas centre (FRIDA's convention); batches named by their
    capture number, intensities gzip-compressed, parameters plain for even and gzip for odd
    batches (both occur). Returns the canvas size in meters.
    """
    folder.mkdir(parents=True, exist_ok=True)
    w_px, h_px = canvas_px
    sx, sy = data.start_xy_px
    x0, y0 = w_px // 2 - round(sx * UPSAMPLE), h_px // 2 - round(sy * UPSAMPLE)
    for k, number in enumerate(np.unique(data.capture_file)):
        rows = np.flatnonzero(data.capture_file == number)
        canvases = np.zeros((len(rows), h_px, w_px), np.uint8)
        for j, i in enumerate(rows):
            big = data.intensity[i].repeat(UPSAMPLE, 0).repeat(UPSAMPLE, 1)
            canvases[j, y0 : y0 + big.shape[0], x0 : x0 + big.shape[1]] = big
        with gzip.GzipFile(folder / f"stroke_intensities{number}.npy", "w") as f:
            np.save(f, canvases)
        param_file = folder / f"stroke_parameters{number}.npy"
        if k % 2:
            with gzip.GzipFile(param_file, "w") as f:
                np.save(f, data.params[rows])
        else:
            np.save(param_file, data.params[rows])
    mpp = data.meters_per_pixel / UPSAMPLE
    return w_px * mpp, h_px * mpp


@pytest.fixture
def real(shared_data):
    return load_stroke_dataset(shared_data / "frida_sharpie_strokes.npz")


def test_save_load_round_trip(tmp_path, real):
    part = real.subset(np.arange(5, 17))
    path = save_stroke_dataset(
        tmp_path / "d.npz", part.intensity, part.params[:, :3], part.meters_per_pixel,
        part.start_xy_px, part.capture_file,
    )  # fmt: skip
    back = load_stroke_dataset(path)
    assert np.array_equal(back.intensity, part.intensity)
    assert np.array_equal(back.params[:, :3], part.params[:, :3])
    assert np.all(back.params[:, 3] == 0)
    assert back.start_xy_px == part.start_xy_px and back.frame == part.frame
    assert not list(tmp_path.glob(".*tmp"))  # written atomically


def test_frame_matches_the_images(real):
    f = real.frame
    assert (f.width_px, f.height_px) == (255, 148)
    assert f.x_min == pytest.approx(-46.25 * real.meters_per_pixel)
    assert f.m_per_px == pytest.approx(real.meters_per_pixel)


def test_malformed_files_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, intensity=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="missing"):
        load_stroke_dataset(bad)
    with pytest.raises(ValueError, match="params must be"):
        save_stroke_dataset(tmp_path / "x.npz", np.zeros((2, 4, 4)), np.zeros((3, 4)), 1e-3, (1, 1))
    with pytest.raises(ValueError, match="not finite"):
        save_stroke_dataset(
            tmp_path / "x.npz", np.zeros((1, 4, 4)), [[np.nan, 0, 0, 0]], 1e-3, (1, 1)
        )


def test_frida_library_import_reproduces_the_dataset(tmp_path, real):
    part = real.subset(np.flatnonzero(np.isin(real.capture_file, [10, 20, 130])))
    width_m, height_m = write_frida_library(tmp_path / "library", part)
    got = import_frida_library(tmp_path / "library", width_m, height_m, part.meters_per_pixel)
    assert np.array_equal(got.capture_file, part.capture_file)  # numeric batch order
    assert np.array_equal(got.params, part.params)
    assert got.start_xy_px == part.start_xy_px and got.meters_per_pixel == part.meters_per_pixel
    assert np.array_equal(got.intensity, part.intensity)


def test_frida_import_refuses_pickles_and_mismatched_canvases(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    np.save(lib / "stroke_intensities0.npy", np.zeros((1, 40, 60), np.uint8))
    np.save(lib / "stroke_parameters0.npy", np.array([[0.01, 0, 0.5, 0]], dtype=object))
    with pytest.raises(ValueError, match="pickles are never loaded"):
        import_frida_library(lib, 0.06, 0.04)
    np.save(lib / "stroke_parameters0.npy", np.array([[0.01, 0, 0.5, 0]]))
    with pytest.raises(ValueError, match="aspect"):
        import_frida_library(lib, 0.06, 0.08)
