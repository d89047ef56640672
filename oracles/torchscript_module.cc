#include "oracles/torchscript_module.h"

#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/csrc/jit/serialization/unpickler.h>
#include <ATen/Parallel.h>
#include <caffe2/serialize/inline_container.h>

#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <regex>
#include <sstream>
#include <unordered_map>

#include "core/float/rnn.h"
#include "core/float/static_lstm.h"
#include "oracles/kinds/registry.h"
#include "quantized/libtorch/engine.h"

// The sanitizers' runtime interface (sanitizer/common_interface_defs.h), when one is linked in.
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

// ASan's operator new ends the process with a report where the C++ library throws
// std::bad_alloc, so the loading child's memory cap (load_in_child_first) is not set under it.
#if defined(__SANITIZE_ADDRESS__)
#define QCONFORM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QCONFORM_ASAN 1
#endif
#endif
#ifdef QCONFORM_ASAN
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

namespace qconform {

using json = nlohmann::json;
using libtorch::first_line;
using libtorch::from_aten;
using libtorch::from_aten_quantized;

// --- reading the files ------------------------------------------------------------------

std::string read_bytes(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the " + what);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// torch.save and torch.jit.save both write zip archives; anything else is refused before
// LibTorch sees it, with a message that says so.
namespace {
void require_zip(const std::string& path, const std::string& bytes, const char* what) {
  if (bytes.size() < 4 || bytes.compare(0, 4, "PK\x03\x04") != 0)
    throw Error(path + ": not a zip archive, so not " + what);
}

// LibTorch's unpickler rebuilds a tensor with the sizes, strides and storage offset the file
// names, without checking them against the storage it read (torch._utils._rebuild_tensor_v2
// and _rebuild_qtensor in LibTorch 1.13): a file that says [1000] over a storage of 4 floats
// gives a tensor every read of which runs past its storage (found by scripts/fuzz torch_save).
// Every tensor the harness takes from a file passes this first.
//
// While a torch.save file is checked, the byte count of every zip record its storages were
// read from, by the record's data pointer (load_pickle_bytes reads them itself): a storage is
// held to its record's exact size. Elsewhere (TorchScript archives, whose records LibTorch's
// import reads) only to the usable size of the block malloc gave, which may exceed the record
// by its alignment slack (a storage 24 bytes past a 24-byte record passed that check in about
// one run in fifteen).
thread_local const std::unordered_map<const void*, size_t>* checked_record_bytes = nullptr;

void require_within_storage(const std::string& origin, const at::Tensor& t, const std::string& what) {
  if (!t.defined()) return;
  const auto fail = [&](const std::string& why) {
    throw Error(origin + ": " + what + " of shape " + shape_to_string(t.sizes().vec()) + " " + why +
                " (a malformed or altered file)");
  };
  // Its element count, counted here: LibTorch's product of the sizes is not checked for overflow.
  int64_t elements = 1;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) < 0 || __builtin_mul_overflow(elements, t.size(d), &elements)) fail("has more elements than int64 counts");
  if (elements == 0) return;
  if (!t.has_storage()) fail("has no storage");
  if (t.storage_offset() < 0) fail("starts before its storage");
  // More elements than the storage holds (strides of 0, overlapping rows) would be copied out
  // to their full count: refused, with what to do instead.
  int64_t element_bytes = 0;
  if (t.scalar_type() != at::kQUInt4x2 && t.scalar_type() != at::kQUInt2x4 &&
      (__builtin_mul_overflow(elements, static_cast<int64_t>(t.element_size()), &element_bytes) ||
       element_bytes > static_cast<int64_t>(t.storage().nbytes())))
    fail("has more elements than its storage of " + std::to_string(t.storage().nbytes()) +
         " bytes holds (a view repeating its values: save it .contiguous())");
  int64_t bytes_needed = 0;
  if (t.scalar_type() == at::kQUInt4x2 || t.scalar_type() == at::kQUInt2x4) {
    // Sub-byte values, packed along the last dimension (2 or 4 to a byte, each row starting a
    // new byte): strides count values, not bytes, so only the packed layout is taken.
    if (!t.is_contiguous() || t.storage_offset() != 0) fail("is a packed sub-byte tensor, but not contiguous");
    const int64_t per_byte = t.scalar_type() == at::kQUInt4x2 ? 2 : 4;
    const int64_t columns = t.dim() == 0 ? 1 : t.size(-1);
    if (__builtin_mul_overflow(t.numel() / columns, (columns + per_byte - 1) / per_byte, &bytes_needed) ||
        bytes_needed > static_cast<int64_t>(t.storage().nbytes()))
      fail("reaches past its storage of " + std::to_string(t.storage().nbytes()) + " bytes");
  }
  // The last element's index: offset + sum of (size - 1) * stride, each step checked for overflow.
  int64_t last = t.storage_offset();
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.stride(d) < 0) fail("has a negative stride");
    int64_t step = 0;
    if (__builtin_mul_overflow(t.size(d) - 1, t.stride(d), &step) || __builtin_add_overflow(last, step, &last))
      fail("reaches past any storage");
  }
  if (bytes_needed == 0 && (__builtin_add_overflow(last, int64_t{1}, &bytes_needed) ||
                            __builtin_mul_overflow(bytes_needed, static_cast<int64_t>(t.element_size()), &bytes_needed) ||
                            bytes_needed > static_cast<int64_t>(t.storage().nbytes())))
    fail("reaches past its storage of " + std::to_string(t.storage().nbytes()) + " bytes");
  // The storage's size is the file's word too: the unpickler gives it the element count the
  // pickle names, over the bytes of the zip record it read, whatever their number. A storage
  // from LibTorch's CPU allocator (every record is) is one malloc'd block, whose usable size
  // the C library knows.
  const c10::DataPtr& data = t.storage().data_ptr();
  if (!data.get()) fail("says its storage holds " + std::to_string(t.storage().nbytes()) + " bytes, but the file gave none");
  std::optional<size_t> record_size;
  if (checked_record_bytes)
    if (const auto found = checked_record_bytes->find(data.get()); found != checked_record_bytes->end())
      record_size = found->second;
  if (record_size) {
    if (t.storage().nbytes() > *record_size)
      fail("says its storage holds " + std::to_string(t.storage().nbytes()) + " bytes, but the file gave " +
           std::to_string(*record_size));
  } else if (data.get_context() == data.get() &&
             data.get_deleter() == c10::GetAllocator(c10::DeviceType::CPU)->raw_deleter()) {
    const size_t allocated = malloc_usable_size(data.get());
    if (t.storage().nbytes() > allocated)
      fail("says its storage holds " + std::to_string(t.storage().nbytes()) + " bytes, but the file gave " +
           std::to_string(allocated));
  }
  if (t.is_quantized() && (t.qscheme() == at::kPerChannelAffine || t.qscheme() == at::kPerChannelAffineFloatQParams)) {
    const int64_t axis = t.q_per_channel_axis();
    if (axis < 0 || axis >= t.dim()) fail("has its per-channel axis outside its dimensions");
    for (const at::Tensor& qparams : {t.q_per_channel_scales(), t.q_per_channel_zero_points()}) {
      require_within_storage(origin, qparams, what + "'s per-channel qparams");
      if (qparams.numel() != t.size(axis)) fail("has per-channel qparams for another number of channels");
    }
  }
}

// LibTorch's loaders run code of their own on what a file holds before the harness sees any of
// it: the TorchScript compiler on an archive's code/, the packed params' __setstate__, the
// unpickler's rebuild functions. Some malformed files crash them (a SIGSEGV in
// ScriptTypeParser::parseClassConstant on a mutated class constant, found by scripts/fuzz
// torchscript), and some make them allocate what a length field says (4 GB for a string the
// 1.5 KB file does not hold). So every load runs first in a forked child process, with its
// address space capped: this process loads only what the child loaded and checked; a file the
// child refused is refused with the child's message (through a pipe), and one it died on with
// the signal. The child restores the default handlers of the crash signals (else a sanitizer's
// or libFuzzer's handler would report LibTorch's crash as the harness's), holds LibTorch to one
// thread (OpenMP's pool does not survive fork) and leaves with _exit, running no destructors.
void load_in_child_first(const std::string& origin, const std::string& refusal, size_t file_bytes,
                         const std::function<void()>& load_and_check) {
  int channel[2];
  if (pipe(channel) != 0) return;  // no pipe or no process to spare: this process loads it unguarded
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child < 0) {
    close(channel[0]);
    close(channel[1]);
    return;
  }
  if (child == 0) {
    // The child ends with this process: one stuck in a lock another thread held at the fork
    // (seen under AddressSanitizer, whose allocator clang 14 does not lock around fork) would
    // otherwise outlive a fuzzer that timed out, holding its output pipe open.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    close(channel[0]);
    for (int crash : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) signal(crash, SIG_DFL);
    // Under the sanitizers a report in the child ends the child, and the parent refuses the file;
    // libFuzzer's death callback would also save the parent's current input as a crash of the
    // fuzz target. scripts/fuzz reads the child's reports from the log instead.
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(nullptr);
    at::set_num_threads(1);
    // Room for what the file can hold, decompressed and compiled: 16x its size, at least 2 GiB
    // beyond what the process maps already (not under AddressSanitizer: kAddressSanitizer).
    long pages = 0;
    if (std::FILE* statm = std::fopen("/proc/self/statm", "r")) {  // the process's mapped pages
      if (std::fscanf(statm, "%ld", &pages) != 1) pages = 0;
      std::fclose(statm);
    }
    if (!kAddressSanitizer && pages > 0) {
      const rlim_t budget = std::max<rlim_t>(rlim_t{2} << 30, rlim_t{16} * file_bytes);
      const rlimit cap{static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + budget, RLIM_INFINITY};
      setrlimit(RLIMIT_AS, &cap);
    }
    std::string message;
    try {
      load_and_check();
      _exit(0);
    } catch (const Error& e) {
      message = e.what();
    } catch (const std::bad_alloc&) {
      message = origin + ": " + refusal + ": loading it asks for more memory than such a file can need (over 2 GiB, "
                "or 16 times its size); a malformed or altered file";
    } catch (const std::exception& e) {
      message = origin + ": " + refusal + ": " + first_line(e.what());
    }
    for (size_t written = 0; written < message.size();) {
      const ssize_t n = write(channel[1], message.data() + written, message.size() - written);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    _exit(1);
  }
  close(channel[1]);
  std::string message;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(channel[0], buffer, sizeof buffer);
    if (n > 0) message.append(buffer, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  close(channel[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR) return;
  if (WIFSIGNALED(status))
    throw Error(origin + ": " + refusal + ": its loader crashed on it (" + strsignal(WTERMSIG(status)) +
                " in a child process that tried it first); a malformed or altered file");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && !message.empty()) throw Error(message);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(origin + ": " + refusal + ": its loader failed on it (exit status " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                " of a child process that tried it first; its report is above)");
}

// The same for every tensor in a value, as deep as it nests (tuples, lists, dicts).
void require_values_within_storage(const std::string& origin, const c10::IValue& v, int depth = 0) {
  if (depth > 64) throw Error(origin + ": values nested more than 64 deep");
  if (v.isTensor()) {
    require_within_storage(origin, v.toTensor(), "a tensor");
  } else if (v.isTuple()) {
    for (const c10::IValue& e : v.toTupleRef().elements()) require_values_within_storage(origin, e, depth + 1);
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) require_values_within_storage(origin, e, depth + 1);
  } else if (v.isGenericDict()) {
    for (const auto& entry : v.toGenericDict()) {
      require_values_within_storage(origin, entry.key(), depth + 1);
      require_values_within_storage(origin, entry.value(), depth + 1);
    }
  }
}

// An archive's parameters, buffers and other attributes come out of the same unpickler.
void check_attributes(const std::string& origin, const torch::jit::Module& loaded) {
  for (const torch::jit::Module& m : loaded.modules())
    for (const auto& attribute : m.named_attributes(/*recurse=*/false))
      require_values_within_storage(origin, attribute.value);
}

}  // namespace

torch::jit::Module load_archive(const std::string& path, Engine engine) {
  return load_archive_bytes(read_bytes(path, "module archive"), path, engine);
}

torch::jit::Module load_archive_bytes(const std::string& bytes, const std::string& origin, Engine engine) {
  require_zip(origin, bytes, "a TorchScript module written by torch.jit.save");
  // Loading runs the packed params' __setstate__, which prepacks for the current engine.
  libtorch::EngineGuard guard(libtorch_has_engine(engine) ? engine : libtorch_default_engine());
  const auto load = [&] {
    std::istringstream in(bytes);
    torch::jit::Module loaded;
    try {
      loaded = torch::jit::load(in);
    } catch (const std::bad_alloc&) {
      throw;  // the child's memory cap: load_in_child_first says so
    } catch (const std::exception& e) {
      // c10::Error from the zip and pickle readers; torch::jit::ErrorReport (a std::exception,
      // not a c10::Error) from compiling the archive's code/.
      throw Error(origin + ": a zip archive, but not a TorchScript module LibTorch can load (save it with "
                  "torch.jit.save(torch.jit.script(module), path)): " + first_line(e.what()));
    }
    check_attributes(origin, loaded);
    return loaded;
  };
  load_in_child_first(origin, "a zip archive, but not a TorchScript module LibTorch can load", bytes.size(),
                      [&] { load(); });
  return load();
}

c10::IValue load_pickle(const std::string& path, const char* what) {
  return load_pickle_bytes(read_bytes(path, what), path);
}

c10::IValue load_pickle_bytes(const std::string& bytes, const std::string& origin) {
  require_zip(origin, bytes, "a file written by torch.save");
  // torch::jit::pickle_load(bytes) would do the same through its VectorReader, which copies
  // whatever range the zip's directory names without checking it against the data's end: a
  // file whose central directory points past its end read past the buffer (found by
  // scripts/fuzz torch_save; LibTorch 1.13 and later). An istream adapter checks every read.
  const auto load = [&] {
    c10::IValue loaded;
    std::unordered_map<const void*, size_t> record_bytes;  // each storage's record, by data pointer
    try {
      std::istringstream in(bytes);
      caffe2::serialize::PyTorchStreamReader reader(&in);
      // What torch::jit::readArchiveAndTensors("data", "", "", ...) does, with each storage
      // record's size noted as it is read (require_within_storage holds the storage to it).
      const auto [pickle, pickle_size] = reader.getRecord("data.pkl");
      size_t pickle_read = 0;
      const auto read_pickle = [&, pickle_data = static_cast<const char*>(pickle.get()),
                                size = pickle_size](char* buffer, size_t n) -> size_t {
        n = std::min(size - pickle_read, n);
        std::memcpy(buffer, pickle_data + pickle_read, n);
        pickle_read += n;
        return n;
      };
      const auto read_record = [&](const std::string& name) {
        auto [record, size] = reader.getRecord("data/" + name);
        record_bytes[record.get()] = size;
        return std::move(record);
      };
      torch::jit::Unpickler unpickler(read_pickle, /*type_resolver=*/nullptr, /*obj_loader=*/nullptr, read_record,
                                      /*device=*/c10::nullopt);
      unpickler.set_version(reader.version());
      loaded = unpickler.parse_ivalue();
    } catch (const std::bad_alloc&) {
      throw;  // the child's memory cap: load_in_child_first says so
    } catch (const std::exception& e) {
      const std::string message = first_line(e.what());
      if (message.find("Unknown opcode for unpickling at 0x61") != std::string::npos)
        throw Error(origin + ": LibTorch 1.13 cannot read a one-element list (pickle opcode APPEND); save the tensor "
                    "itself or a tuple");
      if (message.find("PackedSequence") != std::string::npos)
        throw Error(origin + ": LibTorch cannot rebuild a PackedSequence; save tuple(packed) instead");
      throw Error(origin + ": not a torch.save file LibTorch can read: " + message);
    }
    struct RecordSizesInForce {  // for this check only, also when it throws
      explicit RecordSizesInForce(const std::unordered_map<const void*, size_t>* sizes) { checked_record_bytes = sizes; }
      ~RecordSizesInForce() { checked_record_bytes = nullptr; }
    } in_force(&record_bytes);
    require_values_within_storage(origin, loaded);
    return loaded;
  };
  load_in_child_first(origin, "not a torch.save file LibTorch can read", bytes.size(), [&] { load(); });
  return load();
}

std::vector<c10::IValue> forward_arguments(const std::string& inputs_path) {
  const c10::IValue loaded = load_pickle(inputs_path, "inputs file");
  if (loaded.isTuple()) return loaded.toTupleRef().elements().vec();
  if (loaded.isTensor()) return {loaded};
  if (loaded.isList()) return loaded.toListRef().vec();
  throw Error(inputs_path + ": the inputs must be a tensor or a tuple of forward's arguments, not " + loaded.tagKind());
}

// --- the module's type and attributes ---------------------------------------------------

// "__torch__.torch.ao.nn.quantized.modules.conv.___torch_mangle_1.Conv2d" ->
// "torch.ao.nn.quantized.modules.conv.Conv2d"
std::string python_type(const torch::jit::Module& m) {
  std::string name = m.type()->name()->qualifiedName();
  if (name.rfind("__torch__.", 0) == 0) name = name.substr(10);
  return std::regex_replace(name, std::regex(R"(___torch_mangle_\d+\.)"), "");
}

std::string class_name(const std::string& type) { return type.substr(type.rfind('.') + 1); }


namespace {

// --- one module kind at a time ----------------------------------------------------------

// Linear (dynamic or static): nnq(d).Linear keeps (weight, bias) in _packed_params._packed_params.
void read_linear(const Archive& a, const torch::jit::Module& m, bool dynamic, ModuleSpec& spec) {
  (*spec.config)["in_features"] = a.integer(m, "in_features");
  (*spec.config)["out_features"] = a.integer(m, "out_features");
  const c10::IValue holder = a.attr(m, "_packed_params");
  if (!holder.isModule()) a.fail(python_type(m) + "._packed_params is not a LinearPackedParams module");
  const torch::jit::Module packed_module = holder.toModule();
  a.require_qint8(packed_module, "dtype");
  auto [weight, bias] = a.unpack(a.attr(packed_module, "_packed_params"), python_type(m) + "._packed_params");
  spec.parameters.set("weight", weight);
  spec.parameters.set("bias", bias);
  if (!dynamic) {
    (*spec.config)["scale"] = a.number(m, "scale");
    (*spec.config)["zero_point"] = a.integer(m, "zero_point");
  }
}

// torch.ao.nn.quantized.LSTM: its constructor arguments; per cell (layers.{l}.layer_{fw,bw}.cell)
// igates and hgates as nnq.Linear (parameters "<cell>.igates.weight" and ".bias"; config
// "<cell>.igates.scale" and ".zero_point") and the QFunctional points' scale and zero point
// (config "<cell>.gates.scale", ...). Sigmoid and tanh carry none: PyTorch 1.13 fixes them.
void read_static_lstm(const Archive& a, const torch::jit::Module& m, ModuleSpec& spec) {
  json& c = *spec.config;
  for (const char* key : {"input_size", "hidden_size", "num_layers"}) c[key] = a.integer(m, key);
  for (const char* key : {"bias", "batch_first", "bidirectional"}) c[key] = a.flag(m, key);
  RnnOptions o;
  o.input_size = c["input_size"];
  o.hidden_size = c["hidden_size"];
  o.num_layers = c["num_layers"];
  o.bidirectional = c["bidirectional"];
  const auto child = [&](const torch::jit::Module& parent, const std::string& name) {
    const c10::IValue v = a.attr(parent, name);
    if (!v.isModule()) a.fail(python_type(parent) + "." + name + " is not a module");
    return v.toModule();
  };
  const torch::jit::Module layers = child(m, "layers");
  for (int64_t set = 0; set < o.parameter_sets(); ++set) {
    const std::string prefix = static_lstm_cell_prefix(o, set);
    const torch::jit::Module cell =
        child(child(child(layers, std::to_string(set / o.directions())), set % o.directions() ? "layer_bw" : "layer_fw"),
              "cell");
    for (const char* name : {"igates", "hgates"}) {
      const torch::jit::Module linear = child(cell, name);
      const torch::jit::Module packed = child(linear, "_packed_params");
      a.require_qint8(packed, "dtype");
      auto [weight, bias] = a.unpack(a.attr(packed, "_packed_params"), prefix + name + "._packed_params");
      spec.parameters.set(prefix + name + ".weight", weight);
      spec.parameters.set(prefix + name + ".bias", bias);
      c[prefix + name + ".scale"] = a.number(linear, "scale");
      c[prefix + name + ".zero_point"] = a.integer(linear, "zero_point");
    }
    for (const char* name : {"gates", "fgate_cx", "igate_cgate", "fgate_cx_igate_cgate", "ogate_cy"}) {
      const torch::jit::Module functional = child(cell, name);
      c[prefix + name + ".scale"] = a.number(functional, "scale");
      c[prefix + name + ".zero_point"] = a.integer(functional, "zero_point");
    }
  }
}

void read_conv(const Archive& a, const torch::jit::Module& m, ModuleSpec& spec) {
  json& c = *spec.config;
  for (const char* key : {"in_channels", "out_channels", "groups"}) c[key] = a.integer(m, key);
  for (const char* key : {"kernel_size", "stride", "padding", "dilation", "output_padding"}) c[key] = a.integers(m, key);
  c["transposed"] = a.flag(m, "transposed");
  const c10::IValue mode = a.attr(m, "padding_mode");
  if (!mode.isString()) a.fail(python_type(m) + ".padding_mode is not a string");
  c["padding_mode"] = mode.toStringRef();
  c["scale"] = a.number(m, "scale");
  c["zero_point"] = a.integer(m, "zero_point");
  auto [weight, bias] = a.unpack(a.attr(m, "_packed_params"), python_type(m) + "._packed_params");
  // ATen runs a 1-d convolution as a 2-d one of height 1, and unpacks its weight so:
  // (out, in / groups, 1, k) becomes the module's (out, in / groups, k).
  const size_t dims = c["kernel_size"].size();
  if (dims == 1 && weight.sizes.size() == 4 && weight.sizes[2] == 1) weight.sizes.erase(weight.sizes.begin() + 2);
  spec.parameters.set("weight", weight);
  spec.parameters.set("bias", bias);
}

// nnqd.LSTM / GRU: one CellParams per (layer, direction) in _all_weight_values.<i>.param,
// whose __getstate__ is ("quantized_dynamic", tensors, doubles, [reduce_range], [packed
// w_ih, packed w_hh]) (ATen's QuantizedCellParamsDynamic).
void read_rnn(const Archive& a, const torch::jit::Module& m, RnnMode mode, ModuleSpec& spec) {
  json& c = *spec.config;
  c["input_size"] = a.integer(m, "input_size");
  c["hidden_size"] = a.integer(m, "hidden_size");
  c["num_layers"] = a.integer(m, "num_layers");
  c["bias"] = a.flag(m, "bias");
  c["batch_first"] = a.flag(m, "batch_first");
  c["dropout"] = a.number(m, "dropout");
  c["bidirectional"] = a.flag(m, "bidirectional");
  a.require_qint8(m, "dtype");
  RnnOptions o;
  o.mode = mode;
  o.num_layers = c["num_layers"];
  o.bidirectional = c["bidirectional"];
  const c10::IValue list = a.attr(m, "_all_weight_values");
  if (!list.isModule()) a.fail(python_type(m) + "._all_weight_values is not a ModuleList");
  const torch::jit::Module cells = list.toModule();
  std::optional<bool> reduce_range;
  for (int64_t set = 0; set < o.parameter_sets(); ++set) {
    const std::string where = python_type(m) + "._all_weight_values." + std::to_string(set);
    const c10::IValue child = a.attr(cells, std::to_string(set));
    if (!child.isModule()) a.fail(where + " is not a module");
    const c10::IValue param = a.attr(child.toModule(), "param");
    std::vector<c10::IValue> state;
    try {
      state = libtorch::call_method(param, "__getstate__");
    } catch (const Error& e) {
      a.fail(where + ".param: " + e.what());
    }
    const auto& fields = state.at(0).toTupleRef().elements();
    if (fields.size() != 5 || !fields[0].isString() || fields[0].toStringRef() != "quantized_dynamic")
      a.fail(where + ".param is not a qint8 dynamic cell (" +
             (fields.empty() || !fields[0].isString() ? std::string("?") : fields[0].toStringRef()) + ")");
    const auto longs = fields[3].toIntVector();
    if (!longs.empty()) reduce_range = longs[0] != 0;
    const auto packed = fields[4].toList();
    if (packed.size() != 2) a.fail(where + ".param does not hold two packed weights");
    const RnnParameterNames names = rnn_parameter_names(o, set);
    auto [w_ih, b_ih] = a.unpack(packed.get(0), where + " (w_ih)");
    auto [w_hh, b_hh] = a.unpack(packed.get(1), where + " (w_hh)");
    spec.parameters.set(names.w_ih, w_ih);
    spec.parameters.set(names.w_hh, w_hh);
    spec.parameters.set(names.b_ih, b_ih);
    spec.parameters.set(names.b_hh, b_hh);
  }
  if (reduce_range) c["reduce_range"] = *reduce_range;
}

// nnqd.RNNCell / LSTMCell / GRUCell: (weight, bias) in _packed_weight_ih/_hh; sizes from the
// weights. The biases are the packed ones, which ATen's dynamic cells apply and nnqd's
// get_bias() returns: the modules' bias_ih/bias_hh attributes keep their constructor's
// random values after from_float (seen in PyTorch 1.13 archives), so they are not read.
void read_cell(const Archive& a, const torch::jit::Module& m, RnnMode mode, ModuleSpec& spec) {
  a.require_qint8(m, "weight_dtype");
  auto [w_ih, b_ih] = a.unpack(a.attr(m, "_packed_weight_ih"), python_type(m) + "._packed_weight_ih");
  auto [w_hh, b_hh] = a.unpack(a.attr(m, "_packed_weight_hh"), python_type(m) + "._packed_weight_hh");
  json& c = *spec.config;
  c["input_size"] = w_ih.sizes.at(1);
  c["hidden_size"] = w_hh.sizes.at(1);
  c["bias"] = !b_ih.is<NoneValue>();
  if (mode == RnnMode::RNN) {
    const c10::IValue nonlinearity = a.attr(m, "nonlinearity");
    if (!nonlinearity.isString()) a.fail(python_type(m) + ".nonlinearity is not a string");
    c["nonlinearity"] = nonlinearity.toStringRef();
  }
  spec.parameters.set("weight_ih", w_ih);
  spec.parameters.set("weight_hh", w_hh);
  spec.parameters.set("bias_ih", b_ih);
  spec.parameters.set("bias_hh", b_hh);
}

// The activations, Dropout and Softmax: the op's options and, where the module holds them,
// its output scale and zero point (nnq.LeakyReLU's buffers, nnq.Hardswish's, nnq.ELU's and
// nnq.Softmax's attributes).
void read_activation(const Archive& a, const torch::jit::Module& m, const std::string& name, ModuleSpec& spec) {
  json& c = *spec.config;
  if (name == "LeakyReLU") c["negative_slope"] = a.number(m, "negative_slope");
  if (name == "ELU") c["alpha"] = a.number(m, "alpha");
  if (name == "Dropout") c["p"] = a.number(m, "p");
  if (name == "Softmax") c["dim"] = a.optional_integer(m, "dim");
  if (name == "LeakyReLU" || name == "Hardswish" || name == "ELU" || name == "Softmax") {
    c["scale"] = a.number(m, "scale");
    c["zero_point"] = a.integral(m, "zero_point");
  }
}

void read_pooling(const Archive& a, const torch::jit::Module& m, const std::string& name, ModuleSpec& spec) {
  json& c = *spec.config;
  if (name == "AdaptiveAvgPool2d") {
    c["output_size"] = a.size_argument(m, "output_size");
    return;
  }
  for (const char* key : {"kernel_size", "stride", "padding"}) c[key] = a.size_argument(m, key);
  c["ceil_mode"] = a.flag(m, "ceil_mode");
  if (name == "MaxPool2d") {
    c["dilation"] = a.size_argument(m, "dilation");
    if (a.flag(m, "return_indices")) a.fail(python_type(m) + " returns indices, which quantized max pooling does not");
  } else {
    c["count_include_pad"] = a.flag(m, "count_include_pad");
    c["divisor_override"] = a.optional_integer(m, "divisor_override");
  }
}

// nnq.BatchNorm{2,3}d and nniq.BNReLU{2,3}d: num_features, eps, the float weight, bias and
// running statistics, and the output scale and zero point buffers.
void read_batch_norm(const Archive& a, const torch::jit::Module& m, ModuleSpec& spec) {
  // PyTorch 1.13's from_float assigns calculate_qparams()'s one-element tensors of shape [1]
  // to these 0-dim buffers; eager Python takes them, a scripted forward does not.
  for (const char* key : {"scale", "zero_point"}) {
    const c10::IValue v = a.attr(m, key);
    if (v.isTensor() && v.toTensor().dim() != 0)
      a.fail(python_type(m) + "." + key + " has shape [1], as PyTorch 1.13's convert leaves it, and its scripted "
             "forward fails (\"Cannot input a tensor of dimension other than 0 as a scalar argument\"): before "
             "torch.jit.script, make both buffers 0-dim (m.scale = m.scale.reshape(()); m.zero_point = "
             "m.zero_point.reshape(()))");
  }
  json& c = *spec.config;
  c["num_features"] = a.integer(m, "num_features");
  c["eps"] = a.number(m, "eps");
  c["scale"] = a.number(m, "scale");
  c["zero_point"] = a.integral(m, "zero_point");
  for (const char* key : {"weight", "bias", "running_mean", "running_var"})
    spec.parameters.set(key, a.float_tensor_attr(m, key));
}

// nnq.LayerNorm, GroupNorm, InstanceNorm{1,2,3}d: their torch.nn arguments, the float weight
// and bias when affine, and the output scale and zero point buffers.
void read_normalization(const Archive& a, const torch::jit::Module& m, const std::string& name, ModuleSpec& spec) {
  json& c = *spec.config;
  c["eps"] = a.number(m, "eps");
  c["scale"] = a.number(m, "scale");
  c["zero_point"] = a.integral(m, "zero_point");
  bool affine;
  if (name == "LayerNorm") {
    c["normalized_shape"] = a.integers(m, "normalized_shape");
    affine = a.flag(m, "elementwise_affine");
  } else if (name == "GroupNorm") {
    c["num_groups"] = a.integer(m, "num_groups");
    c["num_channels"] = a.integer(m, "num_channels");
    affine = a.flag(m, "affine");
  } else {
    c["num_features"] = a.integer(m, "num_features");
    // PyTorch 1.13's nnq.InstanceNorm{n}d.from_float passes (eps, affine) where its constructor
    // takes (eps, momentum, affine): the converted module says affine=False (and momentum=True)
    // yet holds the float module's weight and bias, and its forward uses them. What it holds
    // decides.
    affine = a.attr(m, "weight").isTensor();
    if (a.flag(m, "track_running_stats"))
      a.fail(python_type(m) + " tracks running statistics, which PyTorch 1.13's quantized InstanceNorm ignores (it "
             "normalizes by instance statistics); the harness models track_running_stats=False only");
  }
  c["affine"] = affine;
  if (affine)
    for (const char* key : {"weight", "bias"}) spec.parameters.set(key, a.float_tensor_attr(m, key));
}

// nnq.Embedding / EmbeddingBag: their sizes (and a bag's mode and include_last_offset), and
// the weight, unpacked from the packed params by quantized::embedding_bag_unpack.
void read_embedding(const Archive& a, const torch::jit::Module& m, bool bag, ModuleSpec& spec) {
  json& c = *spec.config;
  c["num_embeddings"] = a.integer(m, "num_embeddings");
  c["embedding_dim"] = a.integer(m, "embedding_dim");
  if (bag) {
    const c10::IValue mode = a.attr(m, "mode");
    if (!mode.isString()) a.fail(python_type(m) + ".mode is not a string");
    c["mode"] = mode.toStringRef();
    c["include_last_offset"] = a.flag(m, "include_last_offset");
    c["pruned_weights"] = a.flag(m, "pruned_weights");
  }
  const c10::IValue holder = a.attr(m, "_packed_params");
  if (!holder.isModule()) a.fail(python_type(m) + "._packed_params is not an EmbeddingPackedParams module");
  const c10::IValue packed = a.attr(holder.toModule(), "_packed_weight");
  QTensor weight;
  try {
    weight = from_aten_quantized(libtorch::call_op("quantized::embedding_bag_unpack", "", {packed}).at(0).toTensor());
  } catch (const Error& e) {
    a.fail(python_type(m) + "._packed_params: unpack failed: " + e.what());
  }
  // PyTorch 1.13's nnq.Embedding.from_float builds a quint8 module around a 4-bit weight.
  const int64_t dtype = a.integer(m, "dtype");
  if (dtype != static_cast<int64_t>(weight.qparams.dtype == DType::QUInt8 ? c10::ScalarType::QUInt8
                                                                           : c10::ScalarType::QUInt4x2))
    a.fail(python_type(m) + " says dtype " + std::string(c10::toString(static_cast<c10::ScalarType>(dtype))) +
           " but packs a " + to_string(weight.qparams.dtype) + " weight (PyTorch 1.13's nnq.Embedding.from_float "
           "drops a 4-bit qconfig's dtype, and the module then runs the 8-bit kernel on 4-bit rows): build it with "
           "nnq.Embedding(..., dtype=torch.quint4x2) and set_weight");
  // A pruned module's rows are the kept ones, whatever num_embeddings it was built with; its
  // calls' indices range over the mapping.
  if (c.value("pruned_weights", false)) c["num_embeddings"] = weight.sizes.at(0);
  spec.parameters.set("weight", weight);
}

// nnq.Quantize: its scale and zero_point buffers and its dtype (a ScalarType number).
void read_quantize(const Archive& a, const torch::jit::Module& m, ModuleSpec& spec) {
  json& c = *spec.config;
  c["scale"] = a.number(m, "scale");
  c["zero_point"] = a.integral(m, "zero_point");
  const int64_t dtype = a.integer(m, "dtype");
  if (dtype != static_cast<int64_t>(c10::ScalarType::QUInt8))
    a.fail(python_type(m) + " quantizes to " + std::string(c10::toString(static_cast<c10::ScalarType>(dtype))) +
           "; fixtures carry quint8 activations");
}

// Float torch.nn modules that PyTorch 1.13's convert leaves in place to run on quantized
// tensors (ReLU, Sigmoid, pooling, ...): kinds whose integer implementation has the float
// module's own name.
bool float_module_kind(const ModuleKind& kind) {
  const ImplementationEntry* integer = kind.find(Implementation::Quantized);
  return kind.family == Family::Static && integer && integer->repr_name == kind.float_name;
}

}  // namespace

const ModuleKind* registered_kind(const std::string& type) {
  const bool quantized = type.find(".quantized.") != std::string::npos;
  const bool dynamic = type.find(".quantized.dynamic.") != std::string::npos;
  const bool torch_nn = type.rfind("torch.nn.modules.", 0) == 0;
  const std::string key = std::string(dynamic ? "dynamic." : "static.") + class_name(type);
  for (const ModuleKind& kind : registry())
    if (kind.key == key && (quantized || (torch_nn && float_module_kind(kind)))) return &kind;
  // nnq.Embedding and nnq.EmbeddingBag: weight-only.
  for (const ModuleKind& kind : registry())
    if (quantized && kind.family == Family::WeightOnly && kind.key == "weight_only." + class_name(type)) return &kind;
  return nullptr;
}

const ModuleKind& kind_of(const Archive& a, const std::string& type) {
  if (const ModuleKind* kind = registered_kind(type)) return *kind;
  std::string supported;
  for (const ModuleKind& kind : registry()) supported += (supported.empty() ? "" : ", ") + kind.key;
  a.fail("unsupported module kind " + type + " (registered kinds: " + supported + ")");
}

ModuleSpec read_module(const Archive& a, const torch::jit::Module& m) {
  const std::string type = python_type(m);
  ModuleSpec spec;
  spec.kind = kind_of(a, type).key;
  spec.config = std::make_shared<json>(json::object());
  const std::string name = class_name(type);
  const bool dynamic = spec.kind.rfind("dynamic.", 0) == 0;
  const std::vector<std::string> activations{"ReLU", "ReLU6", "LeakyReLU", "Hardswish", "ELU",
                                             "Sigmoid", "Hardsigmoid", "Tanh", "Dropout", "Softmax"};
  if (std::find(activations.begin(), activations.end(), name) != activations.end()) read_activation(a, m, name, spec);
  else if (name == "MaxPool2d" || name == "AvgPool2d" || name == "AdaptiveAvgPool2d") read_pooling(a, m, name, spec);
  else if (name == "Quantize") read_quantize(a, m, spec);
  else if (name == "BatchNorm2d" || name == "BatchNorm3d" || name == "BNReLU2d" || name == "BNReLU3d")
    read_batch_norm(a, m, spec);
  else if (name == "LayerNorm" || name == "GroupNorm" || name.rfind("InstanceNorm", 0) == 0)
    read_normalization(a, m, name, spec);
  else if (name == "Embedding" || name == "EmbeddingBag") read_embedding(a, m, name == "EmbeddingBag", spec);
  else if (name == "DeQuantize") return spec;
  else if (name == "Linear" || name == "LinearReLU") read_linear(a, m, dynamic, spec);
  else if (name == "LSTM" && !dynamic) read_static_lstm(a, m, spec);
  else if (name == "LSTM") read_rnn(a, m, RnnMode::LSTM, spec);
  else if (name == "GRU") read_rnn(a, m, RnnMode::GRU, spec);
  else if (name == "RNNCell") read_cell(a, m, RnnMode::RNN, spec);
  else if (name == "LSTMCell") read_cell(a, m, RnnMode::LSTM, spec);
  else if (name == "GRUCell") read_cell(a, m, RnnMode::GRU, spec);
  else read_conv(a, m, spec);
  return spec;
}

ModuleSpec functional_spec(const Archive& a, const torch::jit::Module& functional, const std::string& method,
                           std::optional<double> scalar, std::optional<int64_t> dim) {
  ModuleSpec spec;
  spec.kind = "static." + method;
  spec.config = std::make_shared<json>(json::object());
  json& c = *spec.config;
  c["scale"] = a.number(functional, "scale");
  c["zero_point"] = a.integer(functional, "zero_point");
  if (scalar) c["scalar"] = *scalar;
  if (dim) c["dim"] = *dim;
  return spec;
}

IntTensor integer_tensor(const std::string& path, const at::Tensor& t, const std::string& what) {
  if (t.is_quantized() || (t.scalar_type() != at::kLong && t.scalar_type() != at::kInt))
    throw Error(path + ": " + what + " must be an int64 or int32 tensor, not " + std::string(c10::toString(t.scalar_type())));
  const at::Tensor values = t.to(at::kLong).contiguous();
  return IntTensor{t.sizes().vec(), std::vector<int64_t>(values.data_ptr<int64_t>(), values.data_ptr<int64_t>() + values.numel()),
                   t.scalar_type() == at::kInt};
}

Tensor float_tensor(const std::string& path, const at::Tensor& t, const std::string& what) {
  if (t.is_quantized() || t.scalar_type() != at::kFloat)
    throw Error(path + ": " + what + " must be a float32 tensor, not " + std::string(c10::toString(t.scalar_type())));
  return from_aten(t);
}

std::vector<int64_t> index_tensor(const std::string& path, const c10::IValue& v, const std::string& what) {
  if (v.isNone()) return {};
  if (!v.isTensor() || v.toTensor().scalar_type() != at::kLong)
    throw Error(path + ": " + what + " of the packed input must be an int64 tensor or None");
  const at::Tensor t = v.toTensor().contiguous();
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

// --- running LibTorch ---------------------------------------------------------------------

// The line of a TorchScript interpreter error that says what went wrong: its last
// "...Error: message" line (the first line is only "The following operation failed...").
std::string script_error(const std::string& message) {
  std::string found = first_line(message);
  size_t start = 0;
  while (start < message.size()) {
    const size_t end = std::min(message.find('\n', start), message.size());
    const std::string line = message.substr(start, end - start);
    const size_t at = line.find("Error: ");
    if (at != std::string::npos && line.find("Exception raised from") == std::string::npos) found = line.substr(at + 7);
    start = end + 1;
  }
  return found;
}

c10::IValue call(const std::string& path, torch::jit::Module& m, const std::string& method,
                 std::vector<c10::IValue> args) {
  try {
    return m.get_method(method)(std::move(args));
  } catch (const std::exception& e) {
    throw Error(path + ": the inputs do not fit the module: LibTorch says: " + script_error(e.what()));
  }
}

Value output_value(const std::string& origin, const c10::IValue& v) {
  if (v.isTensor()) {
    const at::Tensor t = v.toTensor();
    if (t.is_quantized()) return from_aten_quantized(t);
    return float_tensor(origin, t, "the output");
  }
  if (v.isTuple() && v.toTupleRef().elements().size() == 4) {  // a PackedSequence
    const auto& e = v.toTupleRef().elements();
    return PackedSequence{float_tensor(origin, e[0].toTensor(), "the packed output's data"),
                          index_tensor(origin, e[1], "batch_sizes"), index_tensor(origin, e[2], "sorted_indices"),
                          index_tensor(origin, e[3], "unsorted_indices")};
  }
  throw Error(origin + ": the output is not a tensor or a packed sequence but " + v.tagKind());
}

// The module's result as the harness's modules give it: output, h_n, c_n (an LSTMCell's
// output is its h; see core/float/rnn.cc finish_rnn_call).
ModuleOutput module_output(const std::string& origin, const ModuleKind& kind, const c10::IValue& result) {
  std::vector<c10::IValue> flat;
  std::function<void(const c10::IValue&, int)> walk = [&](const c10::IValue& v, int depth) {
    const bool packed = v.isTuple() && depth > 0 && v.toTupleRef().elements().size() == 4;
    if (v.isTuple() && !packed) for (const auto& e : v.toTupleRef().elements()) walk(e, depth + 1);
    else if (v.isList()) for (const auto& e : v.toListRef()) walk(e, depth + 1);
    else flat.push_back(v);
  };
  walk(result, 0);
  if (kind.key == "static.LSTM") {  // (output, (h_n, c_n)), all quantized
    if (flat.size() != 3) throw Error(origin + ": static.LSTM gives 3 tensors (output, h_n, c_n), found " +
                                      std::to_string(flat.size()));
    std::vector<QTensor> q;
    for (const c10::IValue& v : flat) {
      if (!v.isTensor() || !v.toTensor().is_quantized())
        throw Error(origin + ": static.LSTM gives quantized tensors (output, h_n, c_n)");
      q.push_back(from_aten_quantized(v.toTensor()));
    }
    return {q[0], std::nullopt, QuantizedHiddenState{q[1], q[2]}};
  }
  const bool lstm_cell = kind.key == "dynamic.LSTMCell";
  const bool sequence = kind.key == "dynamic.LSTM" || kind.key == "dynamic.GRU";
  const size_t wanted = lstm_cell ? 2 : sequence ? (kind.key == "dynamic.LSTM" ? 3 : 2) : 1;
  if (flat.size() != wanted)
    throw Error(origin + ": " + kind.key + " gives " + std::to_string(wanted) + " tensors (output" +
                (sequence ? kind.key == "dynamic.LSTM" ? ", h_n, c_n" : ", h_n" : lstm_cell ? "h, c" : "") + "), found " +
                std::to_string(flat.size()));
  if (lstm_cell) {
    const Tensor h = float_tensor(origin, flat[0].toTensor(), "h");
    return {h, HiddenState{h, float_tensor(origin, flat[1].toTensor(), "c")}};
  }
  ModuleOutput out{output_value(origin, flat[0]), std::nullopt};
  if (sequence) {
    out.hidden = HiddenState{float_tensor(origin, flat[1].toTensor(), "h_n"), std::nullopt};
    if (flat.size() == 3) out.hidden->c = float_tensor(origin, flat[2].toTensor(), "c_n");
  }
  return out;
}

bool bit_identical(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() &&
         (a.numel() == 0 || std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(),
                                        a.numel() * a.element_size()) == 0);
}


// --- one layer's call inside a model ----------------------------------------------------

namespace {

QTensor quantized_argument(const std::string& where, const c10::IValue& v, const std::string& what) {
  if (!v.isTensor() || !v.toTensor().is_quantized() || v.toTensor().scalar_type() != at::kQUInt8 ||
      v.toTensor().qscheme() != at::kPerTensorAffine)
    throw Error(where + ": " + what + " is not a quint8 per-tensor quantized tensor");
  return from_aten_quantized(v.toTensor());
}

Tensor float_argument(const std::string& where, const c10::IValue& v, const std::string& what) {
  if (!v.isTensor()) throw Error(where + ": " + what + " is not a tensor but " + v.tagKind());
  return float_tensor(where, v.toTensor(), what);
}

std::optional<HiddenState> hidden_argument(const std::string& where, const c10::IValue& hx, bool lstm) {
  if (hx.isNone()) return std::nullopt;
  if (lstm) {
    if (!hx.isTuple() || hx.toTupleRef().elements().size() != 2)
      throw Error(where + ": an LSTM's hidden state is (h0, c0)");
    const auto& e = hx.toTupleRef().elements();
    return HiddenState{float_argument(where, e[0], "h0"), float_argument(where, e[1], "c0")};
  }
  return HiddenState{float_argument(where, hx, "h0"), std::nullopt};
}

}  // namespace

ModuleInput layer_input(const std::string& where, const ModuleKind& kind, const std::string& method,
                        const std::vector<c10::IValue>& args, ModuleSpec* spec) {
  const auto arg = [&](size_t i) -> const c10::IValue& {
    static const c10::IValue none;
    return i < args.size() ? args[i] : none;
  };
  if (args.empty()) throw Error(where + ": the call has no arguments");
  ModuleInput in;
  const bool qfunctional = method == "add" || method == "add_relu" || method == "mul" || method == "matmul" ||
                           method == "cat" || method == "add_scalar" || method == "mul_scalar";
  if (qfunctional) {
    if (method == "cat") {
      if (!arg(0).isTensorList() && !arg(0).isList()) throw Error(where + ": cat's first argument is not a list");
      const auto list = arg(0).toListRef();
      if (list.empty()) throw Error(where + ": cat of an empty list");
      in.input = quantized_argument(where, list[0], "cat's first tensor");
      for (size_t i = 1; i < list.size(); ++i)
        in.others.push_back(quantized_argument(where, list[i], "cat's tensor " + std::to_string(i)));
      if (spec) (*spec->config)["dim"] = arg(1).toInt();
    } else if (method == "add_scalar" || method == "mul_scalar") {
      in.input = quantized_argument(where, arg(0), "the operand");
      if (spec) (*spec->config)["scalar"] = arg(1).isDouble() ? arg(1).toDouble() : static_cast<double>(arg(1).toInt());
    } else {
      in.input = quantized_argument(where, arg(0), "the first operand");
      in.others.push_back(quantized_argument(where, arg(1), "the second operand"));
    }
    return in;
  }
  if (kind.family == Family::WeightOnly) {
    if (!arg(0).isTensor()) throw Error(where + ": the indices are not a tensor");
    in.input = integer_tensor(where, arg(0).toTensor(), "the indices");
    if (kind.key == "weight_only.EmbeddingBag") {
      // offsets (None before a mapping: an absent operand), per_sample_weights, the mapping.
      const bool mapped = !arg(3).isNone();
      if (!arg(1).isNone()) in.others.push_back(integer_tensor(where, arg(1).toTensor(), "the offsets"));
      else if (mapped) in.others.push_back(AbsentOperand{});
      if (!arg(2).isNone()) in.others.push_back(float_argument(where, arg(2), "per_sample_weights"));
      if (mapped) {
        if (!arg(3).isTensor()) throw Error(where + ": compressed_indices_mapping is not a tensor");
        in.others.push_back(integer_tensor(where, arg(3).toTensor(), "compressed_indices_mapping"));
      }
    }
    return in;
  }
  if (kind.key == "static.Quantize" || kind.family == Family::Dynamic) {
    if (arg(0).isTuple()) {  // a PackedSequence, as TorchScript passes it
      const auto& e = arg(0).toTupleRef().elements();
      if (e.size() != 4) throw Error(where + ": a packed input is (data, batch_sizes, sorted_indices, unsorted_indices)");
      in.input = PackedSequence{float_argument(where, e[0], "the packed data"), index_tensor(where, e[1], "batch_sizes"),
                                index_tensor(where, e[2], "sorted_indices"), index_tensor(where, e[3], "unsorted_indices")};
    } else {
      in.input = float_argument(where, arg(0), "the input");
    }
    if (kind.structure == Structure::Recurrent)
      in.hidden = hidden_argument(where, arg(1), kind.key == "dynamic.LSTM" || kind.key == "dynamic.LSTMCell");
    else if (args.size() > 1)
      throw Error(where + ": " + kind.key + " is called with " + std::to_string(args.size()) + " arguments");
    return in;
  }
  // Static kinds: one quantized tensor (a static LSTM from PyTorch's zero state).
  in.input = quantized_argument(where, arg(0), "the input");
  if (kind.key == "static.LSTM" && !arg(1).isNone())
    throw Error(where + ": a static LSTM called with an initial (h0, c0): the harness models the zero state only");
  if (kind.key != "static.LSTM" && args.size() > 1)
    throw Error(where + ": " + kind.key + " is called with " + std::to_string(args.size()) + " arguments");
  return in;
}

namespace {

void collect_tensors(const c10::IValue& v, std::vector<at::Tensor>& out) {
  if (v.isTensor()) out.push_back(v.toTensor());
  else if (v.isTuple()) for (const auto& e : v.toTupleRef().elements()) collect_tensors(e, out);
  else if (v.isList()) for (const auto& e : v.toListRef()) collect_tensors(e, out);
}

}  // namespace

std::vector<at::Tensor> result_tensors(const c10::IValue& result) {
  std::vector<at::Tensor> out;
  collect_tensors(result, out);
  return out;
}

std::optional<at::Tensor> run_on_channels_last_bytes(const Module& module, const std::vector<c10::IValue>& args,
                                                     bool output_channels_last) {
  const auto* takes_bytes = dynamic_cast<const ChannelsLastBytesForward*>(&module);
  if (!takes_bytes || !output_channels_last || module.forward_pre_hook_count() > 0 || module.forward_hook_count() > 0 ||
      args.empty())
    return std::nullopt;
  std::vector<U8ChannelsLast> operands;
  for (const c10::IValue& arg : args) {
    std::optional<U8ChannelsLast> bytes = arg.isTensor() ? libtorch::channels_last_bytes(arg.toTensor()) : std::nullopt;
    if (!bytes) return std::nullopt;
    operands.push_back(std::move(*bytes));
  }
  const std::optional<U8ChannelsLast> output = takes_bytes->channels_last_output(operands);
  if (!output) return std::nullopt;
  at::Tensor y = libtorch::empty_channels_last(*output);
  takes_bytes->forward_channels_last(operands, static_cast<uint8_t*>(y.data_ptr()));
  return y;
}

c10::IValue result_value(const std::string& where, const ModuleKind& kind, const ModuleOutput& ours,
                         const ModuleOutput& recorded) {
  const auto tensor = [&](const Value& mine, const Value& like) -> c10::IValue {
    if (const auto* q = std::get_if<QTensor>(&mine)) {
      // Held in memory as LibTorch held its output, for the kernels after it that choose by it.
      const auto* r = std::get_if<QTensor>(&like);
      return libtorch::to_aten(*q, r ? r->channels_last : q->channels_last);
    }
    const auto* f = std::get_if<Tensor>(&mine);
    if (!f) throw Error(where + ": the implementation's output is not a tensor");
    if (const auto* q = std::get_if<QTensor>(&like)) {
      if (q->qparams.per_channel()) throw Error(where + ": LibTorch's output is quantized per channel");
      const at::Tensor y = at::quantize_per_tensor(libtorch::to_aten(*f), q->qparams.scales.at(0),
                                                   static_cast<int64_t>(q->qparams.zero_points.at(0)), at::kQUInt8);
      return q->channels_last ? y.contiguous(at::MemoryFormat::ChannelsLast) : y;
    }
    return libtorch::to_aten(*f);
  };
  if (std::holds_alternative<PackedSequence>(ours.output))
    throw Error(where + ": a packed output inside a model is not replayed yet");
  const c10::IValue output = tensor(ours.output, recorded.output);
  if (ours.quantized_hidden) {  // a static LSTM: (output, (h_n, c_n))
    return c10::ivalue::Tuple::create({output, c10::ivalue::Tuple::create({libtorch::to_aten(ours.quantized_hidden->h),
                                                                          libtorch::to_aten(ours.quantized_hidden->c)})});
  }
  if (kind.key == "dynamic.LSTMCell") {
    if (!ours.hidden || !ours.hidden->c) throw Error(where + ": an LSTMCell gives (h, c)");
    return c10::ivalue::Tuple::create({libtorch::to_aten(ours.hidden->h), libtorch::to_aten(*ours.hidden->c)});
  }
  if (kind.key == "dynamic.LSTM" || kind.key == "dynamic.GRU") {
    if (!ours.hidden) throw Error(where + ": " + kind.key + " gives its final hidden state");
    const c10::IValue h = libtorch::to_aten(ours.hidden->h);
    if (!ours.hidden->c) return c10::ivalue::Tuple::create({output, h});
    return c10::ivalue::Tuple::create({output, c10::ivalue::Tuple::create({h, libtorch::to_aten(*ours.hidden->c)})});
  }
  return output;
}

}  // namespace qconform
