#!/usr/bin/env bash
# Make (or refresh) the project's virtual environment .venv: torch 2.13.0 CPU first, then the project and its
# dependencies, then Isaac Lab 3.0 kit-less. Idempotent: a stamp of the requirement files lets a second run finish in
# seconds. Usage: bash scripts/setup_env.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${HGPT_PYTHON:-python3.11}"
venv="$root/.venv"
pip() { "$venv/bin/python" -m pip "$@"; }

stamp_of() { cat requirements/*.txt setup.py extension.toml | sha256sum | cut -c1-16; }
stamp="$(stamp_of)"
if [[ -f "$venv/.hgpt-setup" && "$(cat "$venv/.hgpt-setup")" == "$stamp" ]]; then
  exit 0
fi

echo "[setup] creating $venv with $python" >&2
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip install -q --upgrade pip
# torch first and pinned: any unpinned resolution of torch would download a multi-GB CUDA build.
pip install -q torch==2.13.0
pip install -q -r requirements/base.txt
pip install -q -r requirements/isaaclab.txt
# Isaac Lab declares Python 3.12 and pins a CUDA torch: install its wheel alone; its needs come from isaaclab.txt.
pip install -q --no-deps --ignore-requires-python isaaclab==3.0.0
pip install -q --no-deps -e .
"$venv/bin/python" -c "import torch, mujoco, humanoid_gpt; assert torch.__version__.startswith('2.13.0'), torch.__version__"
echo "$stamp" > "$venv/.hgpt-setup"
echo "[setup] done" >&2
