// The fixture format (core/fixture.h) and its replay (oracles/replay.h), on the bundled
// corpus that scripts/make_fixture_corpus recorded with LibTorch.
#define BOOST_TEST_MODULE test_fixture
#include <boost/test/unit_test.hpp>
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
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["format"] = 2; }), "f"); },
               "f: format: is 2; this qconform reads format 1");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j.erase("engine"); }), "f"); },
               "f: the file: has no 'engine'");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["expected"]["output"]["int_repr"][3] = 256; }), "f"); },
               "f: expected.output.int_repr: holds 256, outside torch.quint8's [0, 255]");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["input"]["input"]["shape"][0] = 3; }), "f"); },
               "f: input.input.int_repr: holds 288 values for the shape [3, 4, 6, 6]");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["parameters"][0]["value"]["scale"][0] = -1.0; }), "f"); },
               "f: parameters[0].value: invalid quantization parameters");
  expect_error([&] { fixture_from_json(edited(name, [](json& j) { j["engine"] = "tpu"; }), "f"); }, "f: engine:");
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

// onednn's static modules are modelled (static_gemm.h FloatEpilogue; convolutions with
// channels-last int16 pairs, padding skipped: docs/numerics.md): every recording, made by
// LibTorch, is matched integer for integer: Linear and LinearReLU per-tensor and per-channel,
// convolutions 1-d, 2-d, 3-d, grouped, strided, with ReLU, transposed.
BOOST_AUTO_TEST_CASE(onednn_static_recordings_are_matched_exactly) {
  for (const char* name : {"static.Linear-onednn-default", "static.Linear-onednn-pc-nobias",
                           "static.LinearReLU-onednn-default", "static.LinearReLU-onednn-pc",
                           "static.Conv1d-onednn-default", "static.Conv1d-onednn-pc-groups", "static.Conv2d-onednn-default",
                           "static.Conv2d-onednn-pc-groups", "static.Conv3d-onednn-default", "static.Conv3d-onednn-pc-stride",
                           "static.ConvReLU1d-onednn-default", "static.ConvReLU2d-onednn-pc", "static.ConvReLU3d-onednn-default",
                           "static.ConvTranspose1d-onednn-default", "static.ConvTranspose2d-onednn-default",
                           "static.ConvTranspose3d-onednn-default"}) {
    const FixtureVerdict v = replay_fixture_file(fixture_path(kStore, name));
    BOOST_TEST(v.passed, v.line());
    const FixtureComparison& integer = v.comparisons.at(1);
    BOOST_TEST(integer.available, name);
    BOOST_TEST(integer.result.total > 0, name);
    BOOST_TEST(integer.result.exact == integer.result.total, name << ": " << integer.result.exact << "/"
                                                                  << integer.result.total << " exact");
  }
}
