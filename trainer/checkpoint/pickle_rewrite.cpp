#include "trainer/checkpoint/pickle_rewrite.h"

#include <cstdint>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

namespace dt::trainer {
namespace {

// How an opcode's argument is laid out in the stream.
enum class Arg { None, Fixed, Counted, Line, TwoLines };
struct ArgSpec {
  Arg kind = Arg::None;
  int bytes = 0;  // Fixed: the argument's size; Counted: the size of its little-endian length
};

// The argument of every opcode of pickle protocols 0-5 (Lib/pickletools.py), as a table: the
// opcodes that share a layout, then the layout.
struct OpcodeGroup {
  std::string_view opcodes;
  ArgSpec arg;
};
constexpr OpcodeGroup kOpcodeGroups[] = {
    {"(.012NRabd}el]osut)Q" "\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98", {Arg::None, 0}},
    {"Kqh" "\x80\x82", {Arg::Fixed, 1}},
    {"M" "\x83", {Arg::Fixed, 2}},
    {"Jrj" "\x84", {Arg::Fixed, 4}},
    {"G" "\x95", {Arg::Fixed, 8}},
    {"UC" "\x8c\x8a", {Arg::Counted, 1}},
    {"TBX" "\x8b", {Arg::Counted, 4}},
    {"\x8d\x8e\x96", {Arg::Counted, 8}},
    {"ILFSVPgp", {Arg::Line, 0}},
    {"ci", {Arg::TwoLines, 0}},
};

// nullopt: not a pickle opcode.
std::optional<ArgSpec> arg_of(unsigned char op) {
  for (const auto& group : kOpcodeGroups) {
    if (group.opcodes.find(char(op)) != std::string_view::npos) return group.arg;
  }
  return std::nullopt;
}

// The jit Unpickler's NEWOBJ pops the top of the stack and does nothing else: its POP.
constexpr char kPop = '\x81';

uint64_t little_endian(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + size_t(i)]);
  return v;
}

// The end of the newline-terminated text starting at `at` (just past the newline), or nullopt.
std::optional<size_t> line_end(const std::string& s, size_t at) {
  const size_t nl = s.find('\n', at);
  if (nl == std::string::npos) return std::nullopt;
  return nl + 1;
}

}  // namespace

std::string without_ordered_dicts(const std::string& pickle) {
  std::string out = pickle;
  std::set<uint64_t> class_slots;  // memo slots holding the OrderedDict class
  std::vector<size_t> builds;      // offsets of BUILD opcodes
  bool class_on_top = false;       // the last push was the OrderedDict class
  bool rewrote = false;
  const size_t n = pickle.size();
  size_t pos = 0;
  while (pos < n) {
    const auto op = static_cast<unsigned char>(pickle[pos]);
    const size_t at = pos++;
    const auto spec = arg_of(op);
    if (!spec) return pickle;
    const size_t arg = pos;
    switch (spec->kind) {
      case Arg::None: break;
      case Arg::Fixed:
        if (n - pos < size_t(spec->bytes)) return pickle;
        pos += size_t(spec->bytes);
        break;
      case Arg::Counted: {
        if (n - pos < size_t(spec->bytes)) return pickle;
        const uint64_t length = little_endian(pickle, pos, spec->bytes);
        pos += size_t(spec->bytes);
        if (length > n - pos) return pickle;
        pos += size_t(length);
        break;
      }
      case Arg::Line: {
        const auto end = line_end(pickle, pos);
        if (!end) return pickle;
        pos = *end;
        break;
      }
      case Arg::TwoLines: {
        const auto first = line_end(pickle, pos);
        const auto second = first ? line_end(pickle, *first) : std::nullopt;
        if (!second) return pickle;
        pos = *second;
        break;
      }
    }
    if (op == 'c') {
      class_on_top = pickle.compare(arg, pos - arg, "collections\nOrderedDict\n") == 0;
    } else if (op == 'q' || op == 'r') {  // BINPUT, LONG_BINPUT: the top stays where it is
      const uint64_t slot = little_endian(pickle, arg, op == 'q' ? 1 : 4);
      if (class_on_top) {
        class_slots.insert(slot);
      } else {
        class_slots.erase(slot);
      }
    } else if (op == 'h' || op == 'j') {  // BINGET, LONG_BINGET
      class_on_top = class_slots.count(little_endian(pickle, arg, op == 'h' ? 1 : 4)) > 0;
    } else if (op == ')' && class_on_top && pos < n && pickle[pos] == 'R') {
      out[at] = kPop;  // the class
      out[pos] = '}';  // EMPTY_DICT in place of the REDUCE's None
      ++pos;
      rewrote = true;
      class_on_top = false;
    } else {
      if (op == 'b') builds.push_back(at);
      class_on_top = false;
      if (op == '.') break;  // STOP
    }
  }
  if (!rewrote) return pickle;
  for (const size_t at : builds) out[at] = kPop;  // the state
  return out;
}

}  // namespace dt::trainer
