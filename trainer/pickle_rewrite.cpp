#include "trainer/pickle_rewrite.h"

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

namespace dt::trainer {
namespace {

// How an opcode's argument is laid out in the stream.
enum class Arg { None, Fixed, Counted, Line, TwoLines };
struct ArgSpec {
  Arg kind = Arg::None;
  int bytes = 0;  // Fixed: the argument's size; Counted: the size of its little-endian length
};

// The argument of every opcode of pickle protocols 0-5 (Lib/pickletools.py); nullopt: unknown.
std::optional<ArgSpec> arg_of(unsigned char op) {
  switch (op) {
    case '(': case '.': case '0': case '1': case '2': case 'N': case 'R': case 'a': case 'b':
    case 'd': case '}': case 'e': case 'l': case ']': case 'o': case 's': case 'u': case 't':
    case ')': case 'Q': case 0x81: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89:
    case 0x8f: case 0x90: case 0x91: case 0x92: case 0x93: case 0x94: case 0x97: case 0x98:
      return ArgSpec{Arg::None, 0};
    case 'K': case 'q': case 'h': case 0x80: case 0x82: return ArgSpec{Arg::Fixed, 1};
    case 'M': case 0x83: return ArgSpec{Arg::Fixed, 2};
    case 'J': case 'r': case 'j': case 0x84: return ArgSpec{Arg::Fixed, 4};
    case 'G': case 0x95: return ArgSpec{Arg::Fixed, 8};
    case 'U': case 'C': case 0x8c: case 0x8a: return ArgSpec{Arg::Counted, 1};
    case 'T': case 'B': case 'X': case 0x8b: return ArgSpec{Arg::Counted, 4};
    case 0x8d: case 0x8e: case 0x96: return ArgSpec{Arg::Counted, 8};
    case 'I': case 'L': case 'F': case 'S': case 'V': case 'P': case 'g': case 'p':
      return ArgSpec{Arg::Line, 0};
    case 'c': case 'i': return ArgSpec{Arg::TwoLines, 0};
    default: return std::nullopt;
  }
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
