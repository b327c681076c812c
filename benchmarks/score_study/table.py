import os
"""Compact table: for each flow run and a few fixed scores, the epoch with the best val AUROC, and the last epoch."""
import json, glob
scores = ["b0_z2_mean", "b1_z2_mean", "b2_z2_mean", "b0_z2_top10", "b0_z2_max", "b0_nll_mean", "b0_nll_typ", "zpool"]
print(f"{'run':12s} {'score':12s} {'last ep val/test':>17s} {'best-val ep: val/test':>22s} time_s")
for f in sorted(glob.glob(os.environ.get("SCORE_STUDY_DIR", "/tmp/aeflow_exp") + "/results/*.json")):
    d = json.load(open(f)); name = f.split("/")[-1][:-5]; L = d["log"]
    for k in scores:
        if k not in L[-1]: continue
        b = max(L, key=lambda r: r[k][0])
        print(f"{name:12s} {k:12s} {L[-1][k][0]:.3f}/{L[-1][k][1]:.3f}      e{b['epoch']}: {b[k][0]:.3f}/{b[k][1]:.3f}     {L[-1]['time']}")
