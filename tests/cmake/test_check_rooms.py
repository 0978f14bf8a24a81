#!/usr/bin/env python3
"""cmake/check_rooms.py: the tree as it is passes; an include planted against an arrow, in a copy
of the tree, fails naming the file, the line and both rooms; an include the link lists allow
passes; a rooms file that cannot be read is exit 2.

usage: test_check_rooms.py SOURCE_ROOT ROOMS_TXT
"""
import os
import shutil
import subprocess
import sys
import tempfile

root, rooms_txt = sys.argv[1], sys.argv[2]
checker = os.path.join(root, "cmake", "check_rooms.py")
failures = []


def check(tree, rooms=rooms_txt):
    r = subprocess.run([sys.executable, checker, "--root", tree, "--rooms", rooms],
                       capture_output=True, text=True)
    return r.returncode, r.stderr


def expect(cond, what, detail=""):
    if not cond:
        failures.append(f"{what}\n{detail}")


# The rooms file states the arrows the issue asks for.
with open(rooms_txt) as f:
    arrows = {l.split(":")[0]: set(l.split(":")[1].split()) for l in f if ":" in l and not l.startswith("#")}
for room in ["trainer/config", "trainer/optim", "trainer/checkpoint", "trainer/report", "trainer/loop"]:
    expect(room in arrows, f"{room} is a room", str(arrows))
expect("trainer/loop" not in arrows.get("trainer/checkpoint", {"?"}), "checkpoints may not include the loop")
expect(not {"trainer/loop", "trainer/checkpoint"} & arrows.get("trainer/report", {"?"}),
       "what a run reports may include neither the loop nor checkpoints")
expect(not any(r.startswith("trainer") or r == "launch" for r in arrows.get("comm", {"?"}) | arrows.get("data", {"?"})),
       "comm/ and data/ include no room above them")

code, err = check(root)
expect(code == 0, "the tree as it is passes", err)

# Each planted include runs against one arrow; the copy keeps only the rooms' folders.
planted = [
    ("trainer/report/summary.cpp", "trainer/loop/trainer.h", "trainer/loop"),
    ("trainer/checkpoint/persistence.cpp", "trainer/loop/position.h", "trainer/loop"),
    ("trainer/report/metrics.cpp", "trainer/checkpoint/checkpoint.h", "trainer/checkpoint"),
    ("data/loader.cpp", "comm/communicator.h", "comm"),
    ("trainer/optim/lr_schedule.cpp", "trainer/report/trace.h", "trainer/report"),
]
with tempfile.TemporaryDirectory() as tmp:
    for folder in sorted(arrows):
        if not os.path.exists(os.path.join(tmp, folder)):
            shutil.copytree(os.path.join(root, folder), os.path.join(tmp, folder))
    for path, include, target in planted:
        full = os.path.join(tmp, path)
        with open(full) as f:
            text = f.read()
        line = text.count("\n", 0, text.index("#include")) + 1
        with open(full, "w") as f:
            f.write(text.replace("#include", f'#include "{include}"\n#include', 1))
        code, err = check(tmp)
        own = path.rsplit("/", 1)[0]
        expect(code == 1, f"{path} including {include} fails", err)
        expect(f"{path}:{line}: includes {include} (room {target}); room {own} may include" in err,
               f"the error names {path}:{line}, {include} and both rooms", err)
        with open(full, "w") as f:
            f.write(text)
    # An arrow the link lists draw is allowed: the loop includes checkpoints.
    loop = os.path.join(tmp, "trainer/loop/evaluate.cpp")
    with open(loop) as f:
        text = f.read()
    with open(loop, "w") as f:
        f.write('#include "trainer/checkpoint/checkpoint.h"\n' + text)
    code, err = check(tmp)
    expect(code == 0, "the loop may include checkpoints", err)
    # A rooms file that cannot be read.
    bad = os.path.join(tmp, "rooms.txt")
    with open(bad, "w") as f:
        f.write("trainer/loop trainer/config\n")
    code, err = check(tmp, bad)
    expect(code == 2 and "expected 'folder: folders'" in err, "a malformed rooms file is exit 2", err)
    code, err = check(tmp, os.path.join(tmp, "missing.txt"))
    expect(code == 2, "a missing rooms file is exit 2", err)

for f in failures:
    print("FAIL:", f)
print(f"test_check_rooms: {len(planted)} planted includes, {len(failures)} failures")
sys.exit(1 if failures else 0)
