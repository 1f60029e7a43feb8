"""How long the Krita plugin's byte-level pixel helpers take on a 4K layer (3840 x 2160 BGRA).

    PYTHONPATH=. python bench/krita_pixels.py [--repeats 5]     (krita_plugin is not an installed package)

Times what Harmonize does to place its result (``krita_plugin/singan_krita/pixels.py``): the
result's alpha, the object's coverage, their union and the new alpha put back. No Krita needed.
Prints the median and the slowest of the repeats (ms); the plugin runs this once per harmonization
on Krita's GUI thread (measured on the shared 2-core machine under load: median 118 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from krita_plugin.singan_krita import pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    bgra, mask = os.urandom(3840 * 2160 * 4), os.urandom(3840 * 2160)
    seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        pixels.with_alpha(bgra, pixels.union(pixels.alpha(bgra), pixels.coverage(mask)))
        seconds.append(time.perf_counter() - started)
    print(
        f"4K harmonize placement: median {1000 * statistics.median(seconds):.0f} ms, "
        f"slowest {1000 * max(seconds):.0f} ms over {args.repeats} repeats"
    )


if __name__ == "__main__":
    main()
