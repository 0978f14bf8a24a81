// A test-only fault-injection seam (as PyTorch c10d has): DT_FAULT_INJECT in the environment,
// "rank=R,step=S,action=A", makes rank R misbehave at the start of optimizer step S:
//   action=sleep:SECONDS   stall (a dead-slow peer; exercises --comm-timeout)
//   action=kill            SIGKILL itself (a crashed node)
//   action=corrupt:NAME    add 1 to parameter NAME (a silently diverging replica)
//   action=nan             make this step's loss NaN
// Unset, it costs one integer comparison per step.
#pragma once
#include <cstdint>
#include <string>

namespace dt::trainer {

struct FaultInjection {
  int rank = -1;
  int64_t step = -1;
  std::string action;    // sleep | kill | corrupt | nan
  std::string argument;  // seconds, or the parameter name

  // Parses DT_FAULT_INJECT; no fault when unset. Throws ConfigError when malformed.
  static FaultInjection from_environment();
  bool fires(int rank_now, int64_t step_now) const { return rank_now == rank && step_now == step; }
};

}  // namespace dt::trainer
