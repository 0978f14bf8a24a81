// The one precompiled header: the heavy, stable includes every translation unit shares.
#pragma once
#include <torch/torch.h>
#include <spdlog/spdlog.h>
#include <string>
#include <vector>
#include <memory>
