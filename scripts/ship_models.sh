#!/usr/bin/env bash
# Ship two finished training runs as the default motion models (docs/model-card.md):
#
#   scripts/ship_models.sh SAAS_RUN STYLETALK_RUN [stylecast eval options ...]
#   scripts/ship_models.sh runs/saas-20h-v4 runs/styletalk-20h-v3 --every 3 --diversity-utts 100 \
#       --system "SAAS without HyperStyle (retrained)=runs/saas-20h-v4-no-hyperstyle/pose/last" \
#       --merge runs/eval-20h/ship-v4-rows-a/results.json   # rows scored earlier, same judge
#
# Every further row is an eval option: --system LABEL=CHECKPOINT (scored in this call) or
# --merge RESULTS_JSON (rows a `stylecast eval --sync STYLETALK_RUN ...` scored before,
# under the same protocol and judge weights: checked). docs/model-card.md, "Training and
# shipping", has the command that made the shipped models.
#
# 1. copies SAAS_RUN/pose/last and STYLETALK_RUN/generator/last (model.safetensors +
#    config.json) to $ASSETS/models/{saas,styletalk};
# 2. exports them to ONNX in $ASSETS/onnx (scripts/export_models.sh);
# 3. remakes the 8 emotion presets in $ASSETS/styles from the corpus's train split
#    (`stylecast style presets`: codes are tied to the weights);
# 4. evaluates everything on the corpus's test split (`stylecast eval`, lip sync judged
#    also by STYLETALK_RUN's sync discriminator) into $EVAL_OUT and writes the table into
#    $CARD's <!-- eval:begin/end --> section (its interpolation figure goes to
#    figures/style-interpolation.png beside the card);
# 5. measures why the style columns read as they do (python -m stylecast.training.style_study
#    on the eval's arrays) into $CARD's <!-- style-study:begin/end --> section.
#
# Environment: STYLECAST_ASSETS (assets root; default: the repository's assets/; a root
# without avatars/ gets a copy of the repository's), CORPUS (default data/corpus20h),
# CARD (default docs/model-card.md), EVAL_OUT (default runs/eval-ship), PER_EMOTION (clips
# averaged per preset, default 48), SAAS_CKPT / STYLETALK_CKPT (ship this checkpoint folder
# instead of the run's last one, e.g. a snapshot; the run still names the sync judge and
# ship.json). Try it without touching the shipped files:
#
#   cp docs/model-card.md /tmp/card.md
#   STYLECAST_ASSETS=/tmp/assets CARD=/tmp/card.md EVAL_OUT=/tmp/eval \
#       scripts/ship_models.sh runs/saas-20h-v3 runs/styletalk-20h-v2-step2000 --every 30
#
# Needs the [train] extra (torch, onnx). Writes $EVAL_OUT/ship.json: the runs, the
# weights' sha256, each step's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 2 ]]; then
    sed -n '2,38p' "$0" >&2
    exit 2
fi
saas_run=$1 styletalk_run=$2
shift 2
assets=${STYLECAST_ASSETS:-assets}
corpus=${CORPUS:-data/corpus20h}
card=${CARD:-docs/model-card.md}
eval_out=${EVAL_OUT:-runs/eval-ship}
per_emotion=${PER_EMOTION:-48}
export STYLECAST_ASSETS=$assets

saas_ckpt=${SAAS_CKPT:-$saas_run/pose/last}
styletalk_ckpt=${STYLETALK_CKPT:-$styletalk_run/generator/last}
for ckpt in "$saas_ckpt" "$styletalk_ckpt"; do
    for f in model.safetensors config.json; do
        if [[ ! -f $ckpt/$f ]]; then
            echo "ship: no $ckpt/$f (is the run finished?)" >&2
            exit 2
        fi
    done
done
for run in "$saas_run" "$styletalk_run"; do
    [[ -e $run/finished ]] || echo "ship: warning: $run has no 'finished' marker" >&2
done
[[ -d $corpus ]] || { echo "ship: no corpus $corpus" >&2; exit 2; }
if [[ ! -d $assets/avatars ]]; then
    mkdir -p "$assets"
    cp -r assets/avatars "$assets/avatars"
fi
mkdir -p "$eval_out"

seconds() { date +%s; }
t0=$(seconds)
for pair in "saas:$saas_ckpt" "styletalk:$styletalk_ckpt"; do
    key=${pair%%:*} ckpt=${pair#*:}
    mkdir -p "$assets/models/$key"
    cp "$ckpt/model.safetensors" "$ckpt/config.json" "$assets/models/$key/"
    echo "ship: $ckpt -> $assets/models/$key"
done
t1=$(seconds)
scripts/export_models.sh
t2=$(seconds)
stylecast style presets --corpus "$corpus" --split train --per-emotion "$per_emotion"
t3=$(seconds)
stylecast eval --corpus "$corpus" --split test --saas "$assets/models/saas" \
    --styletalk "$assets/models/styletalk" --sync "$styletalk_run" --out "$eval_out" \
    --card "$card" "$@"
t4=$(seconds)
if [[ -f $eval_out/style-interpolation.png ]]; then
    mkdir -p "$(dirname "$card")/figures"
    cp "$eval_out/style-interpolation.png" "$(dirname "$card")/figures/style-interpolation.png"
fi
python -m stylecast.training.style_study "$eval_out" --corpus "$corpus" --card "$card" >/dev/null
t5=$(seconds)

python - "$eval_out/ship.json" "$saas_run" "$styletalk_run" "$assets" "$corpus" \
    "$((t1 - t0))" "$((t2 - t1))" "$((t3 - t2))" "$((t4 - t3))" "$((t5 - t4))" "$*" \
    "$(uptime)" "$saas_ckpt" "$styletalk_ckpt" <<'EOF'
import hashlib, json, sys, time
from pathlib import Path

out, saas, styletalk, assets, corpus = sys.argv[1:6]
copy_s, export_s, presets_s, eval_s, study_s = map(int, sys.argv[6:11])
sha = {k: hashlib.sha256((Path(assets) / "models" / k / "model.safetensors").read_bytes())
       .hexdigest() for k in ("saas", "styletalk")}
record = {"shipped": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
          "runs": {"saas": saas, "styletalk": styletalk},
          "checkpoints": {"saas": sys.argv[13], "styletalk": sys.argv[14]},
          "assets": assets, "corpus": corpus,
          "sha256": sha, "eval_args": sys.argv[11], "uptime_after": sys.argv[12].strip(),
          "seconds": {"copy": copy_s, "export": export_s, "presets": presets_s, "eval": eval_s,
                      "style_study": study_s}}
Path(out).write_text(json.dumps(record, indent=1) + "\n")
print(json.dumps(record["seconds"]))
EOF
echo "ship: done; table in $card, results in $eval_out"
