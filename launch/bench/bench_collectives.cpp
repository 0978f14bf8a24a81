// bench_collectives: what one collective costs on this machine's transport, the input of the
// scaling model's alpha-beta fit (launch/bench/scaling_model.py calibrate). Under mpirun:
//
//   mpirun -np N build/launch/bench_collectives [--group G] [--reps R] [--segment-us US] > out.json
//
// It goes through the trainer's own Communicator on CPU tensors (MPI), float32. First a compute
// segment (a real layer, repeated to about --segment-us) on rank 0 alone and then on every rank
// at once: their ratio is what sharing the machine costs compute. Then, for all_reduce and
// all_gather over message sizes from 4 B to 4 MiB per rank:
//   blocking/lockstep   back-to-back blocking calls (SyncBatchNorm's path), the slowest rank's
//                       time per call: the latency and bandwidth the transport itself gives;
//   async/lockstep      the asynchronous form waited with the deadline (the gradient buckets'
//                       path: MPI_Iallreduce, polled);
//   blocking/segmented  each call after a compute segment of about --segment-us on every rank,
//                       timed as (iteration - segment on all at once; the median of 7 alternating
//                       blocks of each): what a blocking collective costs
//                       inside a step, where ranks arrive at different moments and, with more
//                       ranks than cores, take turns on a core.
// With --group G the collectives run on the communicators of G consecutive ranks
// (--sync-bn-group's). Every result is checked against its known value: a wrong one exits 1.
// Prints one JSON object on rank 0's stdout and a table on its stderr.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "comm/world.h"

namespace {

using Clock = std::chrono::steady_clock;
using dt::comm::Communicator;

struct Options {
  int group = 0;  // 0: the whole world
  int reps = 200;
  double segment_us = 1500;  // about one resnet14 layer's forward or backward on one core
  std::vector<int64_t> bytes = {4, 64, 512, 4096, 32768, 262144, 1048576, 4194304};
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--group") {
      o.group = std::stoi(value());
    } else if (a == "--reps") {
      o.reps = std::stoi(value());
    } else if (a == "--segment-us") {
      o.segment_us = std::stod(value());
    } else {
      throw std::invalid_argument("unknown argument " + a +
                                  " (--group G, --reps R, --segment-us US)");
    }
  }
  if (o.reps < 10 || o.segment_us <= 0 || o.group < 0) {
    throw std::invalid_argument("--reps must be >= 10, --segment-us > 0, --group >= 0");
  }
  return o;
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A compute segment of real work with a layer's mix of arithmetic and memory traffic: resnet14's
// first-stage 3x3 convolution, BatchNorm and ReLU (forward, batch 30, 16 channels,
// channels_last), repeated `repeats` times.
class Segment {
 public:
  Segment()
      : x_(torch::randn({30, 16, 32, 32}).contiguous(torch::MemoryFormat::ChannelsLast)),
        w_(torch::randn({16, 16, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast)),
        gamma_(torch::rand({16}) + 0.5), beta_(torch::randn({16})) {
    for (int i = 0; i < 3; ++i) run_once();  // oneDNN picks and caches its kernel
  }
  void set_repeats(int r) { repeats_ = std::max(1, r); }
  void run() {
    for (int i = 0; i < repeats_; ++i) run_once();
  }

 private:
  void run_once() {
    y_ = torch::batch_norm(torch::conv2d(x_, w_, {}, 1, 1), gamma_, beta_, {}, {}, true, 0.1, 1e-5,
                           false).relu_();
  }
  torch::Tensor x_, w_, gamma_, beta_, y_;
  int repeats_ = 1;
};

enum class Op { AllReduce, AllGather };
enum class Path { Blocking, Async };

// One collective on fresh rank-seeded data, checked: all_reduce sums (rank + 1) * base over the
// group; all_gather's row r is group rank r's input.
class Call {
 public:
  Call(Communicator& comm, Op op, int64_t bytes)
      : comm_(comm), op_(op), n_(std::max<int64_t>(1, bytes / 4)),
        base_(torch::randint(0, 1000, {n_}, torch::kInt64).to(torch::kFloat32)) {
    comm_.broadcast(base_);  // the same base everywhere, so every rank knows the answer
    input_ = base_ * float(comm_.rank() + 1);
  }
  void run(Path path) {
    if (op_ == Op::AllReduce) {
      work_ = input_.clone();
      if (path == Path::Blocking) {
        comm_.all_reduce(work_);
      } else {
        comm_.all_reduce_async(work_)->wait();
      }
    } else {
      if (path == Path::Blocking) {
        work_ = comm_.all_gather(input_);
      } else {
        work_ = torch::empty({comm_.world_size(), n_});
        comm_.all_gather_async(work_, input_)->wait();
      }
    }
  }
  bool correct() const {
    const int g = comm_.world_size();
    if (op_ == Op::AllReduce) return work_.equal(base_ * float(g * (g + 1) / 2));
    auto expected = torch::arange(1, g + 1, torch::kFloat32).unsqueeze(1) * base_.unsqueeze(0);
    return work_.view({g, n_}).equal(expected);
  }

 private:
  Communicator& comm_;
  Op op_;
  int64_t n_;
  torch::Tensor base_, input_, work_;
};

struct Result {
  std::string op, path, mode;
  int64_t bytes;
  double us;
};

// The slowest rank's mean seconds (over the world, so every group's ranks count).
double slowest(Communicator& world, double seconds) {
  auto t = torch::tensor({seconds}, torch::kFloat64);
  world.all_reduce(t, dt::comm::ReduceOp::Max);
  return t.item<double>();
}

int reps_for(const Options& o, int64_t bytes) {
  return bytes >= 1048576 ? std::max(10, o.reps / 10) : o.reps;
}

double time_lockstep(Communicator& world, Communicator& comm, Call& call, Path path, int reps) {
  for (int i = 0; i < 5; ++i) call.run(path);
  world.barrier();
  const auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) call.run(path);
  return slowest(world, seconds_since(t0) / reps);
}

// Rank 0 computes while the others wait asleep (the asynchronous wait sleeps between polls, so
// they leave the cores to it): one rank's segment time on an otherwise idle machine.
double time_segment_solo(Communicator& world, Segment& segment, int reps) {
  auto done = torch::ones({1});
  world.barrier();
  double s = 0;
  if (world.rank() == 0) {
    const auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) segment.run();
    s = seconds_since(t0) / reps;
  }
  world.all_reduce_async(done)->wait();
  return slowest(world, s);
}

// Every rank computes at once: the slowest rank's segment time (contention for cores, caches and
// memory, and the ranks' imbalance).
double time_segment_busy(Communicator& world, Segment& segment, int reps) {
  world.barrier();
  const auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) segment.run();
  return slowest(world, seconds_since(t0) / reps);
}

double time_segmented(Communicator& world, Call& call, Segment& segment, int reps) {
  world.barrier();
  const auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) {
    segment.run();
    call.run(Path::Blocking);
  }
  return slowest(world, seconds_since(t0) / reps);
}

// Per call: segments with the collective minus segments alone, in alternating blocks (the
// machine's load drifts), the median over the blocks (a descheduled rank spoils one block, not
// the figure).
double segmented_cost(Communicator& world, Call& call, Segment& segment, int reps) {
  constexpr int kBlocks = 7;
  const int per_block = std::max(5, reps / kBlocks);
  std::vector<double> costs;
  for (int b = 0; b < kBlocks; ++b) {
    const double alone = time_segment_busy(world, segment, per_block);
    costs.push_back(time_segmented(world, call, segment, per_block) - alone);
  }
  return median(costs);
}

struct SegmentTimes {
  double solo = 0, busy = 0;  // seconds: rank 0 alone, every rank at once
};

// Sizes the segment to about --segment-us on rank 0 alone (one repeat count for all, so every rank
// runs the same work), then times it alone and on every rank in alternating blocks, the median of
// each (the machine's load drifts).
SegmentTimes calibrate_segment(Communicator& world, Segment& segment, const Options& o) {
  auto repeats = torch::tensor({o.segment_us / (time_segment_solo(world, segment, 20) * 1e6)},
                               torch::kFloat64);
  world.broadcast(repeats);
  segment.set_repeats(int(repeats.item<double>() + 0.5));
  const int reps = std::max(5, o.reps / 16);
  std::vector<double> solos, busys;
  for (int b = 0; b < 7; ++b) {
    solos.push_back(time_segment_solo(world, segment, reps));
    busys.push_back(time_segment_busy(world, segment, reps));
  }
  return {median(solos), median(busys)};
}

// Every op, size and mode; `all_correct` false if any result was wrong on this rank.
std::vector<Result> measure(Communicator& world, Communicator& comm, Segment& segment,
                            const Options& o, bool& all_correct) {
  std::vector<Result> results;
  for (Op op : {Op::AllReduce, Op::AllGather}) {
    const char* op_name = op == Op::AllReduce ? "all_reduce" : "all_gather";
    for (int64_t bytes : o.bytes) {
      Call call(comm, op, bytes);
      const int reps = reps_for(o, bytes);
      for (Path path : {Path::Blocking, Path::Async}) {
        const double s = time_lockstep(world, comm, call, path, reps);
        all_correct = all_correct && call.correct();
        results.push_back({op_name, path == Path::Blocking ? "blocking" : "async", "lockstep",
                           bytes, s * 1e6});
      }
      const double s = segmented_cost(world, call, segment, reps);
      all_correct = all_correct && call.correct();
      results.push_back({op_name, "blocking", "segmented", bytes, s * 1e6});
    }
  }
  return results;
}

// The JSON object on stdout, the table on stderr.
void report(int world_size, int group_size, const SegmentTimes& seg, const std::vector<Result>& results) {
  std::string json = "{\"world_size\": " + std::to_string(world_size) +
                     ", \"group_size\": " + std::to_string(group_size) +
                     ", \"cores\": " + std::to_string(std::thread::hardware_concurrency()) +
                     ", \"segment_solo_us\": " + std::to_string(seg.solo * 1e6) +
                     ", \"segment_busy_us\": " + std::to_string(seg.busy * 1e6) +
                     ", \"dtype_bytes\": 4, \"results\": [\n";
  std::fprintf(stderr, "%d ranks, groups of %d; segment %.0f us on one rank, %.0f us on all at once\n"
               "%-10s %-9s %-9s %9s %12s\n", world_size, group_size, seg.solo * 1e6, seg.busy * 1e6,
               "op", "path", "mode", "bytes", "us");
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    char line[256];
    std::snprintf(line, sizeof line,
                  "  {\"op\": \"%s\", \"path\": \"%s\", \"mode\": \"%s\", \"bytes\": %lld, \"us\": %.3f}%s\n",
                  r.op.c_str(), r.path.c_str(), r.mode.c_str(), (long long)r.bytes, r.us,
                  i + 1 < results.size() ? "," : "");
    json += line;
    std::fprintf(stderr, "%-10s %-9s %-9s %9lld %12.2f\n", r.op.c_str(), r.path.c_str(),
                 r.mode.c_str(), (long long)r.bytes, r.us);
  }
  json += "]}\n";
  std::fputs(json.c_str(), stdout);
}

int run(const Options& o, const dt::comm::World& world) {
  torch::set_num_threads(1);
  const auto timeout = std::chrono::milliseconds(120000);
  Communicator world_comm(world, timeout);
  std::unique_ptr<Communicator> group_comm;
  if (o.group > 0) {
    if (world.size % o.group != 0) throw std::invalid_argument("--group must divide the world size");
    group_comm = std::make_unique<Communicator>(world, timeout, o.group);
  }
  Communicator& comm = group_comm ? *group_comm : world_comm;
  torch::manual_seed(1234 + world.rank);
  Segment segment;
  const SegmentTimes seg = calibrate_segment(world_comm, segment, o);
  bool all_correct = true;
  const auto results = measure(world_comm, comm, segment, o, all_correct);
  const int wrong = world_comm.first_failing_rank(!all_correct);
  if (world.rank == 0) {
    report(world.size, comm.world_size(), seg, results);
    if (wrong < world.size) std::fprintf(stderr, "bench_collectives: rank %d got a wrong result\n", wrong);
  }
  return wrong < world.size ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  dt::comm::World world;
  try {
    world = dt::comm::init_world(&argc, &argv);
    const Options o = parse(argc, argv);
    const int rc = run(o, world);
    dt::comm::finalize_world(world);
    return rc;
  } catch (const std::invalid_argument& e) {
    if (world.rank == 0) std::fprintf(stderr, "bench_collectives: %s\n", e.what());
    dt::comm::finalize_world(world);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_collectives: rank %d: %s\n", world.rank, e.what());
    dt::comm::abort_world(world, 1);
  }
}
