// The JSON that dist_train writes (metrics.jsonl, summary.json, the trace, the --eval-only line):
// nlohmann-json builds and escapes the values; dump_line lays them out as Python's json.dumps
// does, `{"key": value, ...}`, the layout those files have always had and their readers
// (scripts, tests that search for `"key": `) rely on.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace dt::trainer {

// Keys stay in insertion order: each file's field order is part of its format.
using Json = nlohmann::ordered_json;

// A measured number, rounded to `digits` significant digits (what the files carry: 9 round-trips
// a float), or null when not finite (JSON has no NaN; a diverged loss).
Json json_number(double v, int digits = 9);

// `j` on one line, no trailing newline: ", " between items, ": " after keys. Bytes that are not
// UTF-8 (a path can hold any) become U+FFFD instead of failing the write.
std::string dump_line(const Json& j);

}  // namespace dt::trainer
