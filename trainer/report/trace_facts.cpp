#include "trainer/report/trace_facts.h"

#include <thread>
#include "model/batch_norm.h"
#include "trainer/report/json_writer.h"

namespace dt::trainer {

std::string trace_facts(const Config& c, const RunContext& ctx, torch::nn::Module& net,
                        const comm::Reducer* reducer) {
  Json parameters = Json::array();
  for (const auto& p : net.named_parameters()) {
    parameters.push_back({{"name", p.key()}, {"numel", p.value().numel()},
                          {"element_bytes", int64_t(p.value().element_size())}});
  }
  Json batch_norms = Json::array();
  for (const auto& m : net.named_modules()) {
    if (const auto* bn = m.value()->as<model::BatchNormImpl>()) {
      batch_norms.push_back({{"name", m.key()}, {"channels", bn->options.num_features()}});
    }
  }
  Json buckets = Json::array();
  if (reducer) {
    for (int64_t elements : reducer->bucket_sizes()) buckets.push_back(elements);
  }
  const bool synced = model::synced_batch_norm_count(net) > 0;
  const int sync_group = !synced ? 0 : ctx.sync_bn_comm ? ctx.sync_bn_comm->world_size()
                                                          : ctx.world_size;
  const Json facts = {
      {"model", c.model},
      {"world_size", ctx.world_size},
      {"batch_per_rank", c.batch_size},
      {"accumulate", c.accumulate},
      {"device", ctx.device.str()},
      {"precision", name_of(c.precision)},
      {"threads", torch::get_num_threads()},
      {"cores", int64_t(std::thread::hardware_concurrency())},
      {"sync_bn_group", sync_group},  // 0: per-rank BatchNorm
      {"overlap", c.overlap},
      {"bucket_mb", c.bucket_mb},
      {"first_bucket_mb", comm::ReducerOptions().first_bucket_mb},
      {"parameters", parameters},
      {"batch_norm_layers", batch_norms},
      {"buckets", buckets},  // elements per bucket, as the Reducer laid them out (world > 1)
  };
  return dump_line(facts);
}

}  // namespace dt::trainer
