// What a trace's reader needs to know about the run besides its events ("otherData"): the model,
// batch and world, the execution settings that set a step's cost, every parameter (name, size),
// every BatchNorm layer (name, channels; whether synchronised, and over how many ranks) and the
// gradient buckets. launch/bench/scaling_model.py builds its step profile from these.
#pragma once
#include <string>
#include <torch/torch.h>
#include "comm/reducer.h"
#include "trainer/config/config.h"
#include "trainer/config/run_context.h"

namespace dt::trainer {

// A JSON object, on one line. `reducer` is null in a world of one.
std::string trace_facts(const Config& config, const RunContext& ctx, torch::nn::Module& net,
                        const comm::Reducer* reducer);

}  // namespace dt::trainer
