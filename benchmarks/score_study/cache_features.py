"""Cache frozen EfficientNet-Lite0 features (strides 8, 16, 32) of every image at 224 and 256 px."""
import os
import sys, time, random
from pathlib import Path
import torch, timm
import numpy as np
from PIL import Image
import torch.nn.functional as F
torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from aeflow.encoder import _lite0_imagenet_state_dict

ROOT = Path(os.environ.get("CHEST_XRAY_DIR", Path(__file__).resolve().parents[3] / "shared" / "data" / "chest_xray"))
OUT = Path(os.environ.get("SCORE_STUDY_DIR", "/tmp/aeflow_exp") + "/cache")
OUT.mkdir(parents=True, exist_ok=True)

def list_split():
    train = sorted((ROOT / "train/NORMAL").glob("*.jpeg"))
    rng = random.Random(0)
    idx = list(range(len(train))); rng.shuffle(idx)
    nval = round(0.15 * len(train))
    hold = sorted(idx[:nval]); fit = sorted(idx[nval:])
    sets = {
        "fit": [(train[i], 0) for i in fit],
        "hold": [(train[i], 0) for i in hold],
        "valN": [(p, 0) for p in sorted((ROOT / "val/NORMAL").glob("*.jpeg"))],
        "valP": [(p, 1) for p in sorted((ROOT / "val/PNEUMONIA").glob("*.jpeg"))],
        "testN": [(p, 0) for p in sorted((ROOT / "test/NORMAL").glob("*.jpeg"))],
        "testP": [(p, 1) for p in sorted((ROOT / "test/PNEUMONIA").glob("*.jpeg"))],
    }
    return sets

def main():
    model = timm.create_model("efficientnet_lite0", pretrained=False, features_only=True, out_indices=(2, 3, 4))
    sd = _lite0_imagenet_state_dict()
    own = model.state_dict()
    sd = {k: v for k, v in sd.items() if k in own}
    model.load_state_dict(sd, strict=True)
    model.eval().requires_grad_(False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    sets = list_split()
    for size in (256, 224):
        t0 = time.time()
        for name, items in sets.items():
            feats = {8: [], 16: [], 32: []}
            imgs = []
            for start in range(0, len(items), 32):
                batch = []
                for p, _ in items[start:start + 32]:
                    im = Image.open(p).convert("RGB")
                    a = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
                    batch.append(a)
                x = torch.stack(batch)
                if size != x.shape[-1]:
                    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
                if size == 256:
                    imgs.append((x[:, :1] * 255).round().to(torch.uint8))
                with torch.no_grad():
                    outs = model((x - mean) / std)
                for s, o in zip((8, 16, 32), outs):
                    feats[s].append(o.half())
            d = {f"s{s}": torch.cat(v) for s, v in feats.items()}
            d["labels"] = torch.tensor([l for _, l in items])
            d["paths"] = [str(p) for p, _ in items]
            if imgs:
                d["img"] = torch.cat(imgs)
            torch.save(d, OUT / f"{name}_{size}.pt")
            print(size, name, {k: tuple(v.shape) for k, v in d.items() if torch.is_tensor(v)}, flush=True)
        print("size", size, "took", time.time() - t0, flush=True)

if __name__ == "__main__":
    main()
