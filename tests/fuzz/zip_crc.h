#pragma once
// For the fuzz targets that read zip archives (torch.jit.save and torch.save both write one).
// The zip reader in LibTorch (miniz) checks each entry's CRC-32, so almost every mutation
// libFuzzer makes inside an entry would be refused there, before the pickle and TorchScript
// readers behind it ever see it. As fuzzers of PNG do for its chunk CRCs, the harness writes
// the right CRC-32 back for every stored (uncompressed: all PyTorch writes) entry first; the
// zip structure itself stays as mutated. Offsets come from the input, so each is bounds-checked
// and a malformed structure is left as it is, for the reader to refuse.
#include <zlib.h>

#include <cstdint>
#include <string>

namespace qconform::fuzz {

inline uint32_t read_le(const std::string& s, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
inline void write_le32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Zip layout (APPNOTE.TXT): the end-of-central-directory record (signature PK\5\6) gives the
// central directory's entry count and offset; each central entry (PK\1\2, 46 bytes + name +
// extra + comment) gives the method, the CRC, the compressed size and the local header's
// offset; the local header (PK\3\4, 30 bytes + name + extra) precedes the data. Zip64 records
// (which PyTorch writes only past 4 GiB) are not followed.
inline void fix_stored_crcs(std::string& zip) {
  if (zip.size() < 22) return;
  size_t eocd = std::string::npos;
  for (size_t at = zip.size() - 22 + 1; at-- > 0 && zip.size() - at <= 22 + 65535;)
    if (zip.compare(at, 4, "PK\x05\x06") == 0) {
      eocd = at;
      break;
    }
  if (eocd == std::string::npos) return;
  const uint32_t entries = read_le(zip, eocd + 10, 2);
  size_t central = read_le(zip, eocd + 16, 4);
  for (uint32_t e = 0; e < entries; ++e) {
    if (central + 46 > zip.size() || zip.compare(central, 4, "PK\x01\x02") != 0) return;
    const uint32_t method = read_le(zip, central + 10, 2);
    const uint64_t size = read_le(zip, central + 20, 4);
    const size_t local = read_le(zip, central + 42, 4);
    const size_t next = central + 46 + read_le(zip, central + 28, 2) + read_le(zip, central + 30, 2) +
                        read_le(zip, central + 32, 2);
    if (method == 0 && local + 30 <= zip.size() && zip.compare(local, 4, "PK\x03\x04") == 0) {
      const size_t data = local + 30 + read_le(zip, local + 26, 2) + read_le(zip, local + 28, 2);
      if (data <= zip.size() && size <= zip.size() - data) {
        const uint32_t crc = static_cast<uint32_t>(
            crc32(0L, reinterpret_cast<const Bytef*>(zip.data() + data), static_cast<uInt>(size)));
        write_le32(zip, central + 16, crc);
        write_le32(zip, local + 14, crc);
      }
    }
    central = next;
  }
}

}  // namespace qconform::fuzz
