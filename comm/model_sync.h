// Model synchronisation across replicas: rank 0's weights and buffers onto every rank, the way
// DDP starts (broadcast_model) and keeps BatchNorm statistics in step (broadcast_buffers).
// Gradients are the Reducer's (reducer.h).
#pragma once
#include <torch/torch.h>
#include "comm/communicator.h"

namespace dt::comm {

// Broadcasts rank 0's parameters and buffers to every rank, after checking that every rank's
// model has the same structure (tensor count, names, shapes, dtypes); a mismatch names the first
// differing rank and both structures' counts and hashes.
void broadcast_model(torch::nn::Module& module, Communicator& comm);
// Rank 0's buffers (BatchNorm running statistics) onto every rank, as DDP's broadcast_buffers.
void broadcast_buffers(torch::nn::Module& module, Communicator& comm);

}  // namespace dt::comm
