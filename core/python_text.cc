#include "core/python_text.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace qconform {

std::string python_bool(bool value) { return value ? "True" : "False"; }

std::string python_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  // The shortest significand that reads back to the same double, as repr() finds it.
  char text[40];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*e", digits - 1, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  std::snprintf(text, sizeof text, "%.*e", digits - 1, value);
  const std::string scientific = text;  // "-1.2345e+17"
  const auto e = scientific.find('e');
  const int exponent = std::atoi(scientific.c_str() + e + 1);
  std::string significand;  // the digits alone
  for (size_t i = 0; i < e; ++i)
    if (std::isdigit(static_cast<unsigned char>(scientific[i]))) significand += scientific[i];
  const std::string sign = value < 0 ? "-" : "";
  // Python: positional for 1e-4 <= |value| < 1e16, else d.ddde[+-]XX.
  if (exponent < -4 || exponent >= 16) {
    std::string s = sign + significand.substr(0, 1);
    if (significand.size() > 1) s += "." + significand.substr(1);
    char exp_text[16];  // "e-308" at most; room for the compiler's int range
    std::snprintf(exp_text, sizeof exp_text, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return s + exp_text;
  }
  if (exponent < 0) return sign + "0." + std::string(-exponent - 1, '0') + significand;
  const size_t whole = static_cast<size_t>(exponent) + 1;
  if (significand.size() <= whole) return sign + significand + std::string(whole - significand.size(), '0') + ".0";
  return sign + significand.substr(0, whole) + "." + significand.substr(whole);
}

std::string python_tuple(const std::vector<int64_t>& values) {
  std::string s = "(";
  for (size_t i = 0; i < values.size(); ++i) s += (i ? ", " : "") + std::to_string(values[i]);
  return s + (values.size() == 1 ? ",)" : ")");
}

}  // namespace qconform
