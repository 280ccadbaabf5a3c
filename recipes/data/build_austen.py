"""Rebuilds kzoo/data/files/austen_*.txt.gz from Debian's r-cran-janeaustenr.

Jane Austen's six completed novels ship in the Debian package
`r-cran-janeaustenr` (1.0.0-1) as R lazy-load data: `data/Rdata.rdx` is a
gzip-compressed index giving, for each novel, the offset and length of its
object in `data/Rdata.rdb`; each object there is a 4-byte big-endian length
followed by a zlib stream holding an R character vector (one line of the book
per element). This script reads those objects with the `rdata` package and
writes one gzip file per novel, one line of the book per line.

Usage:
    python recipes/data/build_austen.py --deb /path/r-cran-janeaustenr_1.0.0-1_all.deb
"""

import argparse
import gzip
import hashlib
import os
import struct
import subprocess
import tempfile
import warnings
import zlib

OUT_DIR = os.path.normpath(os.path.join(
    os.path.dirname(__file__), "..", "..", "kzoo", "data", "files")
)
DATA_DIR = "usr/lib/R/site-library/janeaustenr/data"


def _parse_r_object(raw):
    import rdata

    with warnings.catch_warnings():
        # rdata warns that a bare serialized object has no RDS/RDA header.
        warnings.simplefilter("ignore")
        return rdata.conversion.convert(
            rdata.parser.parse_data(raw, expand_altrep=True)
        )


def read_novels(data_dir):
    """Returns {name: list of lines} from an Rdata.rdb/.rdx pair."""
    with open(os.path.join(data_dir, "Rdata.rdx"), "rb") as f:
        index = _parse_r_object(gzip.decompress(f.read()))
    with open(os.path.join(data_dir, "Rdata.rdb"), "rb") as f:
        rdb = f.read()
    novels = {}
    for name, (offset, length) in index["variables"].items():
        blob = rdb[int(offset) : int(offset) + int(length)]
        size = struct.unpack(">I", blob[:4])[0]
        raw = zlib.decompress(blob[4:])
        if len(raw) != size:
            raise ValueError(f"object {name}: {len(raw)} bytes, header says {size}")
        novels[str(name)] = [str(line) for line in _parse_r_object(raw)]
    return novels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--deb", default="/tmp/data/r-cran-janeaustenr_1.0.0-1_all.deb"
    )
    parser.add_argument("--out_dir", default=OUT_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg", "-x", args.deb, tmp], check=True)
        novels = read_novels(os.path.join(tmp, DATA_DIR))
    os.makedirs(args.out_dir, exist_ok=True)
    for name, lines in sorted(novels.items()):
        text = "\n".join(lines) + "\n"
        data = text.encode("utf-8")
        path = os.path.join(args.out_dir, f"austen_{name}.txt.gz")
        # mtime=0 and no file name: the same input gives the same bytes.
        with open(path, "wb") as f:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as g:
                g.write(data)
        print(
            f"{path}: {len(lines)} lines, {len(text.split())} words, "
            f"sha256 of text {hashlib.sha256(data).hexdigest()[:16]}"
        )


if __name__ == "__main__":
    main()
