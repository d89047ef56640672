#pragma once
// `qconform fixture add MODEL.pt`: a whole scripted quantized model (say torchvision's
// quantizable ResNet18, fused, prepared, calibrated, converted and saved with
// torch.jit.save(torch.jit.script(model))) becomes a model record (core/model_record.h):
// the model is run once on its inputs in LibTorch with every leaf module's call recorded
// (oracles/model_calls.h); each call of a registered kind becomes a fixture of that layer —
// the input it received inside the model and the output LibTorch gave — and every other
// call is listed as not covered, with its type. Written into the store whole or not at all.
#include <string>

#include "core/model_record.h"
#include "oracles/fixture_import.h"

namespace qconform {

struct ModelImportResult {
  std::string directory;  // STORE/NAME.model
  ModelRecord record;
};

// Records the model on request.engine (one this LibTorch has: the layers are recorded
// in-process; with request.expected_path the model's outputs recorded elsewhere must be
// what it gives here). Error — the store unchanged — for an unreadable archive or inputs,
// inputs forward does not take, a float model, a layer of a registered kind whose call the
// harness cannot carry, or an existing model of that name without `force`.
ModelImportResult import_model(const FixtureImport& request, const std::string& store, bool force);

// True when the archive holds a model rather than one module (core/fixture.h): neither a
// module of a registered kind, nor Quantize -> such a module -> DeQuantize, nor a model
// around one QFunctional call. Error when it is not a TorchScript archive.
bool archive_is_model(const std::string& module_path);

}  // namespace qconform
