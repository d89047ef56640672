// QFunctional's ops: the integer model of ATen's and QNNPACK's kernels against LibTorch where
// the model's details decide the answer (ATen's vector and scalar forms of add, QNNPACK's
// fixed-point add, cat's NHWC kernel), the output qparams of add_scalar and mul_scalar in
// each branch, refusals with PyTorch's messages, and QFunctional's repr and state_dict.
#define BOOST_TEST_MODULE test_functional
#include <boost/test/unit_test.hpp>

#include <random>

#include "core/cpu.h"
#include "quantized/kernels/functional.h"
#include "quantized/libtorch/static_functional.h"
#include "quantized/static/functional.h"
#include "tests/support.h"

using namespace qconform;

namespace {

QTensor call(Module& m, const QTensor& x, const std::vector<QTensor>& others = {}) {
  ModuleInput input{x, std::nullopt};
  for (const QTensor& o : others) input.others.push_back(o);
  return std::get<QTensor>(m(input).output);
}

std::string outcome(Module& m, const QTensor& x, const std::vector<QTensor>& others) {
  try {
    call(m, x, others);
    return "accepted";
  } catch (const Error& e) {
    return e.what();
  }
}

QuantParams qp(double scale, int64_t zero_point) { return QuantParams::per_tensor(DType::QUInt8, scale, zero_point); }

FunctionalOptions op(FunctionalOp o, double scalar = 0.0, int64_t dim = 0) { return {o, scalar, dim}; }

}  // namespace

// Every pair of levels (a, b) at once: a 256 x 256 tensor of them, then a tail of ATen's
// vectorised loop. Near ties the two forms of ATen's add (FMA dequantize on whole vector
// blocks, scalar on the tail) part, and QNNPACK's fixed point parts from both.
namespace {

struct AllPairs {
  QTensor a, b;
};

AllPairs all_pairs(const QuantParams& qa, const QuantParams& qb, const std::vector<std::pair<int32_t, int32_t>>& tail) {
  const int64_t n = 65536 + static_cast<int64_t>(tail.size());
  AllPairs p{{Shape{n}, std::vector<int32_t>(n), qa}, {Shape{n}, std::vector<int32_t>(n), qb}};
  for (int64_t i = 0; i < 65536; ++i) {
    p.a.values[i] = static_cast<int32_t>(i / 256);
    p.b.values[i] = static_cast<int32_t>(i % 256);
  }
  for (size_t i = 0; i < tail.size(); ++i) {
    p.a.values[65536 + i] = tail[i].first;
    p.b.values[65536 + i] = tail[i].second;
  }
  return p;
}

kernels::AffineQParams affine(const QuantParams& q) { return {q.scale(), static_cast<int32_t>(q.zero_point())}; }

// ATen's add of every level pair (a = i / 256, b = i % 256) in its vector forms and in its
// scalar forms.
std::pair<std::vector<int32_t>, std::vector<int32_t>> add_forms(const QuantParams& qa, const QuantParams& qb,
                                                                const QuantParams& out, kernels::AtenVectorLoop loop) {
  const AllPairs grid = all_pairs(qa, qb, {});
  std::vector<int32_t> vector_forms(65536), scalar_forms(65536);
  kernels::aten_add(grid.a.values.data(), grid.b.values.data(), 65536, affine(qa), affine(qb), affine(out), false,
                    {1, loop.simd}, vector_forms.data());
  kernels::aten_add(grid.a.values.data(), grid.b.values.data(), 65536, affine(qa), affine(qb), affine(out), false,
                    kernels::AtenVectorLoop::scalar_only(), scalar_forms.data());
  return {vector_forms, scalar_forms};
}

}  // namespace

BOOST_AUTO_TEST_CASE(aten_add_takes_the_vector_forms_on_its_blocks) {
  const kernels::AtenVectorLoop loop = kernels::AtenVectorLoop::of();
  std::mt19937_64 rng(20261206);
  std::uniform_real_distribution<double> scale(0.001, 0.2);
  std::uniform_int_distribution<int32_t> level(0, 255);
  int64_t differing = 0;
  for (int draw = 0; draw < 20; ++draw) {
    const QuantParams qa = qp(scale(rng), level(rng)), qb = qp(scale(rng), level(rng)), out = qp(scale(rng), level(rng));
    // The pairs whose forms differ, to place in the tail (scalar forms there).
    const auto [vector_forms, scalar_forms] = add_forms(qa, qb, out, loop);
    std::vector<std::pair<int32_t, int32_t>> tail;
    for (int64_t i = 0; i < 65536; ++i)
      if (vector_forms[i] != scalar_forms[i]) {
        ++differing;
        if (static_cast<int64_t>(tail.size()) < loop.block - 1) tail.emplace_back(i / 256, i % 256);
      }
    const AllPairs x = all_pairs(qa, qb, tail);
    QuantizedFunctional integer(op(FunctionalOp::Add), out, Engine::ONEDNN);
    const QTensor ours = call(integer, x.a, {x.b});
    for (size_t i = 0; i < tail.size(); ++i) {  // the model puts the scalar forms on the tail
      BOOST_TEST(ours.values[65536 + i] == scalar_forms[tail[i].first * 256 + tail[i].second]);
      BOOST_TEST(ours.values[tail[i].first * 256 + tail[i].second] == vector_forms[tail[i].first * 256 + tail[i].second]);
    }
    auto libtorch = make_libtorch_static_functional(op(FunctionalOp::Add), out, Engine::ONEDNN);
    BOOST_TEST(call(*libtorch, x.a, {x.b}).values == ours.values, "draw " << draw << ": " << tail.size()
                                                                      << " pairs whose forms differ in the tail");
  }
  BOOST_TEST_MESSAGE(differing << " level pairs whose forms differ in 20 draws of 65,536 (ATen capability "
                               << to_string(aten_cpu_capability()) << ")");
  if (loop.simd) BOOST_TEST(differing > 0);
}

// QNNPACK's add is fixed point (22-bit multipliers, a shift rounded half away from zero):
// near ties it parts from ATen's float add, and LibTorch's qnnpack follows the fixed point.
BOOST_AUTO_TEST_CASE(qnnpacks_add_is_fixed_point) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> scale(0.01, 0.2);
  std::uniform_int_distribution<int32_t> level(0, 255);
  int64_t differing = 0;
  for (int draw = 0; draw < 20; ++draw) {
    const QuantParams qa = qp(scale(rng), level(rng)), qb = qp(scale(rng), level(rng)), out = qp(scale(rng), level(rng));
    const AllPairs x = all_pairs(qa, qb, {});
    for (bool relu : {false, true}) {
      const FunctionalOptions o = op(relu ? FunctionalOp::AddRelu : FunctionalOp::Add);
      QuantizedFunctional integer(o, out, Engine::QNNPACK);
      const QTensor ours = call(integer, x.a, {x.b});
      auto libtorch = make_libtorch_static_functional(o, out, Engine::QNNPACK);
      BOOST_TEST(call(*libtorch, x.a, {x.b}).values == ours.values, "draw " << draw << (relu ? ", add_relu" : ", add"));
      std::vector<int32_t> float_add(65536);
      kernels::aten_add(x.a.values.data(), x.b.values.data(), 65536, affine(qa), affine(qb), affine(out), relu,
                        kernels::AtenVectorLoop::scalar_only(), float_add.data());
      for (int64_t i = 0; i < 65536; ++i) differing += float_add[i] != ours.values[i];
    }
  }
  BOOST_TEST_MESSAGE(differing << " of 2,621,440 (level pair, qparams) where ATen's float add would differ");
  BOOST_TEST(differing > 0);
}

// cat along dim 1 of operands that are channels-last contiguous too (H = W = 1) takes ATen's
// NHWC kernel: per operand, vector forms on whole vectors of channels, scalar on the rest.
BOOST_AUTO_TEST_CASE(cat_nhwc_kernel_takes_the_vector_forms_on_whole_vectors_of_channels) {
  const kernels::AtenVectorLoop loop = kernels::AtenVectorLoop::of();
  const int64_t width = loop.block / 2;
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> scale(0.001, 0.2);
  std::uniform_int_distribution<int32_t> level(0, 255);
  int found = 0;
  for (int tries = 0; found < 5 && tries < 200000; ++tries) {
    const QuantParams in = qp(scale(rng), level(rng)), out = qp(scale(rng), level(rng));
    const int32_t q = level(rng);
    const QTensor one{Shape{1, 1, 1, 1}, {q}, in};
    const std::vector<const QTensor*> single{&one};
    const int32_t vector_form = kernels::cat(single, 1, out, {2, loop.simd}).values[0];  // a "vector" of one
    const int32_t scalar_form = kernels::cat(single, 1, out, kernels::AtenVectorLoop::scalar_only()).values[0];
    if (vector_form == scalar_form) continue;
    ++found;
    // Channels: two whole vectors and a tail of 3 + up to 20 (ATen's later blocks of 8 would
    // show there).
    const int64_t channels = 2 * width + 3 + static_cast<int64_t>(rng() % 21);
    const QTensor x{Shape{1, channels, 1, 1}, std::vector<int32_t>(channels, q), in};
    const QTensor y{Shape{1, 2, 1, 1}, {q, q}, in};
    std::vector<int32_t> expected(channels + 2, scalar_form);
    const int64_t quarter = width / 4, vector_end = 2 * width + (channels - 2 * width) / quarter * quarter;
    std::fill(expected.begin(), expected.begin() + vector_end, vector_form);
    QuantizedFunctional integer(op(FunctionalOp::Cat, 0.0, 1), out, Engine::ONEDNN);
    BOOST_TEST(call(integer, x, {y}).values == expected);
    auto libtorch = make_libtorch_static_functional(op(FunctionalOp::Cat, 0.0, 1), out, Engine::ONEDNN);
    const QTensor theirs = call(*libtorch, x, {y});
    std::string where;
    for (size_t i = 0; i < expected.size(); ++i)
      if (theirs.values[i] != expected[i]) where += " " + std::to_string(i);
    BOOST_TEST(theirs.values == expected, "level " << q << ": vector form " << vector_form << ", scalar form "
                                                   << scalar_form << ", " << channels << " channels; LibTorch differs at"
                                                   << where);
  }
  BOOST_TEST_MESSAGE(found << " levels whose forms differ");
  if (loop.simd) BOOST_TEST(found > 0);
}

// add_scalar moves the zero point by the scalar on the input's grid while it stays in range,
// else rescales; mul_scalar rescales, flips for a negative scalar, zeroes for 0. Each branch
// against LibTorch: qparams and integers.
BOOST_AUTO_TEST_CASE(scalar_ops_output_qparams_in_each_branch) {
  QTensor x{Shape{2, 5}, {0, 3, 50, 100, 128, 129, 200, 250, 254, 255}, qp(0.05, 120)};
  for (const FunctionalOptions& o :
       {op(FunctionalOp::AddScalar, 0.37), op(FunctionalOp::AddScalar, 7.0), op(FunctionalOp::AddScalar, -7.0),
        op(FunctionalOp::AddScalar, 0.0251), op(FunctionalOp::MulScalar, 0.37), op(FunctionalOp::MulScalar, 0.0),
        op(FunctionalOp::MulScalar, -2.5)})
    for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
      QuantizedFunctional integer(o, qp(1.0, 0), engine);
      auto libtorch = make_libtorch_static_functional(o, qp(1.0, 0), engine);
      const QTensor ours = call(integer, x), theirs = call(*libtorch, x);
      BOOST_TEST(ours.qparams.to_string() == theirs.qparams.to_string(), o.method() << "(" << o.scalar << ")");
      BOOST_TEST(ours.values == theirs.values, o.method() << "(" << o.scalar << ")");
    }
  // The branches, by PyTorch's rule: in range keeps the scale; beyond it pins the zero point.
  BOOST_TEST(scalar_op_output_qparams(op(FunctionalOp::AddScalar, 0.37), x.qparams).zero_point() == 113);
  BOOST_TEST(scalar_op_output_qparams(op(FunctionalOp::AddScalar, 7.0), x.qparams).zero_point() == 0);
  BOOST_TEST(scalar_op_output_qparams(op(FunctionalOp::AddScalar, -7.0), x.qparams).zero_point() == 255);
  BOOST_TEST(scalar_op_output_qparams(op(FunctionalOp::MulScalar, -2.5), x.qparams).zero_point() == 135);
}

// Operands PyTorch refuses, refused alike by the integer side and LibTorch, in PyTorch's
// words (qadd.cpp's spelling included), on both engines.
BOOST_AUTO_TEST_CASE(refusals_match_libtorchs) {
  const QTensor a{Shape{2, 3, 2, 2}, std::vector<int32_t>(24, 100), qp(0.05, 120)};
  const QTensor b{Shape{2, 3, 2, 2}, std::vector<int32_t>(24, 90), qp(0.03, 100)};
  QTensor per_channel = a;
  per_channel.qparams = QuantParams::per_channel(DType::QUInt8, {0.1, 0.2, 0.3}, {1, 2, 3}, 1);
  QTensor signed_a = a;
  signed_a.qparams = QuantParams::per_tensor(DType::QInt8, 0.05, 0);
  const QTensor rank3{Shape{3, 2, 2}, std::vector<int32_t>(12, 7), qp(0.1, 1)};
  const QTensor wider{Shape{2, 3, 2, 3}, std::vector<int32_t>(36, 7), qp(0.1, 1)};
  struct Refusal {
    FunctionalOptions options;
    QTensor x;
    std::vector<QTensor> others;
    std::string message;
  };
  const std::vector<Refusal> refusals{
      {op(FunctionalOp::Add), per_channel, {per_channel}, "Only per tensor quantization is suported in Add."},
      {op(FunctionalOp::Add), a, {per_channel}, "Both inputs to Add must have the same quantization shceme."},
      {op(FunctionalOp::AddRelu), a, {signed_a}, "Add operands should have same data type."},
      {op(FunctionalOp::Add), a, {wider}, "The size of tensor a (2) must match the size of tensor b (3) at "
                                          "non-singleton dimension 3"},
      {op(FunctionalOp::Mul), per_channel, {per_channel}, "Only per tensor quantization is supported in Mul."},
      {op(FunctionalOp::AddScalar, 0.5), per_channel, {}, "Only per tensor quantization is supported in Add."},
      {op(FunctionalOp::Cat, 0.0, 0), a, {rank3}, "Tensors must have same number of dimensions: got 4 and 3"},
      {op(FunctionalOp::Cat, 0.0, 1), a, {wider}, "Sizes of tensors must match except in dimension 1. Expected size 2 "
                                                  "but got size 3 for tensor number 1 in the list."},
      {op(FunctionalOp::Cat, 0.0, 1), a, {per_channel}, "Quantization schemes must be the same."},
      {op(FunctionalOp::Cat, 0.0, 1), a, {signed_a}, "All dtypes must be the same."},
      {op(FunctionalOp::Cat, 0.0, 4), a, {b}, "Dimension out of range (expected to be in range of [-4, 3], but got 4)"},
      // quantized::matmul's check_inputs, in its order (and its spelling), then at::matmul's sizes.
      {op(FunctionalOp::Matmul), a, {signed_a}, "MatMul operands should have same data type."},
      {op(FunctionalOp::Matmul), per_channel, {per_channel}, "Only per-tensor quantization is suported in Matmul."},
      {op(FunctionalOp::Matmul), a, {per_channel}, "Both inputs to Matmul must have the same quantization scheme."},
      {op(FunctionalOp::Matmul), QTensor{Shape{2, 3, 4}, std::vector<int32_t>(24, 9), qp(0.1, 1)},
       {QTensor{Shape{2, 5, 3}, std::vector<int32_t>(30, 9), qp(0.1, 1)}},
       "Expected size for first two dimensions of batch2 tensor to be: [2, 4] but got: [2, 5]."},
      {op(FunctionalOp::Matmul), QTensor{Shape{3, 4}, std::vector<int32_t>(12, 9), qp(0.1, 1)},
       {QTensor{Shape{5, 3}, std::vector<int32_t>(15, 9), qp(0.1, 1)}},
       "mat1 and mat2 shapes cannot be multiplied (3x4 and 5x3)"},
  };
  for (const Refusal& r : refusals)
    for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
      QuantizedFunctional integer(r.options, qp(0.04, 110), engine);
      auto libtorch = make_libtorch_static_functional(r.options, qp(0.04, 110), engine);
      const std::string ours = outcome(integer, r.x, r.others), theirs = outcome(*libtorch, r.x, r.others);
      BOOST_TEST(ours == r.message, r.options.method() << " on " << to_string(engine));
      BOOST_TEST(theirs == r.message, r.options.method() << " on " << to_string(engine) << " (LibTorch)");
    }
}

// nnq.QFunctional's repr and state_dict (scale float32 and zero_point int64, 0-d).
BOOST_AUTO_TEST_CASE(qfunctional_prints_and_saves_as_pytorch) {
  QuantizedFunctional integer(op(FunctionalOp::Add), qp(0.5, 3), Engine::QNNPACK);
  BOOST_TEST(integer.repr() == "QFunctional(scale=0.5, zero_point=3)");
  const StateDict state = integer.state_dict();
  BOOST_TEST(state.keys() == (std::vector<std::string>{"scale", "zero_point"}));
  BOOST_TEST(state.at("scale").as<Tensor>("scale").sizes.empty());
  BOOST_TEST(state.at("zero_point").as<IntTensor>("zero_point").values.at(0) == 3);
  auto libtorch = make_libtorch_static_functional(op(FunctionalOp::Add), qp(0.5, 3), Engine::QNNPACK);
  BOOST_TEST((libtorch->state_dict() == state));
  QuantizedFunctional other(op(FunctionalOp::Add), qp(0.1, 0), Engine::QNNPACK);
  other.load_state_dict(state);
  BOOST_TEST(other.repr() == integer.repr());
}

// MobileNetV3's squeeze-excitation multiplies [N, C, 1, 1] by [N, C, H, W] (and the other way
// round); ATen's qmul broadcasts with the same per-element arithmetic, so the integer model
// does too, integer for integer with LibTorch, over every level of both operands.
BOOST_AUTO_TEST_CASE(mul_broadcasts_as_libtorch) {
  std::mt19937 random(7);
  const auto tensor = [&](Shape shape, const QuantParams& q) {
    QTensor t{shape, std::vector<int32_t>(numel_of(shape)), q};
    for (int32_t& v : t.values) v = static_cast<int32_t>(random() % 256);
    return t;
  };
  const std::vector<std::pair<Shape, Shape>> shapes{
      {{2, 16, 1, 1}, {2, 16, 5, 7}}, {{2, 16, 5, 7}, {2, 16, 1, 1}}, {{3, 1, 9}, {4, 9}}, {{1, 300}, {2, 1}}};
  for (const auto& [sa, sb] : shapes)
    for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
      const QTensor a = tensor(sa, qp(0.023, 3)), b = tensor(sb, qp(0.0071, 140));
      QuantizedFunctional integer(op(FunctionalOp::Mul), qp(0.011, 60), engine);
      auto libtorch = make_libtorch_static_functional(op(FunctionalOp::Mul), qp(0.011, 60), engine);
      const QTensor ours = call(integer, a, {b}), theirs = call(*libtorch, a, {b});
      BOOST_TEST(ours.sizes == theirs.sizes);
      BOOST_TEST(ours.values == theirs.values, shape_to_string(sa) << " x " << shape_to_string(sb) << " on "
                                                                    << to_string(engine));
    }
  // add keeps refusing a broadcast: its vector and scalar loops round apart (see above).
  QuantizedFunctional add(op(FunctionalOp::Add), qp(0.011, 60), Engine::ONEDNN);
  BOOST_TEST(outcome(add, tensor({2, 4, 1}, qp(0.02, 1)), {tensor({2, 4, 3}, qp(0.02, 1))}).find(
                 "the integer model covers operands of one shape") != std::string::npos);
}

// Operands held channels-last (a model's convolutions leave them so): ATen's add walks them in
// memory order, so its scalar tail is the last elements in NHWC order, not in row-major order.
// The level pairs whose two forms differ are placed there; LibTorch's integers are the model's
// told the memory format, and not the model's told row-major order.
BOOST_AUTO_TEST_CASE(aten_add_walks_channels_last_operands_in_memory_order) {
  const kernels::AtenVectorLoop loop = kernels::AtenVectorLoop::of();
  if (!loop.simd) return;  // one form only: nothing to tell apart
  const Shape shape{1, 10, 66, 100};  // 66,000 elements: a tail of 66,000 mod the block
  const int64_t n = 66000, c = 10, hw = 6600, tail = n % loop.block;
  BOOST_REQUIRE(tail > 0);
  std::mt19937_64 rng(20261207);
  std::uniform_real_distribution<double> scale(0.001, 0.2);
  std::uniform_int_distribution<int32_t> level(0, 255);
  int parted = 0;
  int64_t placed = 0;
  for (int draw = 0; draw < 400 && parted < 3; ++draw) {
    const QuantParams qa = qp(scale(rng), level(rng)), qb = qp(scale(rng), level(rng)), out = qp(scale(rng), level(rng));
    const auto [vector_forms, scalar_forms] = add_forms(qa, qb, out, loop);
    // Memory order: the pairs whose forms differ in the tail (from its start: the last element
    // is in the row-major tail too), everything else before it.
    std::vector<int32_t> a_memory(n, 0), b_memory(n, 0);
    int64_t at = 0, in_tail = n - tail;
    for (int64_t i = 0; i < 65536 && at < n - tail; ++i) {
      const bool differs = vector_forms[i] != scalar_forms[i];
      const int64_t slot = differs && in_tail < n - 1 ? (++placed, in_tail++) : at++;
      a_memory[slot] = static_cast<int32_t>(i / 256);
      b_memory[slot] = static_cast<int32_t>(i % 256);
    }
    QTensor a{shape, std::vector<int32_t>(n), qa}, b{shape, std::vector<int32_t>(n), qb};
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < hw; ++k) {
        a.values[ch * hw + k] = a_memory[k * c + ch];
        b.values[ch * hw + k] = b_memory[k * c + ch];
      }
    a.channels_last = b.channels_last = true;
    QuantizedFunctional integer(op(FunctionalOp::Add), out, Engine::ONEDNN);
    auto libtorch = make_libtorch_static_functional(op(FunctionalOp::Add), out, Engine::ONEDNN);
    const QTensor theirs = call(*libtorch, a, {b}), ours = call(integer, a, {b});
    BOOST_TEST(ours.values == theirs.values, "draw " << draw);
    BOOST_TEST(ours.channels_last);
    // The model replay's path: the same operands as LibTorch's bytes (memory order).
    std::vector<uint8_t> a_bytes(a_memory.begin(), a_memory.end()), b_bytes(b_memory.begin(), b_memory.end()), y(n);
    const std::vector<U8ChannelsLast> operands{{shape, qa.scale(), qa.zero_point(), a_bytes.data()},
                                               {shape, qb.scale(), qb.zero_point(), b_bytes.data()}};
    BOOST_REQUIRE(integer.channels_last_output(operands));
    integer.forward_channels_last(operands, y.data());
    bool bytes_agree = true;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < hw; ++k) bytes_agree = bytes_agree && y[k * c + ch] == theirs.values[ch * hw + k];
    BOOST_TEST(bytes_agree, "draw " << draw << ": the channels-last bytes path differs from LibTorch");
    QTensor a_rows = a, b_rows = b;
    a_rows.channels_last = b_rows.channels_last = false;
    if (call(integer, a_rows, {b_rows}).values != theirs.values) ++parted;
  }
  BOOST_TEST_MESSAGE(placed << " pairs whose forms differ placed in the tails");
  BOOST_TEST(parted > 0, "no draw tells memory order from row-major order");
}

// add and add_relu on channels-last bytes (the model replay's path) give forward's integers on
// both engines' kernels, at sizes on and off ATen's vector blocks and the bytes path's chunks;
// the other ops, and operands of two shapes, are left to forward.
BOOST_AUTO_TEST_CASE(add_on_channels_last_bytes_gives_forwards_integers) {
  std::mt19937_64 rng(20261207);
  std::uniform_real_distribution<double> scale(0.01, 0.2);
  std::uniform_int_distribution<int32_t> level(0, 255);
  for (const Engine engine : {Engine::QNNPACK, Engine::ONEDNN, Engine::FBGEMM})
    for (const FunctionalOp o : {FunctionalOp::Add, FunctionalOp::AddRelu})
      for (const Shape& shape : {Shape{1, 3, 5, 7}, Shape{2, 64, 9, 9}, Shape{1, 17, 1, 1}}) {
        const int64_t n = numel_of(shape), c = shape[1], hw = shape[2] * shape[3], images = shape[0];
        const QuantParams qa = qp(scale(rng), level(rng)), qb = qp(scale(rng), level(rng)), out = qp(scale(rng), level(rng));
        std::vector<uint8_t> a_bytes(n), b_bytes(n);
        for (int64_t i = 0; i < n; ++i) {
          a_bytes[i] = static_cast<uint8_t>(level(rng));
          b_bytes[i] = static_cast<uint8_t>(level(rng));
        }
        QTensor a{shape, std::vector<int32_t>(n), qa}, b{shape, std::vector<int32_t>(n), qb};
        for (int64_t m = 0; m < images; ++m)
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t k = 0; k < hw; ++k) {
              a.values[(m * c + ch) * hw + k] = a_bytes[(m * hw + k) * c + ch];
              b.values[(m * c + ch) * hw + k] = b_bytes[(m * hw + k) * c + ch];
            }
        a.channels_last = b.channels_last = true;
        QuantizedFunctional integer(op(o), out, engine);
        const QTensor expected = call(integer, a, {b});
        const std::vector<U8ChannelsLast> operands{{shape, qa.scale(), qa.zero_point(), a_bytes.data()},
                                                   {shape, qb.scale(), qb.zero_point(), b_bytes.data()}};
        const auto output = integer.channels_last_output(operands);
        BOOST_REQUIRE(output);
        BOOST_TEST(output->sizes == shape);
        BOOST_TEST(output->scale == out.scale());
        BOOST_TEST(output->zero_point == out.zero_point());
        std::vector<uint8_t> y(n);
        integer.forward_channels_last(operands, y.data());
        int64_t differ = 0;
        for (int64_t m = 0; m < images; ++m)
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t k = 0; k < hw; ++k)
              differ += y[(m * hw + k) * c + ch] != expected.values[(m * c + ch) * hw + k];
        BOOST_TEST(differ == 0, to_string(engine) << " " << op(o).method() << " " << shape_to_string(shape) << ": "
                                                  << differ << " of " << n << " differ from forward");
      }
  QuantizedFunctional mul(op(FunctionalOp::Mul), qp(0.1, 0), Engine::ONEDNN);
  QuantizedFunctional add(op(FunctionalOp::Add), qp(0.1, 0), Engine::ONEDNN);
  const uint8_t bytes[8] = {};
  BOOST_TEST(!mul.channels_last_output({{Shape{1, 2, 2, 1}, 0.1, 0, bytes}, {Shape{1, 2, 2, 1}, 0.1, 0, bytes}}));
  BOOST_TEST(!add.channels_last_output({{Shape{1, 2, 2, 1}, 0.1, 0, bytes}, {Shape{1, 2, 1, 2}, 0.1, 0, bytes}}));
}
