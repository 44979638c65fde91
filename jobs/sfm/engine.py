"""The sfm stage's COLMAP work, on pycolmap (COLMAP 4 as a library: the same code locally and in the image).

run-sfm.ts decides what to do (the ladder, the gate) and runs one operation per process:

    python engine.py OPERATION 'JSON'

COLMAP's own log lines go to stderr, where run-sfm.ts reads progress from them; the operation's answer is one JSON
line on stdout. Every operation seeds COLMAP's random generators with the request's seed (-1: COLMAP's own random
seed), so a run with one thread repeats exactly; more threads still interleave RANSAC differently."""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any

import pycolmap


def device(spec: dict[str, Any]) -> pycolmap.Device:
    return pycolmap.Device.cuda if spec["gpu"] else pycolmap.Device.cpu


def version(_spec: dict[str, Any]) -> dict[str, Any]:
    # "COLMAP 4.2.1 Commit bd1fcf6 on 2026-09-29 without GPU support, ..."
    return {"colmap": pycolmap.COLMAP_version.split()[1], "pycolmap": pycolmap.__version__, "cuda": pycolmap.has_cuda}


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """SIFT features of `image_names` into the database. A video's frames share one camera; frames a later rung adds
    join that camera (the database's first) instead of bringing a second lens for the mapper to solve."""
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = spec["camera_model"]
    if spec["existing_camera_id"] is not None:
        reader.existing_camera_id = spec["existing_camera_id"]
    options = pycolmap.FeatureExtractionOptions()
    options.max_image_size = spec["max_image_size"]
    options.num_threads = spec["num_threads"]
    options.use_gpu = spec["gpu"]
    pycolmap.extract_features(
        spec["database"],
        spec["images"],
        image_names=spec["image_names"],
        camera_mode=pycolmap.CameraMode.SINGLE if spec["single_camera"] else pycolmap.CameraMode.AUTO,
        reader_options=reader,
        extraction_options=options,
        device=device(spec),
    )
    return {}


def match(spec: dict[str, Any]) -> dict[str, Any]:
    """Matches and verifies image pairs; COLMAP skips pairs the database already holds, so a later rung pays only
    for new ones."""
    options = pycolmap.FeatureMatchingOptions()
    options.num_threads = spec["num_threads"]
    options.use_gpu = spec["gpu"]
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = spec["seed"]
    common = {"matching_options": options, "verification_options": verification, "device": device(spec)}
    if spec["matcher"] == "exhaustive":
        pycolmap.match_exhaustive(spec["database"], **common)
        return {}
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = spec["overlap"]
    pairing.num_threads = spec["num_threads"]
    if spec["vocab_tree"]:
        pairing.loop_detection = True
        pairing.vocab_tree_path = spec["vocab_tree"]
    pycolmap.match_sequential(spec["database"], pairing_options=pairing, **common)
    return {}


def incremental_options(spec: dict[str, Any]) -> pycolmap.IncrementalPipelineOptions:
    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = spec["num_threads"]
    options.random_seed = spec["seed"]
    options.mapper.abs_pose_min_num_inliers = spec["abs_pose_min_num_inliers"]
    options.mapper.abs_pose_min_inlier_ratio = spec["abs_pose_min_inlier_ratio"]
    options.mapper.filter_min_tri_angle = spec["tri_min_angle"]
    options.triangulation.min_angle = spec["tri_min_angle"]
    options.ba_global_max_num_iterations = spec["ba_global_max_num_iterations"]
    return options


def global_options(spec: dict[str, Any]) -> pycolmap.GlobalPipelineOptions:
    options = pycolmap.GlobalPipelineOptions()
    options.num_threads = spec["num_threads"]
    options.random_seed = spec["seed"]
    return options


def calibrated_copy(database: str, output: str, seed: int) -> str:
    """COLMAP's view-graph calibrator (what its CLI guide runs before the global mapper when intrinsics are unsure)
    rewrites the pairs' geometries, so it works on a copy: a later rung's mapper sees the matcher's own."""
    calibrated = os.path.join(os.path.dirname(output), os.path.basename(output) + ".db")
    shutil.copyfile(database, calibrated)
    options = pycolmap.ViewGraphCalibrationOptions()
    options.random_seed = seed
    pycolmap.calibrate_view_graph(calibrated, options)
    return calibrated


def map_images(spec: dict[str, Any]) -> dict[str, Any]:
    """Maps into `output` (one numbered folder per model)."""
    database = spec["database"]
    if spec["mapper"] == "incremental":
        models = pycolmap.incremental_mapping(database, spec["images"], spec["output"], incremental_options(spec))
        return {"models": len(models)}
    if spec["view_graph_calibration"]:
        database = calibrated_copy(database, spec["output"], spec["seed"])
    models = pycolmap.global_mapping(database, spec["images"], spec["output"], global_options(spec))
    if database != spec["database"]:
        os.remove(database)
    return {"models": len(models)}


def undistort(spec: dict[str, Any]) -> dict[str, Any]:
    """PINHOLE images and model for training."""
    options = pycolmap.UndistortCameraOptions()
    options.max_image_size = spec["max_image_size"]
    pycolmap.undistort_images(
        spec["output"],
        spec["model"],
        spec["images"],
        output_type="COLMAP",
        undistort_options=options,
        num_threads=spec["num_threads"],
    )
    return {}


OPERATIONS = {"version": version, "extract": extract, "match": match, "map": map_images, "undistort": undistort}


def main(argv: list[str]) -> int:
    operation, spec = argv[1], json.loads(argv[2]) if len(argv) > 2 else {}
    pycolmap.logging.logtostderr = True
    if spec.get("seed", -1) >= 0:
        pycolmap.set_random_seed(spec["seed"])
    print(json.dumps(OPERATIONS[operation](spec)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
