#!/usr/bin/env bash
# Attribution against the truth in three generated worlds, through the real entry point.
#   bash bench/bench_settings.sh [OUT_DIR]
# Prints the TV distance of every method's paid-share vector from the true interventional shares.
set -euo pipefail
out=${1:-/tmp/journeynet_settings}
for exp in default no_brand closer_heavy; do
  args=(hydra.run.dir="$out/$exp" trainer.enable_progress_bar=false)
  [ "$exp" != default ] && args+=(experiment="$exp")
  CI=true python train.py "${args[@]}" > "$out-$exp.log" 2>&1
done
python - "$out" <<'PY'
import json, sys
from pathlib import Path
for run in sorted(Path(sys.argv[1]).iterdir()):
    m = json.loads((run / "metrics.json").read_text())
    t = m["truth"]
    tv = {k: round(v, 4) for k, v in t["tv_distance"].items()}
    print(run.name, json.dumps(tv), "roles ordered:", t["roles"]["openers_above_closers"],
          "| test_auc", round(m["test_auc"], 4), "best", round(m.get("best_achievable_auc", float("nan")), 4))
PY
