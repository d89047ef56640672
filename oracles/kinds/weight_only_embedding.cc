// weight_only.Embedding, weight_only.EmbeddingBag: random cases, bounds and refusals
// (nnq.Embedding / nnq.EmbeddingBag with float_qparams_weight_only_qconfig(_4bit): the weight
// quantized per row with float qparams, quint8 or quint4x2; activations stay float).
#include "oracles/kinds/families.h"

#include <cfloat>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/float/embedding.h"
#include "core/qconfig.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/libtorch/weight_only_embedding.h"
#include "quantized/weight_only/embedding.h"
#include "reference/embedding.h"

namespace qconform::kinds {
namespace {

constexpr EmbeddingBagMode kModes[] = {EmbeddingBagMode::Sum, EmbeddingBagMode::Mean, EmbeddingBagMode::Max};

EmbeddingOptions case_options(bool bag, const CaseConfig& config) {
  EmbeddingOptions o;
  o.bag = bag;
  o.num_embeddings = config.get("num_embeddings");
  // quint4x2 rows hold two values per byte: LibTorch's 4-bit kernel needs an even dimension.
  o.embedding_dim = config.get("embedding_dim") * (config.get("four_bit") ? 2 : 1);
  if (bag) {
    o.mode = kModes[config.get("mode")];
    o.include_last_offset = config.get("include_last_offset") != 0;
    if (const int64_t p = config.get("padding_idx"); p > 0) o.padding_idx = (p - 1) % o.num_embeddings;
    o.pruned_weights = has_parameter(config, "pruned") && config.get("pruned") != 0;
  }
  return o;
}

IntTensor random_indices(const Shape& shape, int64_t num_embeddings, std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> index(0, num_embeddings - 1);
  IntTensor t{shape, std::vector<int64_t>(numel_of(shape)), false};
  for (int64_t& v : t.values) v = index(rng);
  return t;
}

Case make_embedding_case(const CaseConfig& config, bool bag) {
  std::mt19937_64 rng(config.data_seed);
  const EmbeddingOptions o = case_options(bag, config);
  const float magnitude = static_cast<float>(std::pow(10.0, std::uniform_real_distribution<double>(-2, 1)(rng)));
  auto module = std::make_unique<FloatEmbedding>(o, random_tensor({o.num_embeddings, o.embedding_dim}, magnitude, rng));
  module->qconfig = config.get("four_bit") ? float_qparams_weight_only_qconfig_4bit() : float_qparams_weight_only_qconfig();
  ModuleInput input{IntTensor{}, std::nullopt};
  const int64_t bags = config.get("bags"), per_bag = config.get("per_bag");
  if (!bag) {
    input.input = random_indices(config.get("two_d") ? Shape{bags, per_bag} : Shape{bags * per_bag}, o.num_embeddings, rng);
    return Case{std::move(module), input};
  }
  // Pruned weights: indices into an uncompressed range a mapping sends to the kept rows (-1:
  // pruned). A 2-d call passes offsets as None before the mapping.
  IntTensor mapping{{}, {}, /*is_int32=*/true};
  int64_t index_range = o.num_embeddings;
  if (o.pruned_weights) {
    std::uniform_int_distribution<int64_t> row(-1, o.num_embeddings - 1);
    const int64_t uncompressed = o.num_embeddings + std::uniform_int_distribution<int64_t>(0, 3)(rng);
    for (int64_t u = 0; u < uncompressed; ++u) mapping.values.push_back(row(rng));
    mapping.sizes = {uncompressed};
    index_range = uncompressed;
  }
  if (config.get("two_d")) {
    input.input = random_indices({bags, per_bag}, index_range, rng);
    if (o.pruned_weights) input.others = {AbsentOperand{}, mapping};
  } else {
    // Bags of 0 to 2 per_bag indices, some empty: offsets from 0, non-decreasing.
    std::uniform_int_distribution<int64_t> length(0, 2 * per_bag);
    IntTensor offsets{{bags + (o.include_last_offset ? 1 : 0)}, {}, false};
    int64_t total = 0;
    for (int64_t b = 0; b < bags; ++b) {
      offsets.values.push_back(total);
      total += length(rng);
    }
    if (o.include_last_offset) offsets.values.push_back(total);
    input.input = random_indices({total}, index_range, rng);
    input.others.push_back(offsets);
    if (o.pruned_weights) input.others.push_back(mapping);
  }
  if (config.get("per_sample_weights") && o.mode == EmbeddingBagMode::Sum) {
    const auto& indices = std::get<IntTensor>(input.input);
    input.others.push_back(random_tensor(indices.sizes, 1.0f, rng));
  }
  return Case{std::move(module), input};
}

// Half an ulp of IEEE half at x (subnormals below 2^-14): what rounding a quint4x2 row's scale
// or bias to half can move it.
double half_rounding(double x) {
  const double a = std::abs(x);
  if (a < std::ldexp(1.0, -14)) return std::ldexp(1.0, -25);
  return std::ldexp(1.0, static_cast<int>(std::floor(std::log2(a))) - 11);
}

// Per output element j of a bag (or of one index): M = sum_k |w_k| (|s_k q_kj| + |z_k s_k|)
// + |y_j| (tolerance row weight-only.reference-vs-integer), and for quint4x2 the design term
// sum_k |w_k| (|q_kj| ds_k + db_k).
std::vector<OutputSensitivity> embedding_sensitivity(const Module& module, const ModuleInput& input) {
  const auto& reference = dynamic_cast<const ReferenceEmbedding&>(module);
  const EmbeddingOptions& o = reference.options();
  const QTensor q = reference.get_quantized_weight();
  const Tensor w = reference.get_weight();
  const bool four_bit = q.qparams.dtype == DType::QUInt4x2;
  const int64_t d = o.embedding_dim;
  std::vector<std::pair<int64_t, int64_t>> bags;
  const IntTensor* indices = nullptr;
  const Tensor* weights = nullptr;
  const IntTensor* mapping = nullptr;  // pruned weights
  if (o.bag) {
    BagCall call = bag_operands(input, reference.name());
    float_bags(o, &call);
    bags = call.bags;
    indices = call.indices;
    weights = call.per_sample_weights;
    if (o.pruned_weights) mapping = call.compressed_indices_mapping;
  } else {
    indices = &std::get<IntTensor>(input.input);
    for (int64_t k = 0; k < static_cast<int64_t>(indices->values.size()); ++k) bags.emplace_back(k, k + 1);
  }
  std::vector<OutputSensitivity> out(bags.size() * d);
  for (size_t b = 0; b < bags.size(); ++b)
    for (int64_t j = 0; j < d; ++j) {
      OutputSensitivity& e = out[b * d + j];
      double y = 0;
      for (int64_t k = bags[b].first; k < bags[b].second; ++k) {
        const int64_t i = mapping ? mapping->values[indices->values[k]] : indices->values[k];
        if (i == -1) continue;
        const double wk = weights ? std::abs(weights->data[k]) : 1.0;
        const double s = q.qparams.scales[i], z = q.qparams.zero_points[i], qv = q.values[i * d + j];
        e.magnitude += wk * (std::abs(s * qv) + std::abs(z * s));
        y += (weights ? weights->data[k] : 1.0) * w.data[i * d + j];
        if (four_bit) e.design_quanta += wk * (std::abs(qv) * half_rounding(s) + half_rounding(z * s));
        ++e.terms;
      }
      e.magnitude += std::abs(y);
    }
  return out;
}

std::vector<RefusalCase> embedding_refusals(const CaseConfig& config, bool bag) {
  std::vector<RefusalCase> cases;
  const auto variant = [&](const std::string& name, const std::function<void(Case&, int64_t)>& change) {
    Case c = make_embedding_case(config, bag);
    const int64_t n = dynamic_cast<const FloatEmbedding&>(*c.float_module).options().num_embeddings;
    change(c, n);
    cases.push_back({name, std::move(c)});
  };
  const bool last_offset = bag && config.get("include_last_offset") != 0;
  variant("an index of num_embeddings", [bag, last_offset](Case& c, int64_t n) {
    c.input.input = IntTensor{{2}, {0, n}, false};
    c.input.others.clear();
    // one bag of both
    if (bag) c.input.others.push_back(last_offset ? IntTensor{{2}, {0, 2}, false} : IntTensor{{1}, {0}, false});
  });
  variant("3-d indices", [](Case& c, int64_t) {
    c.input.input = IntTensor{{1, 1, 2}, {0, 0}, false};
    c.input.others.clear();
  });
  if (!bag) return cases;
  variant("1-d indices without offsets", [](Case& c, int64_t) {
    c.input.input = IntTensor{{3}, {0, 0, 0}, false};
    c.input.others.clear();
  });
  variant("2-d indices with offsets", [](Case& c, int64_t) {
    c.input.input = IntTensor{{2, 2}, {0, 0, 0, 0}, false};
    c.input.others = {IntTensor{{2}, {0, 2}, false}};
  });
  // A bag after a step back walks past the indices' end (the kernel checks only that).
  variant("decreasing offsets", [last_offset](Case& c, int64_t) {
    c.input.input = IntTensor{{4}, {0, 0, 0, 0}, false};
    c.input.others = {last_offset ? IntTensor{{4}, {0, 4, 1, 4}, false} : IntTensor{{3}, {0, 4, 1}, false}};
  });
  return cases;
}

// Fixtures: the module's sizes (a bag's mode and include_last_offset) and its weight, the
// integers with their per-row float qparams.
EmbeddingOptions spec_options(bool bag, const ModuleSpec& spec) {
  EmbeddingOptions o;
  o.bag = bag;
  o.num_embeddings = spec.integer("num_embeddings");
  o.embedding_dim = spec.integer("embedding_dim");
  if (bag) {
    const std::string mode = spec.text("mode");
    if (mode == "sum") o.mode = EmbeddingBagMode::Sum;
    else if (mode == "mean") o.mode = EmbeddingBagMode::Mean;
    else if (mode == "max") o.mode = EmbeddingBagMode::Max;
    else throw Error(spec.kind + " fixture: mode must be sum, mean or max, not '" + mode + "'");
    o.include_last_offset = spec.flag("include_last_offset");
    o.pruned_weights = spec.has("pruned_weights") && spec.flag("pruned_weights");
  }
  return o;
}

QTensor spec_embedding_weight(const EmbeddingOptions& o, const ModuleSpec& spec) {
  const QTensor& w = spec.parameters.at("weight").as<QTensor>("weight");
  check_spec_shape(spec, "weight", w.sizes, {o.num_embeddings, o.embedding_dim});
  if (w.qparams.qscheme != QScheme::PerChannelAffineFloatQParams)
    throw Error(spec.kind + " fixture: the weight must be quantized per row with float qparams, not " +
                w.qparams.to_string());
  return w;
}

}  // namespace

ModuleKind weight_only_embedding_kind(bool bag) {
  ModuleKind kind;
  EmbeddingOptions named;
  named.bag = bag;
  kind.float_name = named.float_name();
  kind.key = "weight_only." + kind.float_name;
  kind.family = Family::WeightOnly;
  kind.engine_op = EngineOp::WeightOnlyEmbedding;
  kind.structure = Structure::Reduction;
  const std::string integer_name = "Quantized" + kind.float_name;
  const std::vector<Engine> engines = static_engines(EngineOp::WeightOnlyEmbedding);
  kind.implementations.push_back({Implementation::Reference, integer_name + "(Reference)", {},
                                  [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
                                    return ReferenceEmbedding::from_float(dynamic_cast<const FloatEmbedding&>(m));
                                  },
                                  nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, integer_name, engines,
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedEmbedding::from_float(dynamic_cast<const FloatEmbedding&>(m), e);
       },
       [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedEmbedding::from_reference(dynamic_cast<const ReferenceEmbedding&>(r), e);
       }});
  kind.implementations.push_back({Implementation::LibTorch, integer_name, engines,
                                  [](const Module& m, const EngineProfile& e) {
                                    return libtorch_embedding_from_float(dynamic_cast<const FloatEmbedding&>(m), e);
                                  },
                                  [](const Module& r, const EngineProfile& e) {
                                    return libtorch_embedding_from_reference(dynamic_cast<const ReferenceEmbedding&>(r),
                                                                             e);
                                  }});
  kind.case_parameters = {
      {"num_embeddings", 1, 20, "rows of the weight"},
      {"embedding_dim", 1, 9, "columns (doubled for quint4x2)"},
      {"four_bit", 0, 1, "1: quint4x2 (float_qparams_weight_only_qconfig_4bit), else quint8"},
      {"bags", 1, 5, bag ? "bags" : "rows of indices"},
      {"per_bag", 1, 4, bag ? "indices per bag (2-d), half the largest bag (1-d)" : "indices per row"},
      {"two_d", 0, 1, "1: 2-d indices"},
  };
  if (bag) {
    kind.case_parameters.push_back({"mode", 0, 2, "mode: sum, mean, max"});
    kind.case_parameters.push_back({"include_last_offset", 0, 1, "1: offsets end with the indices' length"});
    kind.case_parameters.push_back({"per_sample_weights", 0, 1, "1: per_sample_weights (mode sum only)"});
    kind.case_parameters.push_back({"padding_idx", 0, 3, "0: none, else a row index"});
    kind.case_parameters.push_back({"pruned", 0, 1, "1: pruned_weights, with a compressed_indices_mapping"});
    // PyTorch 1.13's nnq.EmbeddingBag passes mode 0 and no padding_idx to its op.
    kind.engine_deviation = [](const Module& reference, Engine) -> std::optional<std::string> {
      const EmbeddingOptions& o = dynamic_cast<const ReferenceEmbedding&>(reference).options();
      if (o.mode == EmbeddingBagMode::Sum && !o.padding_idx) return std::nullopt;
      return "PyTorch 1.13's quantized EmbeddingBag passes neither its mode nor its padding_idx to the op: every "
             "bag is the sum of all its rows";
    };
  }
  kind.make_case = [bag](const CaseConfig& config) { return make_embedding_case(config, bag); };
  kind.sensitivity = embedding_sensitivity;
  kind.refusal_cases = [bag](const CaseConfig& config) { return embedding_refusals(config, bag); };
  kind.reference_from_spec = [bag](const ModuleSpec& spec) -> std::unique_ptr<Module> {
    const EmbeddingOptions o = spec_options(bag, spec);
    const QTensor w = spec_embedding_weight(o, spec);
    return std::make_unique<ReferenceEmbedding>(o, dequantize(w), w.qparams);
  };
  kind.quantized_from_spec = [bag](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
    const EmbeddingOptions o = spec_options(bag, spec);
    return std::make_unique<QuantizedEmbedding>(o, spec_embedding_weight(o, spec), engine);
  };
  // prepare observes them (their qconfig's activation observer is a float placeholder, which
  // from_float ignores), and both PyTorch's static and dynamic mappings convert them.
  return kind;
}

}  // namespace qconform::kinds
