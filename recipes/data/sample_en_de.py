"""Prints random pairs of the shipped English-German corpus, for judging noise.

    python recipes/data/sample_en_de.py                # 100 pairs, seed 15
    python recipes/data/sample_en_de.py --count 20 --seed 3 --origins wesnoth
    python recipes/data/sample_en_de.py --tsv > sample.tsv   # to judge in a file

The draw is `random.Random(seed).sample` over the file's order (sorted), so
a seed gives the same pairs for the same file. The judged sample of the
provenance file is `en_de_noise_check.tsv` beside this script: its columns
are `judgement` (exact / loose / wrong), `origin`, `english`, `german`.
"""

import argparse
import random
import sys

from kzoo.data import translation


def draw(count, seed, origins=None):
    pairs, _ = translation.load_en_de_pairs(origins=origins)
    return random.Random(seed).sample(pairs, min(count, len(pairs)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--origins", default="", help="comma-separated origins; all by default")
    parser.add_argument("--tsv", action="store_true", help="origin<TAB>english<TAB>german lines")
    args = parser.parse_args(argv)
    origins = tuple(o for o in args.origins.split(",") if o) or None
    for i, (english, german, origin) in enumerate(draw(args.count, args.seed, origins), 1):
        if args.tsv:
            print(f"{origin}\t{english}\t{german}")
        else:
            print(f"{i:3d} [{origin}]\n    EN: {english}\n    DE: {german}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
