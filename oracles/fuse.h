#pragma once
// torch.ao.quantization.fuse_modules over the harness's module trees (fuse_modules.py and
// fuser_method_mappings.py in PyTorch 1.13, post-training: is_qat=False). Each list names
// modules by their dotted paths; the sequence of their types must be one of
//
//   Conv{1,2,3}d, BatchNorm{1,2,3}d [, ReLU]    -> the convolution with the BatchNorm folded
//                                                  in (core/float/fusion.h) [ConvReLU{n}d]
//   Conv{n}d, ReLU                              -> ConvReLU{n}d
//   Linear, BatchNorm1d                         -> the linear layer with the BatchNorm folded in
//   Linear, ReLU                                -> LinearReLU
//   BatchNorm{2,3}d, ReLU                       -> BNReLU{2,3}d
//   ConvTranspose{n}d, BatchNorm{n}d            -> the transposed convolution, folded
//
// The fused module takes the first module's place and every other becomes an Identity (with
// the first module's training flag). Folding needs evaluation mode. Refusals carry
// PyTorch's messages: "did not find fuser method for: (<class '...'>, ...) ", "Conv and BN
// both must be in the same mode (train or eval).", "Fusion only for eval!", ATen's size
// mismatch, "'Sequential' object has no attribute 'x'".
//
// Hooks move as fuse_known_modules moves them: the first module's pre-hooks and the last
// module's forward hooks go to the fused module, the others' are lost. Where PyTorch folds
// it deep-copies the first module, hooks included, and then registers the moved pre-hooks
// again, so they run twice (measured with torch 1.13); more than one hook to move makes
// PyTorch fail with "OrderedDict mutated during iteration", and so it does here. The
// harness's fused modules are single modules, so a forward hook PyTorch would leave on the
// inner module of a fused container (ConvReLU2d's conv, before the ReLU) cannot be placed:
// that is refused with a message saying so.
//
// Either every list is fused or, on an error, the tree is unchanged.
#include <string>
#include <vector>

#include "oracles/eager.h"

namespace qconform {

void fuse_modules(Sequential& root, const std::vector<std::vector<std::string>>& modules_to_fuse);

// The class PyTorch would print for a module in fuse_modules' messages:
// "<class 'torch.nn.modules.conv.Conv2d'>".
std::string python_class_repr(const Module& module);

}  // namespace qconform
