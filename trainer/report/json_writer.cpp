#include "trainer/report/json_writer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace dt::trainer {

Json json_number(double v, int digits) {
  if (!std::isfinite(v)) return nullptr;
  char text[40];
  std::snprintf(text, sizeof text, "%.*g", digits, v);
  return std::strtod(text, nullptr);
}

namespace {
void append(std::string& out, const Json& j) {
  if (j.is_object()) {
    out += '{';
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it != j.begin()) out += ", ";
      append(out, Json(it.key()));
      out += ": ";
      append(out, it.value());
    }
    out += '}';
  } else if (j.is_array()) {
    out += '[';
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it != j.begin()) out += ", ";
      append(out, *it);
    }
    out += ']';
  } else {  // a scalar: the library's escaping and shortest round-trip numbers
    out += j.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}
}  // namespace

std::string dump_line(const Json& j) {
  std::string out;
  append(out, j);
  return out;
}

}  // namespace dt::trainer
