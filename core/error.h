#pragma once
// The one exception type of the harness. Messages name what is wrong and where
// (field, value, file); callers add context, never swallow it.
#include <stdexcept>
#include <string>

namespace qconform {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace qconform
