#!/usr/bin/env python3
# Redis Cluster key slot: CRC16-XMODEM of the key (or of its first non-empty {hash tag}) mod 16384.
import sys
def crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
def slot(key: str) -> int:
    s = key.find("{")
    if s != -1:
        e = key.find("}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key.encode()) % 16384
assert crc16(b"123456789") == 0x31C3  # the spec's check value
for queue in sys.argv[1:]:
    keys = [f"{queue}:{k}" for k in ("active", "data", "meta:01JABCDEFGHJKMNPQRSTVWXYZ0", "scheduled", "signal", "done", "workers", "inflight:w1", "eye:finished")] + ["core:apalis:queues:list"]
    print(queue, {k: slot(k) for k in keys})
