#!/usr/bin/env python3
"""Turn bench_runtime's JSON into the markdown table of bench/README.md."""
import json
import platform
import subprocess
import sys
import time

kind, path = sys.argv[1], sys.argv[2]
data = json.load(open(path))
med = {}    # run name -> median items/s
runs = {}   # run name -> the median entry (times, counters)
for b in data["benchmarks"]:
    agg = b.get("aggregate_name")
    if agg == "median" or (agg is None and b.get("run_type") == "iteration"):
        med.setdefault(b["run_name"], b.get("items_per_second", 0.0))
        runs.setdefault(b["run_name"], b)


def entry(name):
    for k, v in runs.items():
        if k == name or k.startswith(name + "/"):
            return v
    raise SystemExit(f"report: benchmark {name} missing")


def get(name):
    return entry(name).get("items_per_second", 0.0)


def ms(name):
    e = entry(name)
    t, unit = e["real_time"], e.get("time_unit", "ns")
    return t * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def platform_line():
    return (f"{cpu}, {cores} cores, {platform.system()} {platform.release()}; "
            f"{time.strftime('%Y-%m-%d')}. Medians of 5 repetitions.")


cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()

if kind == "tls":
    import re
    aes = open(sys.argv[3]).read()
    m = re.search(r"AES-128-GCM\s+([0-9.]+)k", aes)
    aes_bps = float(m.group(1)) * 1000  # one direction, 16 KB blocks
    pk = open(sys.argv[4]).read()
    sign_ecdsa, verify_ecdsa = map(float, re.search(r"ecdsa \(nistp256\)\s+\S+\s+\S+\s+([0-9.]+)\s+([0-9.]+)", pk).groups())
    ecdh_p256 = float(re.search(r"ecdh \(nistp256\)\s+\S+\s+([0-9.]+)", pk).group(1))
    ecdh_x = float(re.search(r"ecdh \(X25519\)\s+\S+\s+([0-9.]+)", pk).group(1))
    verify_ed = float(re.search(r"EdDSA \(Ed25519\)\s+\S+\s+\S+\s+[0-9.]+\s+([0-9.]+)", pk).group(1))
    # Per side of a handshake: ECDSA sign (CertificateVerify) + verify (the
    # peer's), two ECDH operations (key generation + derivation), one Ed25519
    # verify (the peer's binding; ours is signed once per context). The
    # benchmark runs both sides on one core: twice that.
    def limit(ecdh):
        side = 1 / sign_ecdsa + 1 / verify_ecdsa + 2 / ecdh + 1 / verify_ed
        return 1 / (2 * side)
    print(f"Machine: {platform_line()}\n")
    print(f"Limits measured in the same run: `openssl speed -evp aes-128-gcm` (16 KB) "
          f"{aes_bps/1e9:.2f} GB/s one way; ECDSA P-256 {sign_ecdsa:.0f} sign/s, "
          f"{verify_ecdsa:.0f} verify/s; ECDH P-256 {ecdh_p256:.0f}/s, X25519 "
          f"{ecdh_x:.0f}/s; Ed25519 {verify_ed:.0f} verify/s.\n")
    print("| benchmark | figure | limit | ratio | goal | met |")
    print("|---|---:|---:|---:|---:|:-:|")
    for b, name in ((1, "OpenSSL"), (2, "mbedTLS")):
        e = entry(f"BM_TlsFrames/backend:{b}")
        bps = e["bytes_per_second"]
        ratio = 2 * bps / aes_bps  # every byte encrypted and decrypted on the core
        ok = ("yes" if ratio >= 0.4 else "NO") if b == 1 else ""
        print(f"| {name}: 256-byte frames, one session ({e.get('label', '')}) | "
              f"{e['items_per_second']/1e6:.2f} M frames/s, {bps/1e9:.2f} GB/s | "
              f"{aes_bps/2/1e9:.2f} GB/s (both passes) | {100*ratio:.0f}% | ≥ 40% | {ok} |")
    for b, name in ((1, "OpenSSL"), (2, "mbedTLS")):
        hs = entry(f"BM_Handshake/backend:{b}")["items_per_second"]
        tls_only = entry(f"BM_HandshakeTlsOnly/backend:{b}")["items_per_second"]
        lp, lx = limit(ecdh_p256), limit(ecdh_x)
        ok = ("yes" if hs >= 0.5 * lp else "NO") if b == 1 else ""
        print(f"| {name}: full mutual handshake + both hellos, both sides on one core | "
              f"{hs:.0f}/s (TLS alone {tls_only:.0f}/s) | {lp:.0f}/s (P-256 ECDH), "
              f"{lx:.0f}/s (X25519) | {100*hs/lp:.0f}%, {100*hs/lx:.0f}% | ≥ 50% | {ok} |")
    hc = entry("BM_HelloCheck")
    print(f"| hello check (proof of work, binding verify) | {1e9/hc['items_per_second']/1e3:.1f} µs | "
          f"{1e6/verify_ed:.1f} µs (one Ed25519 verify) | | | |")
    for b, name in ((1, "OpenSSL"), (2, "mbedTLS")):
        m = entry(f"BM_IdleMemory/backend:{b}")
        kb = m["bytes_per_idle_session_end"] / 1024
        ok = "yes" if kb <= 20 else "NO"
        print(f"| {name}: memory per idle session end (1000 sessions) | {kb:.1f} KiB | | | ≤ 20 KB | {ok} |")
    sys.exit(0)

if kind == "net":
    print(f"Machine: {platform_line()}\n")
    print("| message | bytes on the wire | encode | decode |")
    print("|---|---:|---:|---:|")
    for t, name in enumerate(["hello", "ping", "pong", "error", "event", "get_peers",
                              "peers (64 entries x 12 neighbours)"], start=1):
        e, d = entry(f"BM_Encode/{t}"), entry(f"BM_Decode/{t}")
        print(f"| {name} | {int(e['bytes'])} | {1e9/e['items_per_second']:.0f} ns | "
              f"{1e9/d['items_per_second']:.0f} ns |")
    print("\n| relay path (decode, hop checks, re-encode; no TLS, no mailbox) | frame bytes | per frame | frames/s, one core |")
    print("|---|---:|---:|---:|")
    for size in (256, 4096):
        r = entry(f"BM_RelayDirect/{size}")
        print(f"| direct, {size} B payload | {int(r['bytes'])} | {1e9/r['items_per_second']:.0f} ns | "
              f"{r['items_per_second']/1e6:.2f} M |")
    sys.exit(0)

if kind == "store":
    mem = entry("BM_MapMemory")
    mb = mem["MB_100k_allocated"]
    rows = [
        ("Map memory, 100k peers (12 neighbours, 30% with an address, 20% of those IPv6)",
         f"{mb:.3f} MB ({mem['bytes_per_peer_allocated']:.1f} B/peer)", "≤ 12 MB", mb <= 12.0),
        ("  same, without flushing the builder's jemalloc thread cache",
         f"{mem['bytes_per_peer_unflushed'] * 0.1:.2f} MB ({mem['bytes_per_peer_unflushed']:.1f} B/peer)", "", None),
        ("  the store's own accounting", f"{mem['bytes_per_peer_store']:.1f} B/peer", "", None),
        ("Building it from 1.2 M connect events", f"{mem['events_per_s_build']/1e6:.2f} M events/s", "", None),
        ("Event apply (connect/disconnect churn on the 100k map)", f"{get('BM_EventApply')/1e6:.2f} M events/s", "", None),
        ("Insert (new peer with an address)", f"{get('BM_Insert')/1e6:.2f} M/s", "", None),
        ("Overlap of one candidate with a 12-peer set", f"{1e9/get('BM_Overlap'):.0f} ns", "", None),
        ("Top-12 least overlap among 1000 candidates", f"{ms('BM_TopK/1000')*1e3:.0f} µs", "", None),
        ("Shortest path, random pair, 100k map", f"{ms('BM_ShortestPath'):.2f} ms (avg {entry('BM_ShortestPath')['avg_hops']:.2f} hops)", "≤ 20 ms", ms('BM_ShortestPath') <= 20),
        ("Components, full map", f"{ms('BM_Components/cuts:0'):.1f} ms", "≤ 20 ms", ms('BM_Components/cuts:0') <= 20),
        ("Components + bridges + articulation points", f"{ms('BM_Components/cuts:1'):.1f} ms", "", None),
        ("Dedup check-and-insert, new ids", f"{get('BM_Dedup/duplicates:0')/1e6:.1f} M/s", "≥ 20 M/s", get('BM_Dedup/duplicates:0') >= 20e6),
        ("Dedup check, duplicates", f"{get('BM_Dedup/duplicates:1')/1e6:.1f} M/s", "≥ 20 M/s", get('BM_Dedup/duplicates:1') >= 20e6),
        ("Snapshot save, 100k peers with addresses", f"{ms('BM_Snapshot/load:0'):.1f} ms", "", None),
        ("Snapshot load, 100k peers", f"{ms('BM_Snapshot/load:1'):.1f} ms", "", None),
    ]
    print(f"Machine: {platform_line()}\n")
    print("| benchmark | figure | goal | met |")
    print("|---|---:|---:|:-:|")
    for name, fig, goal, ok in rows:
        met = "" if ok is None else ("yes" if ok else "NO")
        print(f"| {name} | {fig} | {goal} | {met} |")
    sys.exit(0)

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
