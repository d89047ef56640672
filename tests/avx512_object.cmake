cmake_minimum_required(VERSION 3.19)
# The one file built with AVX-512 flags (core/float/rnn_gates_avx512.cc) must define nothing
# another file could also define: the linker keeps one copy of each inline function or
# template instantiation, and an AVX-512 copy of one that AVX2 code calls would stop an AVX2
# host with an illegal instruction. Allowed: its own function, and Eigen's Packet16f
# instantiations (no file built for AVX2 has that type); data, such as the function types'
# typeinfo UBSan emits, holds no instructions. And no static initializer, which runs on every
# host. Fails naming each code symbol that breaks the rule.
# Run by ctest: cmake -DNM=<nm> -DOBJECT=<rnn_gates_avx512 object> -P avx512_object.cmake
if(NOT EXISTS "${OBJECT}")
  message(FATAL_ERROR "avx512_object: no object file '${OBJECT}' (build the library first)")
endif()
execute_process(COMMAND "${NM}" -C --defined-only "${OBJECT}" OUTPUT_VARIABLE listing RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "avx512_object: ${NM} failed on ${OBJECT}")
endif()
string(REPLACE "\n" ";" lines "${listing}")
set(violations "")
set(own FALSE)
foreach(line IN LISTS lines)
  if(NOT line MATCHES "^[0-9a-f]+ ([A-Za-z]) (.*)$")
    continue()
  endif()
  set(type "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  if(name MATCHES "^_GLOBAL__sub_I")
    list(APPEND violations "a static initializer: ${name}")
  elseif(NOT type MATCHES "^[TWi]$")  # only code can hold an AVX-512 instruction; local code
    continue()                         # (lower case) and data (typeinfo the sanitizers emit) cannot clash
  elseif(name MATCHES "^qconform::fast_lstm_row_avx512\\(")
    set(own TRUE)
  elseif(NOT name MATCHES "__vector\\(16\\)")
    list(APPEND violations "${type} ${name}")
  endif()
endforeach()
if(NOT own)
  list(APPEND violations "qconform::fast_lstm_row_avx512 is not defined here (renamed? update this check)")
endif()
if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "core/float/rnn_gates_avx512.cc defines what other files may define too:\n  ${text}")
endif()
message(STATUS "rnn_gates_avx512: only its own function and Packet16f instantiations")
