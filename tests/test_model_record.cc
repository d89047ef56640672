// The model record format (core/model_record.h, fixtures/README.md "Models"): written and read
// back, malformed records refused naming the file and the JSON path, and the store's listing
// of models beside fixtures.
#define BOOST_TEST_MODULE model_record
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fixture.h"
#include "core/model_record.h"

using namespace qconform;
namespace fs = std::filesystem;

namespace {

ModelRecord sample() {
  ModelRecord r;
  r.name = "tiny";
  r.engine = EngineProfile(Engine::ONEDNN, Int8Path::Vnni);
  r.pytorch_type = "torchvision.models.quantization.resnet.QuantizableResNet";
  ModelLayer conv{"conv1", "forward", 1, "torch.nn.intrinsic.quantized.modules.conv_relu.ConvReLU2d",
                  "static.ConvReLU2d", "layers/tiny.000.conv1.fixture.json", "", true};
  ModelLayer identity{"bn1", "forward", 1, "torch.nn.modules.linear.Identity", "", "", "passes values on", false};
  ModelLayer odd{"head", "forward", 2, "my.Head", "", "", "no registered kind", true};
  ModelLayer add{"layer1.0.add_relu", "add_relu", 1, "torch.ao.nn.quantized.modules.functional_modules.QFunctional",
                 "static.add_relu", "layers/tiny.003.layer1.0.add_relu.add_relu.fixture.json", "", true};
  r.layers = {conv, identity, odd, add};
  r.outputs = {Tensor(Shape{1, 2}, {0.5f, -1.25f})};
  r.provenance = std::make_shared<nlohmann::json>(nlohmann::json{{"model_file", "tiny.pt"}});
  return r;
}

std::string refusal(const std::string& text) {
  try {
    model_record_from_json(text, "m/model.json");
    return "accepted";
  } catch (const Error& e) {
    return e.what();
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(record_reads_back_what_was_written) {
  const ModelRecord r = sample();
  const std::string text = model_record_to_json(r);
  const ModelRecord back = model_record_from_json(text, "m/model.json");
  BOOST_TEST(back.name == r.name);
  BOOST_TEST(back.engine.label() == "onednn:vnni");
  BOOST_TEST(back.layers.size() == 4u);
  for (size_t i = 0; i < r.layers.size(); ++i) {
    BOOST_TEST(back.layers[i].label() == r.layers[i].label());
    BOOST_TEST(back.layers[i].fixture == r.layers[i].fixture);
    BOOST_TEST(back.layers[i].computes == r.layers[i].computes);
  }
  BOOST_TEST(model_record_to_json(back) == text);
  // One covered-or-not line each: the computing call of an unregistered type is what is missing.
  BOOST_TEST(!r.fully_covered());
  BOOST_TEST(r.uncovered_types().size() == 1u);
  BOOST_TEST(r.uncovered_types()[0].first == "my.Head");
  BOOST_TEST(r.layers[2].label() == "head (call 2)");
  BOOST_TEST(r.layers[3].label() == "layer1.0.add_relu.add_relu");
  BOOST_TEST(nlohmann::json::parse(text)["fully_covered"] == false);
}

BOOST_AUTO_TEST_CASE(malformed_records_name_the_file_and_the_field) {
  const nlohmann::json good = nlohmann::json::parse(model_record_to_json(sample()));
  const auto with = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = good;
    change(j);
    return refusal(j.dump());
  };
  BOOST_TEST(refusal("{") .rfind("m/model.json: not JSON", 0) == 0);
  BOOST_TEST(with([](auto& j) { j["format"] = 2; }) ==
             "m/model.json: format: is 2; this qconform reads model records of format 1 (fixtures/README.md)");
  BOOST_TEST(with([](auto& j) { j.erase("layers"); }) == "m/model.json: the file: has no 'layers'");
  BOOST_TEST(with([](auto& j) { j["layers"][0]["fixture"] = "../../etc/passwd"; }) ==
             "m/model.json: layers[0].fixture: must be a relative path inside the model directory");
  BOOST_TEST(with([](auto& j) { j["layers"][0]["fixture"] = "/tmp/x.fixture.json"; }) ==
             "m/model.json: layers[0].fixture: must be a relative path inside the model directory");
  BOOST_TEST(with([](auto& j) { j["layers"][1].erase("uncovered"); }) == "m/model.json: layers[1]: has no 'uncovered'");
  BOOST_TEST(with([](auto& j) { j["layers"][2]["call"] = 0; }) == "m/model.json: layers[2].call: must be a positive integer");
  BOOST_TEST(with([](auto& j) { j.erase("int8_path"); }) ==
             "m/model.json: the file: has no 'int8_path': onednn has two (avx2, vnni)");
  BOOST_TEST(with([](auto& j) { j["engine"] = "tpu"; }).rfind("m/model.json: engine: ", 0) == 0);
  BOOST_TEST(with([](auto& j) { j["outputs"][0]["kind"] = "nonsense"; }).rfind("m/model.json: outputs[0]", 0) == 0);
}

BOOST_AUTO_TEST_CASE(the_store_lists_models_apart_from_fixtures) {
  const fs::path store = fs::temp_directory_path() / ("qconform-model-record-" + std::to_string(::getpid()));
  fs::remove_all(store);
  fs::create_directories(store / "tiny.model" / "layers");
  fs::create_directories(store / ".half.model.partial-1" / "layers");
  fs::create_directories(store / "no-record.model");
  std::ofstream(store / "tiny.model" / "model.json") << model_record_to_json(sample());
  std::ofstream(store / "tiny.model" / "layers" / "tiny.000.conv1.fixture.json") << "{}";
  std::ofstream(store / ".half.model.partial-1" / "model.json") << "{}";
  std::ofstream(store / ".half.model.partial-1" / "layers" / "x.fixture.json") << "{}";
  std::ofstream(store / "alone.fixture.json") << "{}";
  const std::vector<std::string> models = list_models(store.string());
  BOOST_TEST(models.size() == 1u);
  BOOST_TEST(fs::path(models.at(0)).filename() == "tiny.model");
  // A model's layers replay with it, and a model being written is not there yet.
  const std::vector<std::string> fixtures = list_fixtures(store.string());
  BOOST_TEST(fixtures.size() == 1u);
  BOOST_TEST(fs::path(fixtures.at(0)).filename() == "alone.fixture.json");
  BOOST_TEST(read_model_record((store / "tiny.model").string()).name == "tiny");
  fs::remove_all(store);
}
