#!/usr/bin/env bash
# The project's two entry points. Both set up .venv first (seconds when it is already in place).
#   bash scripts/dev.sh main [hgpt main options]   # run the main job on the default motions
#   bash scripts/dev.sh test [pytest options]      # run all tests
# Settings: HGPT_DATA_ROOT and MENAGERIE_ROOT are used as set; when unset and ../shared sits beside the project
# (as on CI), they point into it. Without either, `hgpt data fetch` and mujoco-menagerie download what is needed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh
shared="$root/../shared"
if [[ -d "$shared" ]]; then
  export HGPT_DATA_ROOT="${HGPT_DATA_ROOT:-$shared/data}"
  export MENAGERIE_ROOT="${MENAGERIE_ROOT:-$shared/menagerie}"
fi
export HGPT_CACHE_DIR="${HGPT_CACHE_DIR:-$root/.cache}"
cmd="${1:-}"
shift || true
case "$cmd" in
  main)
    .venv/bin/hgpt data fetch --if-missing
    exec .venv/bin/hgpt main "$@"
    ;;
  test)
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh main|test [options]" >&2
    exit 2
    ;;
esac
