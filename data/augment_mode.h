// The augmentation choices a run names (--augment, --pad-mode), without the augmentation itself,
// so that the configuration can hold them (data/augment.h says what each one does).
#pragma once
#include <array>
#include <utility>
#include "common/enum_names.h"

namespace dt::data {
enum class AugmentMode { None, Standard, Seed };
enum class PadMode { Zero, Reflect };
}  // namespace dt::data

namespace dt {
template <>
struct EnumNames<data::AugmentMode> {
  static constexpr std::array<std::pair<data::AugmentMode, const char*>, 3> values{
      {{data::AugmentMode::Seed, "seed"},
       {data::AugmentMode::Standard, "standard"},
       {data::AugmentMode::None, "none"}}};
};
template <>
struct EnumNames<data::PadMode> {
  static constexpr std::array<std::pair<data::PadMode, const char*>, 2> values{
      {{data::PadMode::Zero, "zero"}, {data::PadMode::Reflect, "reflect"}}};
};
}  // namespace dt
