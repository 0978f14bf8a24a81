// Preemption: SIGTERM and SIGUSR1 (how Slurm and other schedulers ask a job to stop) set a flag
// that the trainer polls at each step boundary; all ranks agree, rank 0 writes last.pt, and the
// run exits cleanly (code 0) with a message saying how to resume.
#pragma once

namespace dt::launch {

void install_stop_handlers();
bool stop_requested();

}  // namespace dt::launch
