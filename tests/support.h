#pragma once
// Helpers shared by the Boost.Test programs.
#include <boost/test/unit_test.hpp>
#include <string>

#include "core/error.h"

namespace qconform::testing {

// Checks that `action` throws qconform::Error whose message contains `expected`, and
// prints the actual message when it does not.
template <typename Action>
void expect_error(Action&& action, const std::string& expected) {
  try {
    action();
    BOOST_ERROR("expected an Error containing \"" << expected << "\", nothing was thrown");
  } catch (const Error& e) {
    const std::string message = e.what();
    BOOST_CHECK_MESSAGE(message.find(expected) != std::string::npos,
                        "message \"" << message << "\" does not contain \"" << expected << "\"");
  }
}

}  // namespace qconform::testing
