#include "quantized/kernels/threads.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace qconform::kernels {
namespace {

int threads_from_environment() {
  const char* text = std::getenv("QCONFORM_THREADS");
  if (!text || !*text) return 1;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 1 || value > 1024)
    throw Error("QCONFORM_THREADS must be a whole number from 1 to 1024, got '" + std::string(text) + "'");
  return static_cast<int>(value);
}

std::atomic<int>& threads() {
  static std::atomic<int> count{threads_from_environment()};
  return count;
}

}  // namespace

int kernel_threads() { return threads().load(std::memory_order_relaxed); }

void set_kernel_threads(int count) {
  if (count < 1) throw std::invalid_argument("set_kernel_threads: at least one thread, got " + std::to_string(count));
  threads().store(count, std::memory_order_relaxed);
}

namespace detail {

namespace {
thread_local bool inside_region = false;  // this thread is running items of run_parallel
}

bool on_worker() { return inside_region; }

void run_parallel(int64_t items, void (*item)(void*, size_t), void* context) {
  // Static schedule: each thread one contiguous range of items, in order. Without OpenMP
  // (the clang builds: sanitizers, fuzzing) the loop runs on this thread.
#ifdef _OPENMP
#pragma omp parallel for num_threads(kernel_threads()) schedule(static)
#endif
  for (int64_t i = 0; i < items; ++i) {
    const bool outer = inside_region;
    inside_region = true;
    item(context, static_cast<size_t>(i));
    inside_region = outer;
  }
}

}  // namespace detail
}  // namespace qconform::kernels
