"""2D conv normalizing flow (FrEIA AllInOneBlock) on cached Lite0 features; many image scores.

usage: python flow_exp.py NAME [--train-crop 1] --size 256 --key s16 --norm none|chan|loc --cond none|pos --epochs 4
"""
import os
import argparse, json, math, sys, time
import torch, torch.nn as nn
import FrEIA.framework as Ff, FrEIA.modules as Fm
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import load, auc, reduce, crop
torch.set_num_threads(1)

p = argparse.ArgumentParser()
p.add_argument("name"); p.add_argument("--size", type=int, default=256); p.add_argument("--key", default="s16")
p.add_argument("--norm", default="none"); p.add_argument("--cond", default="none")
p.add_argument("--epochs", type=int, default=4); p.add_argument("--steps", type=int, default=8)
p.add_argument("--bs", type=int, default=16); p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--hidden", type=float, default=1.0); p.add_argument("--pe", type=int, default=16)
p.add_argument("--train-crop", type=int, default=0)
a = p.parse_args()
torch.manual_seed(0)
t0 = time.time()
fit, val, yv, test, yt = load(a.size, a.key)
N, C, H, W = fit.shape
if a.norm == "chan":
    mu = fit.mean((0, 2, 3), keepdim=True); sd = fit.std((0, 2, 3), keepdim=True) + 1e-3
elif a.norm == "loc":
    mu = fit.mean(0, keepdim=True); sd = fit.std(0, keepdim=True) + 1e-3
else:
    mu, sd = torch.zeros(1), torch.ones(1)
fit, val, test = [crop((x - mu) / sd, a.train_crop) for x in (fit, val, test)]
N, C, H, W = fit.shape

def posenc(n, H, W):
    # fixed 2D sinusoidal encoding, n channels (n/2 for y, n/2 for x)
    q = n // 4
    freq = torch.exp(-math.log(100.0) * torch.arange(q) / q) * math.pi
    ys = torch.linspace(-1, 1, H)[:, None] * freq; xs = torch.linspace(-1, 1, W)[:, None] * freq
    ey = torch.cat([ys.sin(), ys.cos()], 1).T[:, :, None].expand(-1, H, W)
    ex = torch.cat([xs.sin(), xs.cos()], 1).T[:, None, :].expand(-1, H, W)
    return torch.cat([ey, ex]).float()

cond_ch = a.pe if a.cond == "pos" else 0
PE = posenc(a.pe, H, W)[None] if cond_ch else None
hid = int(a.hidden * C)

def subnet(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, hid, 3, padding=1), nn.ReLU(), nn.Conv2d(hid, cout, 1))

flow = Ff.SequenceINN(C, H, W)
for _ in range(a.steps):
    kw = dict(cond=0, cond_shape=(cond_ch, H, W)) if cond_ch else {}
    flow.append(Fm.AllInOneBlock, subnet_constructor=subnet, affine_clamping=2.0, permute_soft=False, **kw)
opt = torch.optim.Adam(flow.parameters(), lr=a.lr)

def run(x):
    c = [PE.expand(len(x), -1, -1, -1)] if cond_ch else None
    return flow(x, c=c) if c else flow(x)

def scores(x):
    flow.eval(); out = {}
    zs, ld = [], []
    with torch.no_grad():
        for i in range(0, len(x), 64):
            z, j = run(x[i:i + 64]); zs.append(z); ld.append(j)
    z = torch.cat(zs); ld = torch.cat(ld)
    z2 = 0.5 * (z ** 2).mean(1)             # FastFlow map (B,H,W)
    nllmap = 0.5 * (z ** 2).sum(1) - (ld / (H * W))[:, None, None]   # log-det share per location
    flow.train()
    return z2, nllmap, (z.mean((2, 3)) ** 2).sum(1)

log = []
nb = math.ceil(N / a.bs)
for ep in range(a.epochs):
    perm = torch.randperm(N); tl = 0
    for i in range(nb):
        x = fit[perm[i * a.bs:(i + 1) * a.bs]]
        z, j = run(x)
        loss = (0.5 * (z ** 2).sum((1, 2, 3)) - j).mean() / (C * H * W)
        opt.zero_grad(); loss.backward(); opt.step(); tl += loss.item()
    zf, nf, pf = scores(fit[:300]); zv, nv, pv = scores(val); zt, nt, pt = scores(test)
    res = {"epoch": ep + 1, "loss": tl / nb, "time": round(time.time() - t0, 1)}
    res["zpool"] = (round(auc(yv, pv), 3), round(auc(yt, pt), 3))
    for b in (0, 1, 2):
        if b and H - 2 * b < 4: continue
        for mapname, (mf, mv, mt) in {"z2": (zf, zv, zt), "nll": (nf, nv, nt)}.items():
            for how in ("mean", "max", "top10"):
                sf, sv, st = (reduce(crop(m, b), how) for m in (mf, mv, mt))
                res[f"b{b}_{mapname}_{how}"] = (round(auc(yv, sv), 3), round(auc(yt, st), 3))
                if how == "mean":
                    m0 = sf.mean()
                    res[f"b{b}_{mapname}_typ"] = (round(auc(yv, (sv - m0).abs()), 3), round(auc(yt, (st - m0).abs()), 3))
                    res[f"b{b}_{mapname}_neg"] = (round(auc(yv, -sv), 3), round(auc(yt, -st), 3))
    log.append(res)
    print(json.dumps(res), flush=True)
json.dump({"args": vars(a), "log": log}, open(os.environ.get("SCORE_STUDY_DIR", "/tmp/aeflow_exp") + f"/results/{a.name}.json", "w"))
