#include "trainer/report/phase_timer.h"

namespace dt::trainer {

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::Data: return "data";
    case Phase::Forward: return "forward";
    case Phase::Backward: return "backward";
    case Phase::Communication: return "exposed_comm";
    case Phase::Optimizer: return "optimizer";
    case Phase::DeviceWait: return "device_wait";
    case Phase::Evaluation: return "evaluation";
    case Phase::Checkpoint: return "checkpoint";
    case Phase::Verify: return "replica_check";
    case Phase::Count: break;
  }
  return "?";
}

double PhaseTimer::step_seconds() const {
  return seconds(Phase::Data) + seconds(Phase::Forward) + seconds(Phase::Backward) +
         seconds(Phase::Communication) + seconds(Phase::Optimizer) + seconds(Phase::DeviceWait);
}

}  // namespace dt::trainer
