"""Write the shipped model's scores on tests/data/xray/ to tests/data/xray/reference_scores.json.

Run after retraining or recalibrating weights/chest-xray, and commit the result together with
the new weights: tests/test_regression.py compares the model against these values.

    python scripts/update_reference_scores.py
"""

from __future__ import annotations

import json
from pathlib import Path

from aeflow import Inspector

ROOT = Path(__file__).resolve().parent.parent
XRAY_DIR = ROOT / "tests" / "data" / "xray"
MODEL_DIR = ROOT / "weights" / "chest-xray"


def main() -> None:
    inspector = Inspector.from_pretrained(MODEL_DIR)
    scores = {}
    for path in sorted(XRAY_DIR.glob("*.jpeg")):
        prediction = inspector.predict_file(path)
        scores[path.name] = {"score": prediction.score, "flow_nll": prediction.flow_nll,
                             "recon_score": prediction.recon_score}
    output = XRAY_DIR / "reference_scores.json"
    output.write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
    print(f"Wrote {len(scores)} reference scores to {output}")


if __name__ == "__main__":
    main()
