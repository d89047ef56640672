#pragma once
// `qconform check`: replay a fixture (core/fixture.h). The module is rebuilt from the
// fixture twice — the reference (dequantized weights, fake-quantized again) and the integer
// implementation on the fixture's engine — and both run on the fixture's input; each is
// compared with the outputs LibTorch recorded, and with the other, by the agreement
// oracle's judge (oracles/agreement.h) under the tolerance row of the pair. Nothing of
// LibTorch runs: a fixture recorded on one machine replays on any other.
#include <string>
#include <vector>

#include "core/fixture.h"
#include "oracles/agreement.h"

namespace qconform {

struct FixtureComparison {
  Pair pair;              // the recorded side is libtorch[engine]
  bool available = true;  // false: no integer implementation of the kind on the engine
  std::string note;       // why not available
  CaseResult result;
};

struct FixtureVerdict {
  std::string name;
  std::string path;
  std::string kind;
  EngineProfile engine = Engine::QNNPACK;  // what recorded it: the integer side replays on this profile
  bool passed = false;
  std::string error;  // set when the fixture could not be replayed at all
  std::vector<FixtureComparison> comparisons;

  // "PASS  static.Conv2d[qnnpack]  conv2d-qnnpack  worst: 0 of bound, 96/96 exact (reference vs libtorch[qnnpack])"
  std::string line() const;
  // Every failing comparison's message, naming the fixture, the element and the error.
  std::string details() const;
};

FixtureVerdict replay_fixture(const Fixture& fixture, const std::string& path);
// Reads the file first; a malformed file is a failed verdict with the reader's message.
FixtureVerdict replay_fixture_file(const std::string& path);

// The verdicts as JSON (`qconform check --json OUT`).
std::string verdicts_json(const std::vector<FixtureVerdict>& verdicts);

}  // namespace qconform
