#pragma once
// Python's text for values in PyTorch's reprs and messages: str(True), str(0.1), tuples.
#include <cstdint>
#include <string>
#include <vector>

namespace qconform {

std::string python_bool(bool value);  // "True", "False"
// str() of a Python float: the shortest decimal that reads back to the same double, with
// ".0" when it is whole ("0.1", "1.0", "1e-05", "inf", "nan").
std::string python_float(double value);
std::string python_tuple(const std::vector<int64_t>& values);  // "(3,)", "(2, 2)"

}  // namespace qconform
