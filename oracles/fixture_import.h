#pragma once
// `qconform fixture add`: a fixture from what PyTorch writes with no harness code on the
// user's side — a scripted quantized module (torch.jit.save(torch.jit.script(m), ...)) and
// its inputs (torch.save(inputs, ...)). LibTorch loads the archive; the module kind is told
// from its PyTorch type, its configuration from its attributes, its integer weights, bias
// and qparams from its packed params (their own unpack / __getstate__ methods, as the
// Python modules read them). The expected outputs are LibTorch's, run in-process on the
// engine, or taken from a file recorded elsewhere.
//
// Accepted: one module of a registered kind (nnqd.Linear, nniqd.LinearReLU, nnqd.LSTM/GRU/
// RNNCell/LSTMCell/GRUCell, nnq.Linear, nniq.LinearReLU, nnq.Conv{1,2,3}d, nniq.ConvReLU
// {1,2,3}d, nnq.ConvTranspose{1,2,3}d), or a module whose only children are nnq.Quantize,
// one such module and nnq.DeQuantize and whose forward is their composition (what eager
// convert makes of a QuantStub/DeQuantStub wrapper or QuantWrapper).
//
// Inputs: a tensor, or a tuple/list of tensors: (input, h0[, c0]) for the recurrent
// modules, an LSTM's (h0, c0) flattened or as a pair; a packed input as the tuple of its
// four tensors, tuple(packed) (LibTorch's unpickler cannot build a PackedSequence).
#include <optional>
#include <string>

#include "core/engines.h"
#include "core/fixture.h"

namespace qconform {

struct FixtureImport {
  std::string module_path;
  std::string inputs_path;
  std::optional<std::string> expected_path;  // outputs recorded elsewhere (torch.save)
  std::string name;
  // The engine the outputs are (or were) recorded on. Without expected_path it must be one
  // this LibTorch has; with it, any engine (say fbgemm, recorded on another machine).
  EngineProfile engine = Engine::ONEDNN;
};

// Everything a fixture needs, or Error naming the file and what is wrong (not a zip, not
// TorchScript, an unsupported module, a missing attribute, invalid qparams, inputs that do
// not fit). Writes nothing.
Fixture import_fixture(const FixtureImport& request);

// The engine LibTorch uses here unless told otherwise (`--engine`'s default).
Engine libtorch_default_engine();

}  // namespace qconform
