"""Calls per keep-alive from a callgrind profile (bench/profile.py leaves them in bench/results/).

    python3 bench/callgrind_calls.py bench/results/callgrind.ctrlchan-callback-ws-200.out.1 ACKS [REGEX]

ACKS is the keep-alive count profile.py printed; REGEX filters function names. Sums the `calls=`
lines of every call site per callee (names are compressed per namespace: fn, file, object).
"""
import re, sys, collections
names = {"fn": {}, "fl": {}, "ob": {}}
kind_of = {"fn": "fn", "cfn": "fn", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl", "cfl": "fl", "ob": "ob", "cob": "ob"}
calls = collections.Counter()
cur_cfn = None
def name(kind, tok):
    m = re.match(r"\((\d+)\)(?: (.*))?", tok)
    if not m: return tok
    ns = names[kind_of[kind]]
    if m.group(2): ns[m.group(1)] = m.group(2)
    return ns.get(m.group(1), tok)
for line in open(sys.argv[1]):
    if line.startswith(("fn=", "cfn=", "cfi=", "cfl=", "fl=", "fi=", "fe=", "ob=", "cob=")):
        key, val = line.rstrip("\n").split("=", 1)
        n = name(key, val)
        if key == "cfn": cur_cfn = n
    elif line.startswith("calls="):
        calls[cur_cfn] += int(line.split("=")[1].split()[0])
acks = int(sys.argv[2])
pat = re.compile(sys.argv[3]) if len(sys.argv) > 3 else None
for fn, c in calls.most_common():
    if pat is None or pat.search(fn):
        print(f"{c/acks:8.2f}  {fn[:150]}")
