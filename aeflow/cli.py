"""Command line: ``aeflow train | evaluate | predict | calibrate | export`` (also ``python -m aeflow``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from .config import BACKBONES, FLOW_REDUCTIONS, SUBNETS, AEFlowConfig

logger = logging.getLogger("aeflow")

DEFAULT_MODEL = str(Path(__file__).resolve().parent.parent / "weights" / "chest-xray")


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="Train on DATA/train/NORMAL and save a calibrated model.")
    parser.add_argument("--data", required=True, type=Path, help="Folder with train/NORMAL (and optionally val/).")
    parser.add_argument("--output", required=True, type=Path, help="Folder for checkpoints and the final model.")
    defaults = AEFlowConfig()
    parser.add_argument("--backbone", choices=BACKBONES, default=defaults.backbone, help="Encoder (default: %(default)s).")
    parser.add_argument("--image-size", type=int, default=defaults.image_size, help="Input side in pixels, a multiple of 16 (default: %(default)s).")
    parser.add_argument("--subnet", choices=SUBNETS, default=defaults.subnet, help="Coupling subnet (default: %(default)s).")
    parser.add_argument("--flow-steps", type=int, default=defaults.flow_steps, help="Affine coupling steps (default: %(default)s).")
    parser.add_argument("--flow-reduction", choices=FLOW_REDUCTIONS, default=defaults.flow_reduction, help="How the flow NLL map becomes one score (default: %(default)s).")
    parser.add_argument("--score-weight", type=float, default=defaults.score_weight, help="Weight b of the flow score in the anomaly score (default: %(default)s).")
    parser.add_argument("--loss-weight", type=float, default=defaults.loss_weight, help="Weight a of the flow NLL in the training loss; 1 - a weights the reconstruction MSE (default: %(default)s).")
    parser.add_argument("--train-encoder", action="store_true", help="Fine-tune the encoder instead of freezing it (slow on a CPU).")
    parser.add_argument("--epochs", type=int, default=20, help="Training epochs (default: %(default)s).")
    parser.add_argument("--batch-size", type=int, default=16, help="Images per step (default: %(default)s).")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW learning rate (default: %(default)s).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the weights, the shuffling and the held-out split (default: %(default)s).")
    parser.add_argument("--resume", action="store_true", help="Continue from OUTPUT/checkpoint after an interruption.")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available).")


def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="AUROC and threshold metrics on a labelled split.")
    parser.add_argument("--data", required=True, type=Path, help="Folder with SPLIT/NORMAL and abnormal class folders.")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Model folder or Hub repo id (default: the bundled chest X-ray model).")
    parser.add_argument("--revision", default=None, help="Hub revision (commit, branch or tag) to pin.")
    parser.add_argument("--split", default="test", help="Split folder to evaluate (default: %(default)s).")
    parser.add_argument("--output", type=Path, default=None, help="Write the metrics to this JSON file.")
    parser.add_argument("--report", type=Path, default=None, help="Write roc.png and histogram.png into this folder.")
    parser.add_argument("--batch-size", type=int, default=16, help="Images per forward pass (default: %(default)s).")


def _add_predict(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="Score image files: score, verdict and maps.")
    parser.add_argument("images", nargs="+", type=Path, help="Image files (PNG, JPEG, BMP, TIFF, GIF, DICOM).")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Model folder or Hub repo id (default: the bundled chest X-ray model).")
    parser.add_argument("--revision", default=None, help="Hub revision (commit, branch or tag) to pin.")
    parser.add_argument("--threshold", type=float, default=None, help="Decision threshold on the raw score (default: the model's calibrated one).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object per line instead of a table.")
    parser.add_argument("--save-maps", type=Path, default=None, help="Write reconstruction and heat-map PNGs into this folder.")


def _add_calibrate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="Change a trained model's score settings and fit its threshold again, without retraining."
    )
    parser.add_argument("--model", required=True, help="Trained model folder or Hub repo id.")
    parser.add_argument("--data", required=True, type=Path, help="The data folder the model was trained on.")
    parser.add_argument("--output", required=True, type=Path, help="Folder for the recalibrated model.")
    parser.add_argument("--flow-reduction", choices=FLOW_REDUCTIONS, default=None, help="How z' becomes one flow score (default: keep).")
    parser.add_argument("--score-weight", type=float, default=None, help="Weight b of the flow score (default: keep).")
    parser.add_argument("--seed", type=int, default=0, help="The training seed, which fixed the held-out split (default: %(default)s).")
    parser.add_argument("--target-specificity", type=float, default=0.95, help="Fraction of held-out normals below the threshold (default: %(default)s).")


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="Export a model's scoring forward pass to ONNX.")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Model folder or Hub repo id (default: the bundled chest X-ray model).")
    parser.add_argument("--revision", default=None, help="Hub revision (commit, branch or tag) to pin.")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="Output format (default: %(default)s).")
    parser.add_argument("--output", required=True, type=Path, help="File to write, e.g. model.onnx.")

def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``aeflow`` command."""
    parser = argparse.ArgumentParser(prog="aeflow", description="AE-FLOW anomaly detection for medical images.")
    parser.add_argument("--debug", action="store_true", help="Show tracebacks and debug logs.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train(subparsers)
    _add_evaluate(subparsers)
    _add_predict(subparsers)
    _add_calibrate(subparsers)
    _add_export(subparsers)
    return parser


def _run_train(args: argparse.Namespace) -> int:
    from .train import TrainSettings, train

    config = AEFlowConfig(
        image_size=args.image_size,
        backbone=args.backbone,
        train_encoder=args.train_encoder,
        flow_steps=args.flow_steps,
        subnet=args.subnet,
        flow_reduction=args.flow_reduction,
        score_weight=args.score_weight,
        loss_weight=args.loss_weight,
    )
    settings = TrainSettings(
        data=args.data, output=args.output, model=config, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, resume=args.resume, device=args.device,
    )
    train(settings)
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_table

    metrics = evaluate(args.data, args.model, split=args.split, revision=args.revision,
                       batch_size=args.batch_size, report=args.report)
    print(format_table(metrics))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(metrics, indent=2) + "\n")
        logger.info("Wrote %s", args.output)
    return 0


def _save_maps(folder: Path, name: str, prediction: object, calibration: object) -> None:
    from PIL import Image

    from .visualize import heatmap_rgb, to_uint8

    folder.mkdir(parents=True, exist_ok=True)
    residual_max = calibration.residual_map_max if calibration else float(prediction.residual_map.max())
    flow_range = (
        (calibration.flow_map_min, calibration.flow_map_max)
        if calibration
        else (float(prediction.flow_map.min()), float(prediction.flow_map.max()))
    )
    Image.fromarray(to_uint8(prediction.reconstruction)).save(folder / f"{name}_reconstruction.png")
    Image.fromarray(heatmap_rgb(prediction.residual_map, 0.0, residual_max)).save(folder / f"{name}_residual.png")
    Image.fromarray(heatmap_rgb(prediction.flow_map, *flow_range)).save(folder / f"{name}_flow.png")
    np.save(folder / f"{name}_residual.npy", prediction.residual_map)
    np.save(folder / f"{name}_flow.npy", prediction.flow_map)


def _run_predict(args: argparse.Namespace) -> int:
    from .inference import Inspector, decide
    from .io import ImageLoadError

    inspector = Inspector.from_pretrained(args.model, revision=args.revision)
    threshold = args.threshold if args.threshold is not None else inspector.threshold
    failures = 0
    if not args.json:
        print(f"{'file':<40} {'score':>10} {'normalised':>10}  verdict")
    for path in args.images:
        try:
            prediction = inspector.predict_file(path)
        except ImageLoadError as error:
            failures += 1
            print(f"aeflow: error: {error}", file=sys.stderr)
            continue
        verdict = None
        if threshold is not None:
            verdict = decide(prediction.score, threshold)
        normalized = prediction.normalized_score(inspector.calibration) if args.threshold is None else None
        for warning in prediction.warnings:
            print(f"aeflow: warning: {path.name}: {warning}", file=sys.stderr)
        if args.save_maps is not None:
            _save_maps(args.save_maps, path.stem, prediction, inspector.calibration)
        if args.json:
            record = {
                "file": str(path), "score": prediction.score, "normalized_score": normalized,
                "verdict": verdict, "threshold": threshold, "flow_nll": prediction.flow_nll,
                "flow_score": prediction.flow_score, "recon_score": prediction.recon_score,
                "warnings": prediction.warnings,
            }
            print(json.dumps(record))
        else:
            normalized_text = "-" if normalized is None else f"{normalized:.3f}"
            print(f"{path.name:<40} {prediction.score:>10.5f} {normalized_text:>10}  {verdict or 'no threshold'}")
    return 1 if failures else 0


def _run_calibrate(args: argparse.Namespace) -> int:
    from .train import recalibrate

    options = {"flow_reduction": args.flow_reduction, "score_weight": args.score_weight}
    options = {key: value for key, value in options.items() if value is not None}
    recalibrate(args.model, args.data, args.output, score_options=options, seed=args.seed,
                target_specificity=args.target_specificity)
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from .export import export_onnx
    from .hub import load_model

    model = load_model(args.model, revision=args.revision, device="cpu")
    path = export_onnx(model, args.output)
    size = model.config.image_size
    print(f"Wrote {path}: input image (B, 3, {size}, {size}); outputs score, residual_map, flow_map, reconstruction")
    return 0

COMMANDS = {"train": _run_train, "evaluate": _run_evaluate, "predict": _run_predict, "calibrate": _run_calibrate, "export": _run_export}


def main(argv: list[str] | None = None) -> int:
    """Run the ``aeflow`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    from .data import DataFolderError
    from .hub import ModelLoadError
    from .io import ImageLoadError

    expected = (DataFolderError, ModelLoadError, ImageLoadError, FileNotFoundError, ValueError, RuntimeError)
    try:
        return COMMANDS[args.command](args)
    except expected as error:
        if args.debug:
            raise
        print(f"aeflow: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aeflow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
