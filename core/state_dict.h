#pragma once
// state_dict values as PyTorch's quantized modules hold them: float tensors, integer
// tensors (zero points, axes), quantized tensors, dtypes, qschemes, None, and tuples
// (`_packed_params._packed_params` is (weight, bias)). Keys keep insertion order, and
// per-prefix versions mirror PyTorch's `state_dict._metadata[prefix]["version"]`.
//
// save_state_dict/load_state_dict_file write and read a small versioned binary format
// (docs/state_dict_format.md). LibTorch's pickler cannot read quantized tensors back
// (checked: torch::pickle_load fails on them), so the harness keeps its own.
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace qconform {

struct NoneValue {
  bool operator==(const NoneValue&) const { return true; }
};
struct StateValue;
using StateTuple = std::vector<StateValue>;

struct StateValue {
  std::variant<NoneValue, Tensor, IntTensor, QTensor, DType, QScheme, StateTuple> value;

  StateValue() = default;
  template <typename T, typename = std::enable_if_t<!std::is_same_v<std::decay_t<T>, StateValue>>>
  StateValue(T v) : value(std::move(v)) {}  // NOLINT: implicit by design

  template <typename T>
  bool is() const { return std::holds_alternative<T>(value); }
  // Throws Error naming `key` and the held kind when the kind differs.
  template <typename T>
  const T& as(const std::string& key) const;
  std::string kind() const;  // "Tensor", "QTensor", "tuple", ... for messages
  bool operator==(const StateValue& other) const;
};

class StateDict {
 public:
  void set(const std::string& key, StateValue value);  // replaces, keeps position
  bool contains(const std::string& key) const;
  // Throws Error "state_dict has no key '<key>' (keys: ...)".
  const StateValue& at(const std::string& key) const;
  std::vector<std::string> keys() const;
  const std::vector<std::pair<std::string, StateValue>>& entries() const { return entries_; }

  // PyTorch's _metadata versions: "" is the module itself, "_packed_params" a child.
  std::map<std::string, int64_t> versions;

  // Strict loading: throws Error listing missing and unexpected keys against `expected`.
  void check_keys(const std::vector<std::string>& expected, const std::string& module_name) const;
  bool operator==(const StateDict& other) const;

 private:
  std::vector<std::pair<std::string, StateValue>> entries_;
};

// Writes atomically (a temporary file renamed over `path`): a failed save leaves no
// half-written file. Throws Error naming the path.
void save_state_dict(const StateDict& state, const std::string& path);

// Every key of `state` under "prefix." (versions too), as a parent module's state_dict holds
// a child's; and back: the entries under "prefix.", without it.
StateDict prefixed_state_dict(const StateDict& state, const std::string& prefix);
StateDict state_dict_under(const StateDict& state, const std::string& prefix);
// Throws Error naming the path and what is malformed (magic, version, truncation).
StateDict load_state_dict_file(const std::string& path);
// The same from the file's bytes; errors name `origin`.
StateDict parse_state_dict_bytes(std::vector<char> bytes, const std::string& origin);

[[noreturn]] void throw_kind_mismatch(const std::string& key, const std::string& held);

template <typename T>
const T& StateValue::as(const std::string& key) const {
  if (const T* held = std::get_if<T>(&value)) return *held;
  throw_kind_mismatch(key, kind());
}

}  // namespace qconform
