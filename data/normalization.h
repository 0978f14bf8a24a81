// The input normalisation a run trains and evaluates with (--normalize). The seed script feeds its
// network ToTensor() alone (pixel / 255); the standard recipe normalises with the CIFAR-10
// per-channel mean and std. `auto` takes the one the augmentation recipe stands for, so that the
// default run feeds its network what the seed script feeds its own.
#pragma once
#include <array>
#include <utility>
#include "common/enum_names.h"
#include "data/augment_mode.h"

namespace dt::data {

enum class Normalization { Auto, Cifar, None };

// auto -> none for --augment seed (the seed's ToTensor()), cifar otherwise (what every recipe
// used before the choice existed); cifar and none stay as they are.
inline Normalization resolve(Normalization n, AugmentMode augment) {
  if (n != Normalization::Auto) return n;
  return augment == AugmentMode::Seed ? Normalization::None : Normalization::Cifar;
}

}  // namespace dt::data

namespace dt {
template <>
struct EnumNames<data::Normalization> {
  static constexpr std::array<std::pair<data::Normalization, const char*>, 3> values{
      {{data::Normalization::Auto, "auto"},
       {data::Normalization::Cifar, "cifar"},
       {data::Normalization::None, "none"}}};
};
}  // namespace dt
