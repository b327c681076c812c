#!/usr/bin/env bash
cd "$(dirname "$0")"
set -x
python flow_exp.py plain256 --epochs 6
python flow_exp.py loc256 --norm loc --epochs 6
python flow_exp.py chan256 --norm chan --epochs 6
python flow_exp.py chanpos256 --norm chan --cond pos --epochs 6
python flow_exp.py loc224 --size 224 --norm loc --epochs 6
python flow_exp.py chan224 --size 224 --norm chan --epochs 6
