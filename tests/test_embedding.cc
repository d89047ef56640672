// Weight-only embeddings: the nnq modules' names, reprs and state_dicts; from_float's
// refusals; PyTorch 1.13's quantized EmbeddingBag summing whatever its mode; the quint4x2
// rows' half-rounded scale and bias; bad input refused in LibTorch's words on both sides; and
// the calls that crash LibTorch 1.13, refused before they reach it.
#define BOOST_TEST_MODULE test_embedding
#include <boost/test/unit_test.hpp>

#include <random>

#include "core/float/embedding.h"
#include "core/qconfig.h"
#include "core/quantize.h"
#include "quantized/kernels/embedding.h"
#include "quantized/libtorch/weight_only_embedding.h"
#include "quantized/weight_only/embedding.h"
#include "reference/embedding.h"
#include "tests/support.h"

using namespace qconform;

namespace {

Tensor randn(const Shape& shape, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  Tensor t(shape);
  for (float& v : t.data) v = normal(rng);
  return t;
}

std::unique_ptr<FloatEmbedding> float_module(bool bag, EmbeddingBagMode mode, bool four_bit, uint64_t seed = 1) {
  EmbeddingOptions o;
  o.num_embeddings = 10;
  o.embedding_dim = 12;
  o.bag = bag;
  o.mode = mode;
  auto m = std::make_unique<FloatEmbedding>(o, randn({10, 12}, seed));
  m->qconfig = four_bit ? float_qparams_weight_only_qconfig_4bit() : float_qparams_weight_only_qconfig();
  return m;
}

Tensor run(Module& m, const IntTensor& indices, std::vector<Value> others = {}) {
  return std::get<Tensor>(m(ModuleInput{indices, std::nullopt, std::move(others)}).output);
}

const IntTensor kIndices{{8}, {1, 2, 4, 5, 4, 3, 2, 9}, false};
const IntTensor kOffsets{{2}, {0, 4}, false};

}  // namespace

BOOST_AUTO_TEST_CASE(names_reprs_and_state_dicts_are_pytorchs) {
  for (bool bag : {false, true}) {
    auto m = float_module(bag, EmbeddingBagMode::Sum, false);
    auto integer = QuantizedEmbedding::from_float(*m, Engine::QNNPACK);
    auto libtorch = libtorch_embedding_from_float(*m, Engine::QNNPACK);
    const std::string name = bag ? "QuantizedEmbeddingBag" : "QuantizedEmbedding";
    for (Module* q : {static_cast<Module*>(integer.get()), libtorch.get()}) {
      BOOST_TEST(q->repr() == name + "(num_embeddings=10, embedding_dim=12, dtype=torch.quint8, "
                                     "qscheme=torch.per_channel_affine_float_qparams)");
      const StateDict s = q->state_dict();
      BOOST_TEST((s.keys() == std::vector<std::string>{"_packed_params.dtype", "_packed_params._packed_weight"}));
      BOOST_TEST(s.versions.at("") == 1);
      BOOST_TEST(s.versions.at("_packed_params") == 1);
    }
    auto reference = ReferenceEmbedding::from_float(*m);
    BOOST_TEST(reference->name() == name + "(Reference)");
  }
}

BOOST_AUTO_TEST_CASE(from_float_refuses_what_pytorch_refuses) {
  auto m = float_module(false, EmbeddingBagMode::Sum, false);
  m->qconfig = default_qconfig();
  testing::expect_error([&] { QuantizedEmbedding::from_float(*m, Engine::QNNPACK); },
                        "Embedding quantization is only supported with float_qparams_weight_only_qconfig.");
  m->qconfig.reset();
  testing::expect_error([&] { QuantizedEmbedding::from_float(*m, Engine::QNNPACK); },
                        "Embedding input float module must have qconfig defined");
}

// nnq.EmbeddingBag passes mode 0 to its op: mean and max modules sum, on both integer sides.
BOOST_AUTO_TEST_CASE(quantized_embedding_bag_sums_whatever_its_mode) {
  auto sum_module = float_module(true, EmbeddingBagMode::Sum, false);
  auto integer_sum = QuantizedEmbedding::from_float(*sum_module, Engine::QNNPACK);
  const Tensor sums = run(*integer_sum, kIndices, {kOffsets});
  for (EmbeddingBagMode mode : {EmbeddingBagMode::Mean, EmbeddingBagMode::Max}) {
    auto m = float_module(true, mode, false);
    auto integer = QuantizedEmbedding::from_float(*m, Engine::QNNPACK);
    auto libtorch = libtorch_embedding_from_float(*m, Engine::QNNPACK);
    const Tensor a = run(*integer, kIndices, {kOffsets}), b = run(*libtorch, kIndices, {kOffsets});
    BOOST_TEST((a == b));
    BOOST_TEST((a == sums), to_string(mode) << " gives the sums");
    const Tensor r = run(*ReferenceEmbedding::from_float(*m), kIndices, {kOffsets});  // F.embedding_bag's mean / max
    BOOST_TEST(!(r == sums));
  }
}

// quint4x2 rows store scale and bias in half: where a row's scale is not a half, the integer
// side must round it to match LibTorch, and the unrounded form differs.
BOOST_AUTO_TEST_CASE(four_bit_rows_keep_half_scale_and_bias) {
  auto m = float_module(true, EmbeddingBagMode::Sum, true, 5);
  auto integer = QuantizedEmbedding::from_float(*m, Engine::ONEDNN);
  auto libtorch = libtorch_embedding_from_float(*m, Engine::ONEDNN);
  const Tensor a = run(*integer, kIndices, {kOffsets}), b = run(*libtorch, kIndices, {kOffsets});
  BOOST_TEST((a == b));
  kernels::PackedEmbeddingRows rows = kernels::pack_embedding_rows(integer->weight());
  const QuantParams& qp = integer->weight().qparams;
  int not_half = 0;
  for (int64_t r = 0; r < rows.rows; ++r) not_half += rows.scale[r] != static_cast<float>(qp.scales[r]);
  BOOST_TEST(not_half > 0, "the scales should not all be halves already");
  for (int64_t r = 0; r < rows.rows; ++r) rows.scale[r] = static_cast<float>(qp.scales[r]);  // unrounded
  const Tensor unrounded = kernels::quantized_embedding_lookup(rows, kIndices, &kOffsets, nullptr, false, false);
  BOOST_TEST(!(unrounded == b));
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused_in_libtorchs_words_on_both_sides) {
  for (bool four_bit : {false, true}) {
    auto m = float_module(true, EmbeddingBagMode::Sum, four_bit);
    auto integer = QuantizedEmbedding::from_float(*m, Engine::QNNPACK);
    auto libtorch = libtorch_embedding_from_float(*m, Engine::QNNPACK);
    const std::string op = four_bit ? "embedding_bag_4bit/embedding_bag_2bit" : "embedding_bag_byte";
    const auto both = [&](const IntTensor& indices, std::vector<Value> others, const std::string& message) {
      for (Module* q : {static_cast<Module*>(integer.get()), libtorch.get()})
        testing::expect_error([&] { run(*q, indices, others); }, message);
    };
    both(IntTensor{{2}, {1, 10}, false}, {IntTensor{{1}, {0}, false}}, "Invalid indices data");
    both(IntTensor{{2}, {1, -1}, false}, {IntTensor{{1}, {0}, false}}, "Invalid indices data");
    both(IntTensor{{4}, {1, 2, 3, 4}, false}, {IntTensor{{3}, {0, 3, 1}, false}},
         "Expect the lengths data to be less than indices size");
    both(IntTensor{{4}, {1, 2, 3, 4}, false}, {IntTensor{{2}, {0, 6}, false}},
         "Expect the lengths data to be less than indices size");
    both(IntTensor{{2, 2}, {1, 2, 3, 4}, false}, {IntTensor{{2}, {0, 1}, false}},
         op + " operator: input is 2D, then offsets has to be None");
    both(IntTensor{{1, 1, 2}, {1, 2}, false}, {}, "qembedding/qembedding_bag operator supports 1 or 2d indices, got 3");
    // What crashes LibTorch 1.13 is refused before it is called, on both sides alike.
    both(IntTensor{{0}, {}, false}, {IntTensor{{0}, {}, false}}, "LibTorch 1.13 reads its first element and crashes");
    both(IntTensor{{0, 3}, {}, false}, {}, "LibTorch 1.13 reads its first element and crashes");
  }
  auto m = float_module(false, EmbeddingBagMode::Sum, false);
  auto integer = QuantizedEmbedding::from_float(*m, Engine::QNNPACK);
  auto libtorch = libtorch_embedding_from_float(*m, Engine::QNNPACK);
  for (Module* q : {static_cast<Module*>(integer.get()), libtorch.get()}) {
    testing::expect_error([&] { run(*q, IntTensor{{1}, {10}, false}); }, "Invalid indices data");
    testing::expect_error([&] { run(*q, IntTensor{{0}, {}, false}); }, "LibTorch 1.13 reads its first element");
  }
  // An offset not at 0 is not refused by the quantized op: it walks the indices from the start.
  auto bag = float_module(true, EmbeddingBagMode::Sum, false);
  auto a = QuantizedEmbedding::from_float(*bag, Engine::QNNPACK);
  auto b = libtorch_embedding_from_float(*bag, Engine::QNNPACK);
  BOOST_TEST((run(*a, kIndices, {IntTensor{{2}, {1, 2}, false}}) == run(*b, kIndices, {IntTensor{{2}, {1, 2}, false}})));
}

// pruned_weights: indices through a compressed_indices_mapping onto the kept rows (-1: none),
// LibTorch's checks in its words, and its "not pruned" convention for a mapping of one 0.
BOOST_AUTO_TEST_CASE(pruned_weights_map_indices_onto_the_kept_rows) {
  for (bool four_bit : {false, true}) {
    auto m = float_module(true, EmbeddingBagMode::Sum, four_bit, 7);
    auto options = m->options();
    options.pruned_weights = true;
    FloatEmbedding pruned_float(options, m->weight());
    pruned_float.qconfig = m->qconfig;
    auto integer = QuantizedEmbedding::from_float(pruned_float, Engine::QNNPACK);
    auto libtorch = libtorch_embedding_from_float(pruned_float, Engine::QNNPACK);
    const IntTensor mapping{{12}, {0, -1, 1, 2, -1, 3, 4, 5, -1, 9, 8, 7}, true};
    const IntTensor indices{{6}, {0, 1, 2, 11, 4, 8}, false};
    const IntTensor offsets{{2}, {0, 3}, false};
    const Tensor a = run(*integer, indices, {offsets, mapping}), b = run(*libtorch, indices, {offsets, mapping});
    BOOST_TEST((a == b));
    // Pruned rows add nothing: the first bag is rows 0 and 1 (index 1 is pruned, index 2 is row 1).
    const Tensor kept = run(*QuantizedEmbedding::from_float(*m, Engine::QNNPACK), IntTensor{{2}, {0, 1}, false},
                            {IntTensor{{1}, {0}, false}});
    for (int64_t j = 0; j < 12; ++j) BOOST_TEST(a.data[j] == kept.data[j]);
    for (Module* q : {static_cast<Module*>(integer.get()), libtorch.get()}) {
      testing::expect_error([&] { run(*q, IntTensor{{1}, {12}, false}, {IntTensor{{1}, {0}, false}, mapping}); },
                            "Invalid indices data for Sparse Op.");
      IntTensor long_mapping = mapping;
      long_mapping.is_int32 = false;
      testing::expect_error([&] { run(*q, indices, {offsets, long_mapping}); }, "expected scalar type Int but found Long");
      testing::expect_error([&] { run(*q, indices, {offsets}); }, "bad optional access");
      // A mapping of one 0 means "not pruned".
      BOOST_TEST((run(*q, IntTensor{{2}, {0, 1}, false}, {IntTensor{{1}, {0}, false}, IntTensor{{1}, {0}, true}}) ==
                  kept));
    }
    // 2-d indices: PyTorch passes offsets as None before the mapping (and per_sample_weights
    // beside them); the two rows are the two bags above.
    const IntTensor rows{{2, 3}, {0, 1, 2, 11, 4, 8}, false};
    const Tensor weights(Shape{2, 3}, {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f});
    const Tensor c = run(*integer, rows, {AbsentOperand{}, mapping}), d = run(*libtorch, rows, {AbsentOperand{}, mapping});
    BOOST_TEST((c == d));
    BOOST_TEST((c == a), "2-d rows give the bags of the offsets [0, 3]");
    const Tensor e = run(*integer, rows, {AbsentOperand{}, weights, mapping});
    BOOST_TEST((e == run(*libtorch, rows, {AbsentOperand{}, weights, mapping})));
    BOOST_TEST(!(e == c), "per_sample_weights change the sums");
    for (Module* q : {static_cast<Module*>(integer.get()), libtorch.get()})
      testing::expect_error([&] { run(*q, rows, {mapping, AbsentOperand{}}); },
                            "its integer operands are offsets (or None) and a compressed_indices_mapping");
  }
}
