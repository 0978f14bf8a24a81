// Names of the enums that stand for a choice on the command line (--optimizer adam, --precision
// bf16): each enum lists its values and their names once, in a specialisation of EnumNames next
// to the enum, and parsing, printing and help text all read that list.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace dt {

// Specialise with `static constexpr std::array<std::pair<E, const char*>, N> values{...}`.
template <class E>
struct EnumNames;

template <class E>
const char* name_of(E value) {
  for (const auto& [v, name] : EnumNames<E>::values) {
    if (v == value) return name;
  }
  return "?";  // unreachable for a value of the enum's own list
}

template <class E>
std::optional<E> parse_enum(std::string_view text) {
  for (const auto& [v, name] : EnumNames<E>::values) {
    if (text == name) return v;
  }
  return std::nullopt;
}

// "a|b|c" for help texts, or "a, b or c" for error messages (or_words).
template <class E>
std::string enum_choices(bool or_words = false) {
  const auto& values = EnumNames<E>::values;
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += !or_words ? "|" : i + 1 == values.size() ? " or " : ", ";
    out += values[i].second;
  }
  return out;
}

}  // namespace dt
