import os
import torch
from sklearn.metrics import roc_auc_score
torch.set_num_threads(1)
C = os.environ.get("SCORE_STUDY_DIR", "/tmp/aeflow_exp") + "/cache"

def load(size, key):
    d = {n: torch.load(f"{C}/{n}_{size}.pt", weights_only=True) for n in ("fit", "hold", "valN", "valP", "testN", "testP")}
    fit = d["fit"][key].float()
    val = torch.cat([d["hold"][key], d["valN"][key], d["valP"][key]]).float()
    yval = torch.cat([torch.zeros(len(d["hold"]["labels"]) + 8), torch.ones(8)])
    test = torch.cat([d["testN"][key], d["testP"][key]]).float()
    ytest = torch.cat([torch.zeros(234), torch.ones(390)])
    return fit, val, yval, test, ytest

def auc(y, s):
    return roc_auc_score(y.numpy(), s.detach().numpy())

def reduce(m, how):
    m = m.flatten(1)
    if how == "mean": return m.mean(1)
    if how == "max": return m.max(1).values
    if how == "top10": k = max(1, int(0.1 * m.shape[1])); return m.topk(k, 1).values.mean(1)
    raise ValueError(how)

def crop(x, b):
    return x[..., b:x.shape[-2]-b, b:x.shape[-1]-b] if b else x
