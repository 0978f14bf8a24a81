#!/usr/bin/env python3
"""Refuses an #include that runs against the rooms' arrows.

The rooms file (written by cmake/rooms.cmake from the libraries' link lists) has one line per
room: `folder: folders it may include`. A source file belongs to the room of the longest folder
that holds it; an #include "a/b/c.h" names the room of the longest folder it starts with. An
include of another room that is not in the list is an error, one line per include:
  trainer/report/summary.cpp:5: includes trainer/loop/trainer.h (room trainer/loop); room
  trainer/report may include common, trainer/config (its libraries' links)
Exit 1 on any such include, 2 on a rooms file that cannot be read.
"""
import argparse
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
SOURCE_SUFFIXES = (".h", ".cpp", ".cu")


def read_rooms(path):
    rooms = {}
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                if ":" not in line:
                    raise ValueError(f"{path}:{n}: expected 'folder: folders', got {line!r}")
                folder, allowed = line.split(":", 1)
                rooms[folder.strip().rstrip("/")] = set(allowed.split())
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror}")
    if not rooms:
        raise ValueError(f"{path}: no rooms")
    return rooms


def room_of(path, rooms):
    """The longest room folder that `path` (relative, with /) lies in, or None."""
    best = None
    for folder in rooms:
        if path.startswith(folder + "/") and (best is None or len(folder) > len(best)):
            best = folder
    return best


def violations(root, rooms):
    for folder in sorted(rooms):
        for dirpath, _, files in os.walk(os.path.join(root, folder)):
            for name in sorted(files):
                if not name.endswith(SOURCE_SUFFIXES):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                own = room_of(rel, rooms)
                if own != folder:
                    continue  # a sub-room's file, checked as its own room's
                with open(os.path.join(dirpath, name), errors="replace") as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = room_of(m.group(1), rooms)
                        if target is None or target == own or target in rooms[own]:
                            continue
                        allowed = ", ".join(sorted(rooms[own])) or "no other room"
                        yield (f"{rel}:{n}: includes {m.group(1)} (room {target}); room {own} may "
                               f"include {allowed} (its libraries' links)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True, help="the source tree")
    p.add_argument("--rooms", required=True, help="rooms.txt, as cmake/rooms.cmake writes it")
    a = p.parse_args()
    try:
        rooms = read_rooms(a.rooms)
    except ValueError as e:
        print(f"check_rooms: {e}", file=sys.stderr)
        return 2
    bad = list(violations(a.root, rooms))
    for line in bad:
        print(f"check_rooms: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
