#!/usr/bin/env python3
"""Turn bench_runtime's JSON into the markdown table of bench/README.md."""
import json
import platform
import subprocess
import sys
import time

data = json.load(open(sys.argv[1]))
med = {}
for b in data["benchmarks"]:
    if b.get("aggregate_name") == "median":
        med[b["run_name"]] = b.get("items_per_second", 0.0)


def get(name):
    for k, v in med.items():
        if k == name or k.startswith(name + "/"):
            return v
    raise SystemExit(f"report: benchmark {name} missing")


cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()

rows = [
    ("Mailbox push+pop, 1 thread, batch 1", get("BM_MailboxPushPop/1"), None),
    ("Mailbox push+pop, 1 thread, batch 64", get("BM_MailboxPushPop/64"), None),
    ("Mailbox MPSC, 1 producer + consumer", get("BM_MailboxMPSC/1"), None),
    ("Mailbox MPSC, 2 producers + consumer", get("BM_MailboxMPSC/2"), None),
    ("Ping-pong, 1 worker", get("BM_Pairs/workers:1/pairs:1/cross:0/balls:1"), 20e6),
    ("Ping-pong across 2 workers, 1 in flight", get("BM_Pairs/workers:2/pairs:1/cross:1/balls:1"), None),
    ("Across 2 workers, 64 in flight (batched)", get("BM_Pairs/workers:2/pairs:1/cross:1/balls:64"), 5e6),
    ("8 independent pairs, 1 worker", get("BM_Pairs/workers:1/pairs:8/cross:0/balls:8"), None),
    ("8 independent pairs, 2 workers", get("BM_Pairs/workers:2/pairs:8/cross:0/balls:8"), None),
    ("8 pairs spanning 2 workers", get("BM_Pairs/workers:2/pairs:8/cross:1/balls:8"), None),
    ("Ring of 1024 actors, 1 token, 1 worker", get("BM_Ring/workers:1/actors:1024/tokens:1/spread:0"), None),
    ("Ring of 1024 actors, 64 tokens, 1 worker", get("BM_Ring/workers:1/actors:1024/tokens:64/spread:0"), None),
    ("Ring of 1024 actors, 64 tokens, 2 workers (every hop crosses)", get("BM_Ring/workers:2/actors:1024/tokens:64/spread:1"), None),
]
scale = get("BM_Pairs/workers:2/pairs:8/cross:0/balls:8") / get("BM_Pairs/workers:1/pairs:8/cross:0/balls:8")

print(f"Machine: {cpu}, {cores} cores, {platform.system()} {platform.release()}; "
      f"{time.strftime('%Y-%m-%d')}. Medians of 5 repetitions.\n")
print("| benchmark | messages/s | ns/message | goal | met |")
print("|---|---:|---:|---:|:-:|")
for name, v, goal in rows:
    g = f"≥ {goal/1e6:.0f} M/s" if goal else ""
    met = ("yes" if v >= goal else "NO") if goal else ""
    print(f"| {name} | {v/1e6:.2f} M | {1e9/v:.1f} | {g} | {met} |")
print(f"| **Scaling: 8 independent pairs, 2 workers / 1 worker** | "
      f"**{scale:.2f}×** | | ≥ 1.70× | {'yes' if scale >= 1.7 else 'NO'} |")
