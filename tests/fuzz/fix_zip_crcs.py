#!/usr/bin/python3
"""Write the right CRC-32 into every stored entry of a zip file, as tests/fuzz/zip_crc.h does
in memory before the fuzz targets load their input: a reproducer saved by libFuzzer is the
input before that step, and LibTorch's zip reader would refuse its CRCs before reaching the
defect it reproduces.  usage: fix_zip_crcs.py IN OUT"""
import struct
import sys
import zlib

data = bytearray(open(sys.argv[1], "rb").read())
end = data.rfind(b"PK\x05\x06")
if end < 0:
    sys.exit(f"{sys.argv[1]}: no end-of-central-directory record")
entries, = struct.unpack_from("<H", data, end + 10)
central, = struct.unpack_from("<I", data, end + 16)
for _ in range(entries):
    method, = struct.unpack_from("<H", data, central + 10)
    size, = struct.unpack_from("<I", data, central + 20)
    local, = struct.unpack_from("<I", data, central + 42)
    name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, central + 28)
    if method == 0:
        local_name, local_extra = struct.unpack_from("<HH", data, local + 26)
        start = local + 30 + local_name + local_extra
        crc = zlib.crc32(bytes(data[start:start + size])) & 0xFFFFFFFF
        struct.pack_into("<I", data, central + 16, crc)
        struct.pack_into("<I", data, local + 14, crc)
    central += 46 + name_length + extra_length + comment_length
open(sys.argv[2], "wb").write(data)
