#!/usr/bin/env bash
# bench/gpu_check.py in one device call:  bash bench/gpu_check.sh   (output and files to $OUT)
# The GPU machine's image has torch, numpy, pillow, safetensors and scipy but not pydantic, which
# singan_core.storage imports: carry its wheels in .whl/ (ignored by git; see the device README:
# pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64
# -d .whl pydantic==2.14.4 pydantic_core==2.50.5 annotated_types==0.8.0 typing_inspection==0.4.5)
# add /.whl/ to .git/info/exclude and name .whl in the call's carry. balloons.png is used if it is in
# shared/images/reference/ inside the checkout (which travels), else the bundled demo image.
set -o pipefail
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-bench/results}"
mkdir -p "$out"
python3 bench/gpu_check.py --out "$out" "$@" 2>&1 | tee "$out/gpu_check.log"
