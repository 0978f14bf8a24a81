// Makes the pickle of a PyTorch file readable by LibTorch's jit Unpickler when it holds a
// collections.OrderedDict: what torch.save(model.state_dict()) writes (an OrderedDict with a
// `_metadata` attribute). That Unpickler turns `OrderedDict()` (GLOBAL + EMPTY_TUPLE + REDUCE)
// into None, so the items that follow cannot be set, and it cannot apply BUILD state to a dict.
// The rewrite keeps every byte offset: each EMPTY_TUPLE + REDUCE after a push of the
// OrderedDict class (its GLOBAL, or a BINGET/LONG_BINGET of the memo slot it was put in) becomes
// "pop" + EMPTY_DICT, i.e. a plain empty dict; and, in a file that does that, each BUILD becomes
// "pop", which drops the state (the `_metadata` attribute) with BUILD's stack effect. The jit
// Unpickler has no POP opcode; its NEWOBJ is exactly a pop (it drops the top and leaves the
// work to the REDUCE that would follow), so "pop" is written as NEWOBJ. The bytes are only ever
// read by that Unpickler. A tensor's backward hooks, an OrderedDict() too, become an empty dict
// that the Unpickler ignores as it ignored the None.
#pragma once
#include <string>

namespace dt::trainer {

// `pickle` rewritten as above. Walks the opcodes of protocols 0-5 with their argument lengths
// and never reads past the end: a malformed or truncated stream, or an opcode it does not know,
// returns `pickle` unchanged for the Unpickler to refuse.
std::string without_ordered_dicts(const std::string& pickle);

}  // namespace dt::trainer
