#!/usr/bin/env python3
"""extents.py FILE: print the allocated extents of FILE as "OFFSET LENGTH" lines.

Found with SEEK_DATA/SEEK_HOLE, as snapferry reads sparse files. The benchmark scripts import
data_extents() or read this output instead of each walking the holes themselves.
"""
import os
import sys


def data_extents(fd):
    """The (start, end) byte ranges of fd that hold data, in order."""
    size, off, out = os.fstat(fd).st_size, 0, []
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after off
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end))
        off = end
    return out


if __name__ == "__main__":
    fd = os.open(sys.argv[1], os.O_RDONLY)
    for start, end in data_extents(fd):
        print(start, end - start)
