#pragma once
// QConfig: which observer watches activations and which watches weights, as PyTorch's
// torch.ao.quantization.QConfig. The named configs below are PyTorch 1.13's, with the
// same observers and arguments.
#include <string>

#include "core/engines.h"
#include "core/observers.h"

namespace qconform {

struct QConfig {
  std::string name;  // "default_dynamic_qconfig", ... (for messages and reports)
  ObserverFactory activation;
  ObserverFactory weight;

  // Dynamic configs quantize activations per call (PlaceholderObserver with compute_dtype).
  bool is_dynamic() const;
  DType weight_dtype() const;
};

// Observer factories, as torch.ao.quantization.observer names them.
ObserverFactory min_max_observer(const ObserverOptions& options);
ObserverFactory moving_average_min_max_observer(const ObserverOptions& options);
ObserverFactory per_channel_min_max_observer(const ObserverOptions& options);
ObserverFactory moving_average_per_channel_min_max_observer(const ObserverOptions& options);
ObserverFactory placeholder_observer(DType dtype, std::optional<DType> compute_dtype = std::nullopt);
ObserverFactory fixed_qparams_observer(float scale, int64_t zero_point);

ObserverFactory default_observer();                     // MinMax, quint8, [0, 127]
ObserverFactory default_weight_observer();              // MinMax, qint8, per_tensor_symmetric
ObserverFactory default_per_channel_weight_observer();  // PerChannelMinMax, qint8, symmetric
ObserverFactory default_dynamic_quant_observer();       // Placeholder quint8 -> quint8 per call

ObserverFactory histogram_observer(const ObserverOptions& options, int64_t bins = 2048);
// FakeQuantize.with_args(observer=..., ...) and FusedMovingAvgObsFakeQuantize.with_args(...).
ObserverFactory fake_quantize(ObserverFactory observer, bool fused);

ObserverFactory default_fake_quant();                      // MovingAverage, quint8 [0, 255], reduce_range
ObserverFactory default_weight_fake_quant();               // MovingAverage, qint8 symmetric
ObserverFactory default_per_channel_weight_fake_quant();   // MovingAveragePerChannel, qint8 symmetric
ObserverFactory default_fused_act_fake_quant();
ObserverFactory default_fused_wt_fake_quant();
ObserverFactory default_fused_per_channel_wt_fake_quant();

QConfig default_qconfig();
QConfig default_per_channel_qconfig();
QConfig default_dynamic_qconfig();
QConfig per_channel_dynamic_qconfig();
QConfig float16_dynamic_qconfig();
QConfig float_qparams_weight_only_qconfig();
QConfig float_qparams_weight_only_qconfig_4bit();

// torch.ao.quantization.get_default_qconfig(backend) (version 0) and
// get_default_qat_qconfig(backend, version) for version 0 (FakeQuantize) and 1 (fused).
QConfig get_default_qconfig(Engine engine);
QConfig get_default_qat_qconfig(Engine engine, int version = 1);

// Looks a named config up ("default_dynamic_qconfig", ...); throws Error listing the names.
QConfig qconfig_by_name(const std::string& name);

}  // namespace qconform
