#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_kafka: one whole, valid Kafka request frame
per file (size prefix included), in the layouts of
docs/kafka-protocol.md §3 as librdkafka 2.0.2 sends them, plus a few lower
versions. The files are checked in; rerun this only to change them:

    python3 tests/fuzz/gen_kafka_corpus.py tests/fuzz/corpus/kafka

Deterministic: the same bytes on every run.
"""
import os
import struct
import sys


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    """nullable string: None -> -1"""
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def bytes_(b):
    """nullable bytes: None -> -1"""
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items, enc):
    """items None -> null array"""
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(enc(x) for x in items)


def frame(key, ver, corr, body, client="rdkafka"):
    rest = i16(key) + i16(ver) + i32(corr) + string(client) + body
    return i32(len(rest)) + rest


# ---- RecordBatch v2 (kafka-protocol.md §4), uncompressed -----------------

def _crc32c_table():
    t = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(v):
    """signed zig-zag varint"""
    z = (v << 1) ^ (v >> 63)
    out = bytearray()
    while True:
        if z < 0x80:
            out.append(z)
            return bytes(out)
        out.append((z & 0x7F) | 0x80)
        z >>= 7


def record(offset_delta, key, value):
    body = (i8(0) + varint(0) + varint(offset_delta)
            + (varint(-1) if key is None else varint(len(key)) + key)
            + (varint(-1) if value is None else varint(len(value)) + value)
            + varint(0))
    return varint(len(body)) + body


def record_batch(values, ts=1700000000000):
    recs = b"".join(record(i, None, v) for i, v in enumerate(values))
    after_crc = (i16(0) + i32(len(values) - 1) + i64(ts) + i64(ts)
                 + i64(-1) + i16(-1) + i32(-1) + i32(len(values)) + recs)
    crc = struct.pack(">I", crc32c(after_crc))
    after_len = i32(0) + i8(2) + crc + after_crc  # leader epoch, magic
    return i64(0) + i32(len(after_len)) + after_len


# ---- the requests ---------------------------------------------------------

def seeds():
    s = {}
    s["api_versions_v0"] = frame(18, 0, 2, b"")
    # kafka-protocol.md §2.1: librdkafka's first request (flexible v3)
    s["api_versions_v3"] = bytes.fromhex(
        "00000024" "00120003" "00000001" "0007" "72646b61666b61" "00"
        "0b" "6c696272646b61666b61" "06" "322e302e32" "00")
    s["metadata_v4_null"] = frame(3, 4, 3, array(None, string) + i8(1))
    s["metadata_v4_topics"] = frame(3, 4, 4, array(["orders", "t"], string) + i8(0))
    s["metadata_v0_all"] = frame(3, 0, 5, array([], string))
    batch = record_batch([b"hello", b"world"])
    s["produce_v7"] = frame(0, 7, 6, string(None) + i16(-1) + i32(30000) + array(
        [("orders", [(0, batch)])],
        lambda t: string(t[0]) + array(t[1], lambda p: i32(p[0]) + bytes_(p[1]))))
    fetch_parts = lambda p: i32(p) + i32(-1) + i64(42) + i64(-1) + i32(1048576)
    s["fetch_v11"] = frame(1, 11, 7, i32(-1) + i32(500) + i32(1) + i32(52428800) + i8(1)
                           + i32(0) + i32(-1)
                           + array([("orders", [0, 1])],
                                   lambda t: string(t[0]) + array(t[1], fetch_parts))
                           + array([("old", [3])],
                                   lambda t: string(t[0]) + array(t[1], i32))
                           + string(""))
    s["fetch_v4"] = frame(1, 4, 8, i32(-1) + i32(500) + i32(1) + i32(52428800) + i8(0)
                          + array([("orders", [0])], lambda t: string(t[0]) + array(
                              t[1], lambda p: i32(p) + i64(0) + i32(1048576))))
    s["list_offsets_v2"] = frame(2, 2, 9, i32(-1) + i8(1) + array(
        [("orders", [(0, -1), (1, -2)])],
        lambda t: string(t[0]) + array(t[1], lambda p: i32(p[0]) + i64(p[1]))))
    s["list_offsets_v0"] = frame(2, 0, 10, i32(-1) + array(
        [("orders", [(0, -1, 1)])],
        lambda t: string(t[0]) + array(t[1], lambda p: i32(p[0]) + i64(p[1]) + i32(p[2]))))
    s["find_coordinator_v2"] = frame(10, 2, 11, string("grp") + i8(0))
    sub = i16(1) + array(["orders"], string) + bytes_(b"") + array([], string)
    s["join_group_v5"] = frame(11, 5, 12, string("grp") + i32(45000) + i32(300000)
                               + string("") + string(None) + string("consumer")
                               + array([("range", sub), ("roundrobin", sub)],
                                       lambda p: string(p[0]) + bytes_(p[1])))
    assign = i16(0) + array([("orders", [0, 1])],
                            lambda t: string(t[0]) + array(t[1], i32)) + bytes_(b"")
    s["sync_group_v3"] = frame(14, 3, 13, string("grp") + i32(1) + string("m-1")
                               + string(None) + array([("m-1", assign)],
                                                      lambda a: string(a[0]) + bytes_(a[1])))
    s["heartbeat_v3"] = frame(12, 3, 14, string("grp") + i32(1) + string("m-1") + string(None))
    s["leave_group_v1"] = frame(13, 1, 15, string("grp") + string("m-1"))
    s["offset_commit_v7"] = frame(8, 7, 16, string("grp") + i32(1) + string("m-1")
                                  + string(None) + array(
                                      [("orders", [(0, 250), (1, 7)])],
                                      lambda t: string(t[0]) + array(
                                          t[1], lambda p: i32(p[0]) + i64(p[1]) + i32(-1)
                                          + string(""))))
    s["offset_commit_v1"] = frame(8, 1, 17, string("grp") + i32(1) + string("m-1") + array(
        [("orders", [(0, 250)])],
        lambda t: string(t[0]) + array(
            t[1], lambda p: i32(p[0]) + i64(p[1]) + i64(1700000000000) + string(None))))
    s["offset_fetch_v5"] = frame(9, 5, 18, string("grp") + array(
        [("orders", [0, 1])], lambda t: string(t[0]) + array(t[1], i32)))
    s["create_topics_v4"] = frame(19, 4, 19, array(
        [("new", 3, 1, [], [("retention.ms", "1000"), ("x", None)]),
         ("manual", -1, -1, [(0, [1])], [])],
        lambda t: string(t[0]) + i32(t[1]) + i16(t[2])
        + array(t[3], lambda a: i32(a[0]) + array(a[1], i32))
        + array(t[4], lambda c: string(c[0]) + string(c[1]))) + i32(5000) + i8(0))
    s["delete_topics_v3"] = frame(20, 3, 20, array(["old"], string) + i32(5000))
    s["describe_groups_v4"] = frame(15, 4, 21, array(["grp"], string) + i8(1))
    s["list_groups_v2"] = frame(16, 2, 22, b"")
    s["init_producer_id_v1"] = frame(22, 1, 23, string(None) + i32(-1))
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "kafka")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
    print(f"{len(seeds())} seeds in {out}")


if __name__ == "__main__":
    main()
