#pragma once
// `qconform check` on a model record (core/model_record.h): every covered layer replayed on
// the input it received inside the model, like any fixture (oracles/replay.h); then the
// model run twice more in LibTorch with every covered layer replaced — once by the integer
// implementation on the recorded engine, once by the reference — so that each layer meets
// the inputs the layers before it made: how the error grows through the network. Each
// chained layer's output is judged against the output LibTorch gave for it in the recording,
// under the layer's own tolerance row: its error in output quanta, as a fraction of its
// bound, and the first layer where the chain leaves its bound.
#include <optional>
#include <string>
#include <vector>

#include "core/model_record.h"
#include "oracles/replay.h"

namespace qconform {

// One layer's place in a chained run.
struct ChainedLayer {
  bool ran = false;
  double max_abs_error = 0;     // against the recorded LibTorch output of the layer
  // In output quanta: a quantized output is compared as its integers; a dequantized one
  // (DeQuantize) is divided by its input's scale; a float one (dynamic kinds) is left as is.
  double error_quanta = 0;
  double bound_fraction = 0;    // max over elements of |diff| / bound (inf when the bound is 0 and it differs)
  bool within_bound = true;
  int64_t exact = 0, total = 0;
  std::string tolerance_row;
};

struct LayerReplay {
  ModelLayer layer;
  std::optional<FixtureVerdict> isolated;  // covered layers: the layer's fixture replayed
  double quantum = 1;                      // what one quantum of the layer's compared output is (see error_quanta)
  ChainedLayer integer, reference;
};

struct ModelVerdict {
  std::string name;
  std::string directory;
  EngineProfile engine = Engine::QNNPACK;
  std::string pytorch_type;
  bool fully_covered = false;
  std::vector<std::pair<std::string, int64_t>> uncovered;
  std::vector<LayerReplay> layers;
  bool passed = false;       // every covered layer's isolated replay passes
  std::string error;         // set when the model could not be replayed at all
  std::string chain_note;    // why the chained runs did not run, if they did not
  // Indices into `layers`: the first whose isolated replay fails; the first where each
  // chained run leaves its bound.
  std::optional<size_t> first_failing, integer_leaves_bound, reference_leaves_bound;
  double integer_output_error = 0, reference_output_error = 0;  // the model's outputs, max |diff|
  double seconds_isolated = 0, seconds_integer_chain = 0, seconds_reference_chain = 0, seconds_libtorch_forward = 0;

  std::string line() const;     // one line: verdict, coverage, the first diverging layer
  std::string details() const;  // the failing layers' messages, and the chains' first exits
  std::string table() const;    // per layer: isolated worst, chained errors (`check --layers`)
};

// Replays STORE/NAME.model; never throws (a broken record is a failed verdict with the reason).
ModelVerdict replay_model(const std::string& directory);

std::string model_verdicts_json(const std::vector<ModelVerdict>& verdicts);

// What a replay's integer computing costs, apart from reading files, building modules and the
// bounds' float passes: LibTorch's forward of the model; every covered layer's integer forward
// on its recorded input, compared with the recording in output quanta; and the integer chain
// (the model's own code in LibTorch, every covered layer the integer implementation, each
// compared the same way). A layer that takes LibTorch's channels-last bytes
// (ChannelsLastBytesForward) runs on them in both, as `check`'s chain runs it. Medians of `repetitions` runs, in milliseconds (`qconform bench
// --model`; the model issue's target: isolated + chain <= 3x LibTorch's forward).
struct ModelReplayTiming {
  double libtorch_forward_ms = 0, isolated_layers_ms = 0, integer_chain_ms = 0;
  int64_t layers = 0;                  // covered layers with an integer implementation here
  int64_t layers_on_bytes = 0;        // of them, those run on LibTorch's channels-last bytes as they are
  double max_quanta_isolated = 0, max_quanta_chain = 0;  // the largest difference seen (a check, not a verdict)
};
ModelReplayTiming time_model_replay(const std::string& directory, int repetitions);

}  // namespace qconform
