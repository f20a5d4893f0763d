#!/usr/bin/env bash
# Export the shipped motion-model checkpoints ($ASSETS/models/{saas,styletalk}:
# model.safetensors + config.json) to the ONNX graphs the engine loads
# ($ASSETS/onnx/{saas,styletalk}); ASSETS is $STYLECAST_ASSETS, by default the repository's
# assets/. Needs the [train] extra (torch, onnx). See docs/export.md.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=${STYLECAST_ASSETS:-assets}
for model in saas styletalk; do
    if [[ -f "$assets/models/$model/model.safetensors" ]]; then
        rm -rf "$assets/onnx/$model"
        stylecast export "$assets/models/$model" -o "$assets/onnx/$model"
    else
        echo "no checkpoint in $assets/models/$model: skipped" >&2
    fi
done
