// The fixture format (core/fixture.h) and its replay (oracles/replay.h), on the bundled
// corpus that scripts/make_fixture_corpus recorded with LibTorch.
#define BOOST_TEST_MODULE test_fixture
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/fixture.h"
#include "oracles/replay.h"
#include "tests/support.h"

using namespace qconform;
using qconform::testing::expect_error;
using json = nlohmann::json;

namespace {
const std::string kStore = std::string(QCONFORM_SOURCE_DIR) + "/fixtures/modules";

std::string fixture_text(const std::string& name) { return fixture_to_json(read_fixture(fixture_path(kStore, name))); }

// The fixture's JSON with one edit applied.
std::string edited(const std::string& name, const std::function<void(json&)>& edit) {
  json j = json::parse(fixture_text(name));
  edit(j);
  return j.dump();
}
}  // namespace

BOOST_AUTO_TEST_CASE(every_bundled_fixture_reads_back_to_the_same_text) {
  const auto paths = list_fixtures(kStore);
  BOOST_TEST(paths.size() >= 60u);
  for (const std::string& path : paths) {
    const Fixture f = read_fixture(path);
    BOOST_TEST(fixture_to_json(fixture_from_json(fixture_to_json(f), path)) == fixture_to_json(f), path);
  }
}

BOOST_AUTO_TEST_CASE(malformed_fixtures_are_refused_naming_the_file_and_the_field) {
  const std::string name = "static.Conv2d-qnnpack-default";
  expect_error([&] { fixture_from_json("{", "x.fixture.json"); }, "x.fixture.json: not JSON");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["format"] = 3; }), "f"); },
               "f: format: is 3; this qconform reads formats 1 to 2");
  // The int8 path: required for an engine that has two, refused for one that has none.
  const std::string onednn = "static.Conv2d-onednn-vnni-default";
  expect_error([&] { fixture_from_json(edited(onednn, [](json& j) { j.erase("int8_path"); }), "f"); },
               "f: the file: has no 'int8_path': onednn has two (avx2, vnni)");
  expect_error([&] { fixture_from_json(edited(onednn, [](json& j) { j["int8_path"] = "sse4"; }), "f"); },
               "f: int8_path: unknown int8 path 'sse4' (known: avx2, vnni)");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["int8_path"] = "vnni"; }), "f"); },
               "f: int8_path: must be absent: qnnpack has one int8 path on every CPU");
  expect_error([&] { fixture_from_json(edited(onednn, [](json& j) { j["format"] = 1; }), "f"); },
               "f: int8_path: is not a format-1 field (format 2 added it)");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j.erase("engine"); }), "f"); },
               "f: the file: has no 'engine'");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["expected"]["output"]["int_repr"][3] = 256; }), "f"); },
               "f: expected.output.int_repr: holds 256, outside torch.quint8's [0, 255]");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["input"]["input"]["shape"][0] = 3; }), "f"); },
               "f: input.input.int_repr: holds 288 values for the shape [3, 4, 6, 6]");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["parameters"][0]["value"]["scale"][0] = -1.0; }), "f"); },
               "f: parameters[0].value: invalid quantization parameters");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["engine"] = "tpu"; }), "f"); }, "f: engine:");
  // Found by scripts/fuzz fixture_json (docs/reliability.md): a number beyond double is nlohmann's
  // out_of_range, not a parse error; a shape whose product leaves int64.
  expect_error([&] { fixture_from_json("{\"format\": 2, \"x\": 1E87415}", "f"); }, "f: not JSON");
  expect_error([&] {
    fixture_from_json(edited(name, [](json& j) {
      j["input"]["input"]["shape"] = json::array({int64_t{1} << 40, int64_t{1} << 40, 2, 2});
    }), "f");
  }, "f: input.input.shape: holds more elements than int64 counts");
}

BOOST_AUTO_TEST_CASE(a_rebuilt_module_refuses_parameters_that_contradict_its_arguments) {
  Fixture f = fixture_from_json(
      edited("static.Linear-qnnpack-default", [](json& j) { j["config"]["in_features"] = 9; }), "f");
  const FixtureVerdict v = replay_fixture(f, "f");
  BOOST_TEST(!v.passed);
  BOOST_TEST(v.error.find("parameter 'weight' has shape [4, 8] but the module's arguments imply [4, 9]") !=
                 std::string::npos,
             v.error);
}

BOOST_AUTO_TEST_CASE(replay_passes_the_recording_and_fails_a_one_quantum_change) {
  const std::string name = "static.Conv1d-qnnpack-default";
  const FixtureVerdict good = replay_fixture_file(fixture_path(kStore, name));
  BOOST_TEST(good.passed, good.line() << "\n" << good.details());
  BOOST_TEST(good.comparisons.size() == 3u);
  Fixture f = read_fixture(fixture_path(kStore, name));
  auto& q = std::get<QTensor>(f.expected.output);
  q.values[7] += q.values[7] < 255 ? 1 : -1;
  const FixtureVerdict bad = replay_fixture(f, "altered");
  BOOST_TEST(!bad.passed);
  BOOST_TEST(bad.details().find("fixture " + name) != std::string::npos, bad.details());
  BOOST_TEST(bad.details().find("element 7 of output") != std::string::npos, bad.details());
  BOOST_TEST(bad.details().find("row 'static.integer-vs-libtorch'") != std::string::npos, bad.details());
}

// fbgemm's static requantization is not modelled (not in Debian's LibTorch): a recording
// labelled fbgemm is compared with the reference only, and the verdict line says so.
BOOST_AUTO_TEST_CASE(an_engine_without_integer_implementation_is_compared_with_the_reference_only) {
  Fixture f = read_fixture(fixture_path(kStore, "static.Conv2d-qnnpack-default"));
  f.engine = Engine::FBGEMM;
  const FixtureVerdict v = replay_fixture(f, "relabelled");
  BOOST_TEST(!v.comparisons.at(1).available);
  BOOST_TEST(v.line().find("not modelled") != std::string::npos, v.line());
}

// onednn's static modules are modelled on both int8 paths (static_gemm.h FloatEpilogue;
// avx2: convolutions with channels-last int16 pairs, padding skipped; vnni: exact sums;
// docs/numerics.md): every recording, made by LibTorch on one path, is matched integer for
// integer by the integer implementation on that path, whatever this host's path: Linear and
// LinearReLU per-tensor and per-channel, convolutions 1-d, 2-d, 3-d, grouped, strided, with
// ReLU, transposed, and the configurations wide enough to saturate int16 pairs.
BOOST_AUTO_TEST_CASE(onednn_static_recordings_are_matched_exactly_on_their_own_path) {
  for (const char* path : {"avx2", "vnni"})
    for (const char* config : {"static.Linear-onednn-%s-default", "static.Linear-onednn-%s-pc-nobias",
                               "static.LinearReLU-onednn-%s-default", "static.LinearReLU-onednn-%s-pc",
                               "static.Conv1d-onednn-%s-default", "static.Conv1d-onednn-%s-pc-groups",
                               "static.Conv2d-onednn-%s-default", "static.Conv2d-onednn-%s-pc-groups",
                               "static.Conv3d-onednn-%s-default", "static.Conv3d-onednn-%s-pc-stride",
                               "static.ConvReLU1d-onednn-%s-default", "static.ConvReLU2d-onednn-%s-pc",
                               "static.ConvReLU3d-onednn-%s-default", "static.ConvTranspose1d-onednn-%s-default",
                               "static.ConvTranspose2d-onednn-%s-default", "static.ConvTranspose3d-onednn-%s-default",
                               "static.Linear-onednn-%s-saturating", "static.Conv2d-onednn-%s-saturating"}) {
      char name[128];
      std::snprintf(name, sizeof name, config, path);
      const FixtureVerdict v = replay_fixture_file(fixture_path(kStore, name));
      BOOST_TEST(v.passed, v.line());
      BOOST_TEST(v.engine.label() == std::string("onednn:") + path, name);
      const FixtureComparison& integer = v.comparisons.at(1);
      BOOST_TEST(integer.pair.a.label() == std::string("quantized[onednn:") + path + "]", name);
      BOOST_TEST(integer.available, name);
      BOOST_TEST(integer.result.total > 0, name);
      BOOST_TEST(integer.result.exact == integer.result.total, name << ": " << integer.result.exact << "/"
                                                                    << integer.result.total << " exact");
    }
}

// The two paths' recordings of a configuration that saturates int16 pairs differ, and each
// replays only against its own path: relabelled as the other path's, the integer side no
// longer matches the recording bit for bit. (So replay honours the path on any host.)
BOOST_AUTO_TEST_CASE(a_recording_replays_against_its_own_path_only) {
  for (const char* kind : {"static.Linear", "static.Conv2d"}) {
    const Fixture avx2 = read_fixture(fixture_path(kStore, std::string(kind) + "-onednn-avx2-saturating"));
    const Fixture vnni = read_fixture(fixture_path(kStore, std::string(kind) + "-onednn-vnni-saturating"));
    BOOST_TEST(std::get<QTensor>(avx2.expected.output).values != std::get<QTensor>(vnni.expected.output).values, kind);
    for (const Fixture* recording : {&avx2, &vnni}) {
      Fixture relabelled = *recording;
      relabelled.engine = EngineProfile(Engine::ONEDNN, *recording->engine.int8_path == Int8Path::Avx2 ? Int8Path::Vnni
                                                                                                       : Int8Path::Avx2);
      const FixtureVerdict v = replay_fixture(relabelled, "relabelled");
      const FixtureComparison& integer = v.comparisons.at(1);
      BOOST_TEST(!integer.result.passed, kind << " recorded on " << recording->engine.label() << " replayed as "
                                             << relabelled.engine.label());
      BOOST_TEST(integer.result.failure.find("exceeds the bound 0 of row 'static.integer-vs-libtorch'") !=
                     std::string::npos,
                 integer.result.failure);
    }
  }
}

// Format 1 recorded no path; every format-1 fixture was recorded on an AVX2 host, so an
// engine with two paths reads as its avx2 one (fixtures/README.md) and replays as such.
BOOST_AUTO_TEST_CASE(format_1_recordings_read_as_the_avx2_path) {
  const std::string text = edited("static.Conv2d-onednn-avx2-saturating", [](json& j) {
    j["format"] = 1;
    j.erase("int8_path");
  });
  const Fixture f = fixture_from_json(text, "old");
  BOOST_TEST(f.engine.label() == "onednn:avx2");
  const FixtureVerdict v = replay_fixture(f, "old");
  BOOST_TEST(v.passed, v.line() << "\n" << v.details());
  const Fixture qnnpack = fixture_from_json(
      edited("static.Conv2d-qnnpack-default", [](json& j) { j["format"] = 1; }), "old");
  BOOST_TEST(qnnpack.engine.label() == "qnnpack");
}

// A QFunctional call's operands: the second and later under input.others. They replay, and a
// fixture that loses one, or holds no list there, is refused naming what is wrong.
BOOST_AUTO_TEST_CASE(a_calls_further_operands_replay_and_are_checked) {
  const std::string name = "static.cat-qnnpack-default";
  const Fixture f = read_fixture(fixture_path(kStore, name));
  BOOST_TEST(f.input.others.size() == 2u);
  const FixtureVerdict good = replay_fixture(f, name);
  BOOST_TEST(good.passed, good.line() << "\n" << good.details());
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["input"]["others"] = 3; }), "f"); },
               "f: input.others: must be a list of values");
  Fixture short_of_one = f;
  short_of_one.input.others.pop_back();
  const FixtureVerdict bad = replay_fixture(short_of_one, "short");
  BOOST_TEST(!bad.passed);
  BOOST_TEST(bad.details().find("shape") != std::string::npos, bad.details());  // the cat comes out shorter
}

// An operand passed as None before a later one (an EmbeddingBag's offsets before the mapping
// of pruned weights) is "none" in the file, and reads back as absent, not as a missing value.
BOOST_AUTO_TEST_CASE(an_absent_operand_round_trips) {
  const json none = value_to_json(AbsentOperand{});
  BOOST_TEST(none.dump() == R"({"kind":"none"})");
  BOOST_TEST(std::holds_alternative<AbsentOperand>(value_from_json(none, "f", "input.others[0]")));
  expect_error([&] { value_from_json(json{{"kind", "nothing"}}, "f", "input.others[0]"); },
               "f: input.others[0]: kind must be tensor, quantized_tensor, index_tensor, packed_sequence or none");
}
