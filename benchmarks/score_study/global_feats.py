"""Ceiling check: Gaussian (Mahalanobis) on globally pooled features from one or more stages."""
import os
import sys, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import load, auc, crop
torch.set_num_threads(1)

def gauss(fit, x, shrink):
    mu = fit.mean(0); fc = fit - mu
    cov = fc.T @ fc / (len(fit) - 1)
    cov = (1 - shrink) * cov + shrink * cov.diagonal().mean() * torch.eye(len(cov))
    inv = torch.linalg.inv(cov); xx = x - mu
    return torch.einsum("nc,cd,nd->n", xx, inv, xx)

for size in (256, 224):
    data = {k: load(size, k) for k in ("s8", "s16", "s32")}
    yv, yt = data["s16"][2], data["s16"][4]
    def pooled(keys, b, pool):
        outs = []
        for part in (0, 1, 3):
            fs = []
            for k in keys:
                x = data[k][part]; bb = b * {"s8": 2, "s16": 1, "s32": 0}[k] if b else 0
                x = crop(x, bb)
                fs.append(x.mean((2, 3)) if pool == "avg" else torch.cat([x.mean((2, 3)), x.std((2, 3))], 1))
            outs.append(torch.cat(fs, 1))
        return outs
    for keys in (["s16"], ["s8", "s16"], ["s16", "s32"], ["s8", "s16", "s32"]):
        for b in (0, 2):
            for pool in ("avg", "avgstd"):
                for shrink in (0.01, 0.1, 0.5):
                    f, v, t = pooled(keys, b, pool)
                    print(f"global {size} {'+'.join(keys):10s} b{b} {pool:6s} shrink{shrink}: val {auc(yv, gauss(f, v, shrink)):.3f} test {auc(yt, gauss(f, t, shrink)):.3f}", flush=True)
