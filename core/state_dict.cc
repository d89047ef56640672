#include "core/state_dict.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/error.h"
#include "core/files.h"

namespace qconform {
namespace {

constexpr char kMagic[8] = {'Q', 'C', 'S', 'T', 'A', 'T', 'E', '\0'};
constexpr uint32_t kFormatVersion = 1;
enum Tag : uint8_t { kNone = 0, kTensor, kIntTensor, kQTensor, kDType, kQScheme, kTuple };

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

class Writer {
 public:
  template <typename T>
  void pod(const T& v) {
    const char* p = reinterpret_cast<const char*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  template <typename T>
  void array(const std::vector<T>& values) {
    pod(static_cast<uint64_t>(values.size()));
    const char* p = reinterpret_cast<const char*>(values.data());
    bytes_.insert(bytes_.end(), p, p + values.size() * sizeof(T));
  }
  void string(const std::string& s) {
    pod(static_cast<uint64_t>(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  void value(const StateValue& v) {
    std::visit([this](const auto& held) { write(held); }, v.value);
  }
  const std::vector<char>& bytes() const { return bytes_; }

 private:
  void write(const NoneValue&) { pod(kNone); }
  void write(const Tensor& t) { pod(kTensor); array(t.sizes); array(t.data); }
  void write(const IntTensor& t) { pod(kIntTensor); pod<uint8_t>(t.is_int32); array(t.sizes); array(t.values); }
  void write(const QTensor& t) {
    pod(kQTensor);
    array(t.sizes);
    array(t.values);
    pod(static_cast<uint8_t>(t.qparams.dtype));
    pod(static_cast<uint8_t>(t.qparams.qscheme));
    pod(t.qparams.axis);
    pod(t.qparams.quant_min);
    pod(t.qparams.quant_max);
    array(t.qparams.scales);
    array(t.qparams.zero_points);
  }
  void write(const DType& d) { pod(kDType); pod(static_cast<uint8_t>(d)); }
  void write(const QScheme& q) { pod(kQScheme); pod(static_cast<uint8_t>(q)); }
  void write(const StateTuple& items) {
    pod(kTuple);
    pod(static_cast<uint64_t>(items.size()));
    for (const auto& item : items) value(item);
  }
  std::vector<char> bytes_;
};

class Reader {
 public:
  Reader(std::vector<char> bytes, std::string path) : bytes_(std::move(bytes)), path_(std::move(path)) {}
  template <typename T>
  T pod(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  template <typename T>
  std::vector<T> array(const char* what) {
    const auto n = pod<uint64_t>(what);
    if (n > (bytes_.size() - at_) / sizeof(T)) fail(std::string("truncated ") + what);
    std::vector<T> values(n);
    if (n > 0) std::memcpy(values.data(), bytes_.data() + at_, n * sizeof(T));  // an empty vector's data() may be null
    at_ += n * sizeof(T);
    return values;
  }
  std::string string(const char* what) {
    const auto chars = array<char>(what);
    return std::string(chars.begin(), chars.end());
  }
  StateValue value(int depth = 0) {
    if (depth > 16) fail("tuples nested deeper than 16");
    const auto tag = pod<uint8_t>("value tag");
    switch (tag) {
      case kNone: return NoneValue{};
      case kTensor: {
        Tensor t;
        t.sizes = array<int64_t>("tensor shape");
        t.data = array<float>("tensor data");
        check_numel(t.sizes, t.data.size());
        return t;
      }
      case kIntTensor: {
        IntTensor t;
        t.is_int32 = pod<uint8_t>("int tensor kind") != 0;
        t.sizes = array<int64_t>("int tensor shape");
        t.values = array<int64_t>("int tensor data");
        check_numel(t.sizes, t.values.size());
        return t;
      }
      case kQTensor: {
        QTensor t;
        t.sizes = array<int64_t>("quantized tensor shape");
        t.values = array<int32_t>("quantized tensor data");
        check_numel(t.sizes, t.values.size());
        t.qparams.dtype = enum_value<DType>(pod<uint8_t>("dtype"), 5, "dtype");
        t.qparams.qscheme = enum_value<QScheme>(pod<uint8_t>("qscheme"), 4, "qscheme");
        t.qparams.axis = pod<int64_t>("axis");
        t.qparams.quant_min = pod<int64_t>("quant_min");
        t.qparams.quant_max = pod<int64_t>("quant_max");
        t.qparams.scales = array<double>("scales");
        t.qparams.zero_points = array<double>("zero points");
        try {
          validate(t.qparams, t.sizes);
        } catch (const Error& e) {
          fail(std::string("quantized tensor has ") + e.what());
        }
        return t;
      }
      case kDType: return enum_value<DType>(pod<uint8_t>("dtype"), 5, "dtype");
      case kQScheme: return enum_value<QScheme>(pod<uint8_t>("qscheme"), 4, "qscheme");
      case kTuple: {
        const auto n = pod<uint64_t>("tuple length");
        if (n > bytes_.size() - at_) fail("tuple length beyond the end of the file");
        StateTuple items;
        for (uint64_t i = 0; i < n; ++i) items.push_back(value(depth + 1));
        return items;
      }
      default: fail("unknown value tag " + std::to_string(tag));
    }
  }
  bool at_end() const { return at_ == bytes_.size(); }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_ + ": malformed state_dict file at byte " + std::to_string(at_) + ": " + what);
  }

 private:
  void need(size_t n, const char* what) const {
    if (bytes_.size() - at_ < n) fail(std::string("truncated while reading ") + what);
  }
  void check_numel(const Shape& sizes, size_t count) const {
    for (int64_t s : sizes)
      if (s < 0) fail("negative dimension in a shape");
    const std::optional<int64_t> n = checked_numel(sizes);
    if (!n) fail("a shape of more elements than int64 counts");
    if (static_cast<size_t>(*n) != count) fail("shape and element count disagree");
  }
  template <typename E>
  E enum_value(uint8_t raw, uint8_t max, const char* what) const {
    if (raw > max) fail(std::string("invalid ") + what + " code " + std::to_string(raw));
    return static_cast<E>(raw);
  }
  std::vector<char> bytes_;
  std::string path_;
  size_t at_ = 0;
};

}  // namespace

void throw_kind_mismatch(const std::string& key, const std::string& held) {
  throw Error("state_dict['" + key + "'] holds a " + held + " value, not the kind expected");
}

std::string StateValue::kind() const {
  static const char* names[] = {"None", "Tensor", "IntTensor", "QTensor", "dtype", "qscheme", "tuple"};
  return names[value.index()];
}

bool StateValue::operator==(const StateValue& other) const { return value == other.value; }

void StateDict::set(const std::string& key, StateValue value) {
  for (auto& [k, v] : entries_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  entries_.emplace_back(key, std::move(value));
}

bool StateDict::contains(const std::string& key) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const auto& e) { return e.first == key; });
}

const StateValue& StateDict::at(const std::string& key) const {
  for (const auto& [k, v] : entries_)
    if (k == key) return v;
  throw Error("state_dict has no key '" + key + "' (keys: " + join(keys()) + ")");
}

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.first);
  return out;
}

void StateDict::check_keys(const std::vector<std::string>& expected,
                           const std::string& module_name) const {
  std::vector<std::string> missing, unexpected;
  for (const auto& key : expected)
    if (!contains(key)) missing.push_back('"' + key + '"');
  for (const auto& [key, value] : entries_)
    if (std::find(expected.begin(), expected.end(), key) == expected.end())
      unexpected.push_back('"' + key + '"');
  if (missing.empty() && unexpected.empty()) return;
  // PyTorch's wording from Module.load_state_dict.
  std::string message = "Error(s) in loading state_dict for " + module_name + ":";
  if (!missing.empty()) message += " Missing key(s) in state_dict: " + join(missing) + ".";
  if (!unexpected.empty()) message += " Unexpected key(s) in state_dict: " + join(unexpected) + ".";
  throw Error(message);
}

bool StateDict::operator==(const StateDict& other) const {
  return entries_ == other.entries_ && versions == other.versions;
}

void save_state_dict(const StateDict& state, const std::string& path) {
  Writer w;
  for (char c : kMagic) w.pod(c);
  w.pod(kFormatVersion);
  w.pod(static_cast<uint64_t>(state.versions.size()));
  for (const auto& [prefix, version] : state.versions) {
    w.string(prefix);
    w.pod(version);
  }
  w.pod(static_cast<uint64_t>(state.entries().size()));
  for (const auto& [key, value] : state.entries()) {
    w.string(key);
    w.value(value);
  }
  write_file_atomically(path, std::string(w.bytes().begin(), w.bytes().end()), "state_dict file");
}

StateDict load_state_dict_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open state_dict file");
  return parse_state_dict_bytes(std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()),
                                path);
}

StateDict parse_state_dict_bytes(std::vector<char> bytes, const std::string& path) {
  Reader r(std::move(bytes), path);
  char magic[8];
  for (char& c : magic) c = r.pod<char>("magic");
  if (std::memcmp(magic, kMagic, 8) != 0) r.fail("not a qconform state_dict file (bad magic)");
  const auto format = r.pod<uint32_t>("format version");
  if (format != kFormatVersion)
    r.fail("format version " + std::to_string(format) + " is not supported (this build reads " +
           std::to_string(kFormatVersion) + ")");
  StateDict state;
  const auto n_versions = r.pod<uint64_t>("version count");
  for (uint64_t i = 0; i < n_versions; ++i) {
    std::string prefix = r.string("version prefix");
    state.versions[prefix] = r.pod<int64_t>("version");
  }
  const auto n_entries = r.pod<uint64_t>("entry count");
  for (uint64_t i = 0; i < n_entries; ++i) {
    std::string key = r.string("key");
    state.set(key, r.value());
  }
  if (!r.at_end()) r.fail("trailing bytes after the last entry");
  return state;
}

StateDict prefixed_state_dict(const StateDict& state, const std::string& prefix) {
  StateDict out;
  for (const auto& [key, value] : state.entries()) out.set(prefix + "." + key, value);
  for (const auto& [key, version] : state.versions) out.versions[key.empty() ? prefix : prefix + "." + key] = version;
  return out;
}

StateDict state_dict_under(const StateDict& state, const std::string& prefix) {
  StateDict out;
  const std::string head = prefix + ".";
  for (const auto& [key, value] : state.entries())
    if (key.compare(0, head.size(), head) == 0) out.set(key.substr(head.size()), value);
  for (const auto& [key, version] : state.versions) {
    if (key == prefix) out.versions[""] = version;
    else if (key.compare(0, head.size(), head) == 0) out.versions[key.substr(head.size())] = version;
  }
  return out;
}

}  // namespace qconform
