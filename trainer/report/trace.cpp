#include "trainer/report/trace.h"

#include <iterator>
#include "trainer/report/json_writer.h"
#include "trainer/report/output_paths.h"

namespace dt::trainer {
namespace {

// Wall-clock microseconds of a steady_clock time point, so that ranks on different hosts share
// a time axis (to the precision of their clock synchronisation).
double wall_us(Trace::Clock::time_point t) {
  const auto offset = std::chrono::system_clock::now().time_since_epoch() -
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(
                          Trace::Clock::now().time_since_epoch());
  return std::chrono::duration<double, std::micro>(t.time_since_epoch() + offset).count();
}

std::string event_name(int64_t kind, int64_t index, const std::vector<std::string>& parameters) {
  static const char* phases[] = {"data", "forward", "backward", "exposed communication",
                                 "optimizer", "waiting for the device", "evaluation",
                                 "checkpoint", "replica check"};
  static_assert(std::size(phases) == size_t(TraceKind::Verify) + 1, "a name for every phase");
  static const char* ops[] = {"all_reduce", "broadcast", "all_gather"};
  if (kind == int64_t(TraceKind::Bucket)) return "all-reduce bucket " + std::to_string(index);
  if (kind == int64_t(TraceKind::Collective)) return ops[index % 3];
  if (kind == int64_t(TraceKind::SyncBnCollective)) return std::string("sync-bn ") + ops[index % 3];
  if (kind == int64_t(TraceKind::GradientReady)) {
    return "gradient " + (size_t(index) < parameters.size() ? parameters[size_t(index)]
                                                            : std::to_string(index));
  }
  return phases[kind];
}

const char* category(int64_t kind) {
  switch (TraceKind(kind)) {
    case TraceKind::Bucket: return "buckets";
    case TraceKind::Collective: return "collectives";
    case TraceKind::SyncBnCollective: return "sync-bn";
    case TraceKind::GradientReady: return "gradients";
    default: return "step";
  }
}

// One row (tid) per kind of event, so overlap with backward is visible.
int row(int64_t kind) {
  switch (TraceKind(kind)) {
    case TraceKind::Bucket: return 2;
    case TraceKind::Collective: return 3;
    case TraceKind::SyncBnCollective: return 4;
    case TraceKind::GradientReady: return 5;
    default: return 1;
  }
}

}  // namespace

void Trace::add(TraceKind kind, int64_t index, int64_t step, Clock::time_point start,
                Clock::time_point end) {
  if (!enabled_) return;
  const double s = wall_us(start);
  events_.insert(events_.end(), {double(kind), double(index), double(step), s,
                                 std::chrono::duration<double, std::micro>(end - start).count()});
}

void Trace::write(const std::string& path, comm::Communicator* comm, int rank, int world) const {
  if (!enabled_) return;
  auto mine = torch::tensor(events_, torch::kFloat64).view({-1, kFields});
  torch::Tensor all;  // [world, max_events, fields], padded with kind -1
  if (comm && world > 1) {
    auto counts = comm->all_gather(torch::tensor({mine.size(0)}, torch::kInt64)).view(-1);
    const int64_t most = counts.max().item<int64_t>();
    auto padded = torch::full({most, kFields}, -1.0, torch::kFloat64);
    padded.narrow(0, 0, mine.size(0)).copy_(mine);
    all = comm->all_gather(padded);
  } else {
    all = mine.unsqueeze(0);
  }
  if (rank != 0) return;
  double origin = 1e300;
  for (int64_t r = 0; r < all.size(0); ++r) {
    for (int64_t i = 0; i < all.size(1); ++i) {
      if (all[r][i][0].item<double>() >= 0) origin = std::min(origin, all[r][i][3].item<double>());
    }
  }
  // One event per line inside the frame, so the file reads and diffs line by line; the
  // microsecond times keep 15 significant digits.
  std::string text = "{\"displayTimeUnit\": \"ms\", \"otherData\": " + facts_ + ",\n\"traceEvents\": [\n";
  bool first = true;
  const auto add = [&](const Json& event) {
    text += (first ? "" : ",\n") + dump_line(event);
    first = false;
  };
  for (int64_t r = 0; r < all.size(0); ++r) {
    add({{"ph", "M"}, {"name", "process_name"}, {"pid", r}, {"args", {{"name", "rank " + std::to_string(r)}}}});
    auto ev = all[r].contiguous();
    const double* e = ev.data_ptr<double>();
    for (int64_t i = 0; i < ev.size(0); ++i, e += kFields) {
      if (e[0] < 0) continue;
      const int64_t kind = int64_t(e[0]);
      const auto name = event_name(kind, int64_t(e[1]), parameter_names_);
      const auto ts = json_number(e[3] - origin, 15);
      const Json args = {{"step", int64_t(e[2])}};
      if (kind == int64_t(TraceKind::GradientReady)) {  // an instant, scoped to its row
        add({{"ph", "i"}, {"s", "t"}, {"pid", r}, {"tid", row(kind)}, {"name", name},
             {"cat", category(kind)}, {"ts", ts}, {"args", args}});
      } else {
        add({{"ph", "X"}, {"pid", r}, {"tid", row(kind)}, {"name", name}, {"cat", category(kind)},
             {"ts", ts}, {"dur", json_number(e[4], 15)}, {"args", args}});
      }
    }
  }
  text += "\n]}\n";
  write_output_file(path, text, "--trace " + path);
}

}  // namespace dt::trainer
