import os
import json, glob, sys
keys = sys.argv[1:] or ["b0_z2_mean", "b0_nll_mean", "b0_nll_typ", "b0_z2_top10", "b1_z2_mean", "b2_z2_mean", "b2_nll_typ"]
for f in sorted(glob.glob(os.environ.get("SCORE_STUDY_DIR", "/tmp/aeflow_exp") + "/results/*.json")):
    d = json.load(open(f)); name = f.split("/")[-1][:-5]
    last = d["log"][-1]
    print(f"== {name} epochs={last['epoch']} time={last['time']}s loss={last['loss']:.3f}")
    for k in keys:
        print(f"   {k:14s} " + " ".join(f"e{r['epoch']}:{r[k][0]:.3f}/{r[k][1]:.3f}" for r in d["log"]))
    sk = [k for k in last if k.startswith("b")]
    best = max(sk, key=lambda k: last[k][0])
    print(f"   best-by-val at last epoch: {best} {last[best]}")
