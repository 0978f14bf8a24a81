#include "trainer/loop/mixed_precision.h"

#include <ATen/autocast_mode.h>

namespace dt::trainer {

MixedPrecision::MixedPrecision(torch::Device device, bool enabled)
    : enabled_(enabled), type_(device.type()) {
  if (!enabled_) return;
  previous_enabled_ = at::autocast::is_autocast_enabled(type_);
  previous_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_dtype(type_, at::kBFloat16);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::increment_nesting();
}

MixedPrecision::~MixedPrecision() {
  if (!enabled_) return;
  // The bf16 weight copies live for one forward: the next one must see the updated weights.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, previous_enabled_);
  at::autocast::set_autocast_dtype(type_, previous_dtype_);
}

}  // namespace dt::trainer
