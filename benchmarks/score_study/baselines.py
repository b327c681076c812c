"""Non-flow references on cached features: PaDiM per-location Gaussian, global pooled Gaussian."""
import os
import time, torch, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import load, auc, reduce, crop
torch.set_num_threads(1)

def padim(fit, x, eps=0.01):
    # fit (N,C,H,W): per-location mean and covariance
    N, Cc, H, W = fit.shape
    f = fit.permute(2, 3, 0, 1).reshape(H * W, N, Cc)
    mu = f.mean(1, keepdim=True)
    fc = f - mu
    cov = fc.transpose(1, 2) @ fc / (N - 1) + eps * torch.eye(Cc)
    inv = torch.linalg.inv(cov)
    xx = x.permute(2, 3, 0, 1).reshape(H * W, -1, Cc) - mu
    d = torch.einsum("lnc,lcd,lnd->ln", xx, inv, xx).clamp_min(0).sqrt()
    return d.T.reshape(-1, H, W)

def gauss(fit, x, eps=0.01):
    mu = fit.mean(0); fc = fit - mu
    cov = fc.T @ fc / (len(fit) - 1) + eps * torch.eye(fit.shape[1])
    inv = torch.linalg.inv(cov)
    xx = x - mu
    return torch.einsum("nc,cd,nd->n", xx, inv, xx).sqrt()

rows = []
for size in (256, 224):
    for key in ("s16", "s32", "s8"):
        t0 = time.time()
        fit, val, yv, test, yt = load(size, key)
        # PaDiM
        if key != "s8" or True:
            sv, st = padim(fit, val), padim(fit, test)
            for b in (0, 1, 2):
                for how in ("mean", "max", "top10"):
                    rows.append((f"padim {size} {key} border{b} {how}", auc(yv, reduce(crop(sv, b), how)), auc(yt, reduce(crop(st, b), how))))
        # global pooled Gaussian
        for b in (0, 1, 2):
            g = lambda z: crop(z, b).mean((2, 3))
            rows.append((f"globalgauss {size} {key} border{b}", auc(yv, gauss(g(fit), g(val))), auc(yt, gauss(g(fit), g(test)))))
        print(size, key, "time", round(time.time() - t0, 1), flush=True)
        for r in rows[-12:]:
            print(f"{r[0]:45s} val {r[1]:.3f} test {r[2]:.3f}", flush=True)
# concat s16 + upsampled s32 at 256
import torch.nn.functional as F
for size in (256, 224):
    f16 = load(size, "s16"); f32 = load(size, "s32")
    cat = [torch.cat([a, F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False)], 1) if torch.is_tensor(a) and a.dim() == 4 else a for a, b in zip(f16, f32)]
    fit, val, yv, test, yt = cat
    sv, st = padim(fit, val), padim(fit, test)
    for b in (0, 1):
        for how in ("mean", "top10"):
            rows.append((f"padim {size} s16+s32up border{b} {how}", auc(yv, reduce(crop(sv, b), how)), auc(yt, reduce(crop(st, b), how))))
    g = lambda z: z.mean((2, 3))
    rows.append((f"globalgauss {size} s16+s32", auc(yv, gauss(g(fit), g(val))), auc(yt, gauss(g(fit), g(test)))))
    for r in rows[-5:]:
        print(f"{r[0]:45s} val {r[1]:.3f} test {r[2]:.3f}", flush=True)
import json; json.dump(rows, open(os.environ.get("SCORE_STUDY_DIR", "/tmp/aeflow_exp") + "/baselines.json", "w"), indent=0)
