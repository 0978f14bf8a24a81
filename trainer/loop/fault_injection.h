// A test-only fault-injection seam (as PyTorch c10d has): DT_FAULT_INJECT in the environment,
// "rank=R,step=S,action=A", makes rank R misbehave at the start of optimizer step S:
//   action=sleep:SECONDS   stall (a dead-slow peer; exercises --comm-timeout)
//   action=kill            SIGKILL itself (a crashed node)
//   action=corrupt:NAME    add 1 to parameter NAME (a silently diverging replica)
//   action=nan             make this step's loss NaN
// Unset, it costs one integer comparison per step.
#pragma once
#include <torch/torch.h>
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include "common/enum_names.h"

namespace dt::trainer {

enum class FaultAction { None, Sleep, Kill, Corrupt, Nan };

struct FaultInjection {
  int rank = -1;
  int64_t step = -1;
  FaultAction action = FaultAction::None;
  std::string argument;  // the parameter name of corrupt
  double seconds = 0;    // of sleep

  // Parses DT_FAULT_INJECT strictly (every number whole, sleep's seconds and corrupt's name
  // present, no argument where none belongs); no fault when unset. Throws ConfigError.
  static FaultInjection from_environment();
  // Throws ConfigError when the fault could never fire as written: its rank is outside the world
  // or corrupt names no parameter (`has_parameter`) -- a test that silently injects nothing
  // would pass for the wrong reason.
  template <class HasParameter>
  void check_against(int world_size, HasParameter has_parameter) const {
    if (action == FaultAction::None) return;
    if (rank >= world_size) invalid("rank " + std::to_string(rank) + " is outside a world of " +
                                    std::to_string(world_size));
    if (action == FaultAction::Corrupt && !has_parameter(argument)) {
      invalid("the model has no parameter '" + argument + "'");
    }
  }
  bool fires(int rank_now, int64_t step_now) const { return rank_now == rank && step_now == step; }
  // The seam, called once at the start of each optimizer step: stalls, kills this process or
  // corrupts a parameter of `net` when this is the fault's rank and step.
  void before_step(int rank_now, int64_t step_now, torch::nn::Module& net) const;
  // Whether this step's loss is to be made NaN (action=nan).
  bool poisons_loss(int rank_now, int64_t step_now) const {
    return action == FaultAction::Nan && fires(rank_now, step_now);
  }

 private:
  [[noreturn]] static void invalid(const std::string& why);
};

}  // namespace dt::trainer

namespace dt {
template <>
struct EnumNames<trainer::FaultAction> {
  static constexpr std::array<std::pair<trainer::FaultAction, const char*>, 4> values{
      {{trainer::FaultAction::Sleep, "sleep"},
       {trainer::FaultAction::Kill, "kill"},
       {trainer::FaultAction::Corrupt, "corrupt"},
       {trainer::FaultAction::Nan, "nan"}}};
};
}  // namespace dt
