#!/usr/bin/env bash
cd "$(dirname "$0")"
set -x
python flow_exp.py locpos256 --norm loc --cond pos --epochs 6
python flow_exp.py loc256_tc1 --norm loc --train-crop 1 --epochs 6
python flow_exp.py chan256_tc1 --norm chan --train-crop 1 --epochs 6
