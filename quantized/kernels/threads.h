#pragma once
// The integer kernels' worker threads: OpenMP's, the same runtime (GCC's libgomp) and so the
// same thread team LibTorch's CPU kernels use. (A pool of its own, pthreadpool's, was tried
// first: on 2 cores its threads and LibTorch's, each spinning a while after its work, took
// turns with each other and made two threads 2-7 times slower than one.) The clang builds
// (sanitizers, fuzzing) have no OpenMP: there every count runs on the calling thread.
//
// Numerics never depend on the thread count: work is split by output tiles, and each tile
// is computed whole by one thread in the same step order as on one thread (test_kernels
// holds 1 and 2 threads to the same bits).
//
// The count is the harness's own, not LibTorch's intra-op setting: `qconform bench --threads`
// sets both, the suite runs the kernels on one thread (its cases are small; ctest runs test
// programs side by side). Default: QCONFORM_THREADS when set, else 1.
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace qconform::kernels {

int kernel_threads();
void set_kernel_threads(int threads);  // >= 1

namespace detail {
void run_parallel(int64_t items, void (*item)(void* context, size_t index), void* context);
bool on_worker();  // inside a parallel region: nested calls stay on this thread
}

// Calls f(i) for i in [0, items), on kernel_threads() threads; returns when all are done.
// f must only write what item i owns. Called from inside an item, it runs serially there.
template <typename F>
void parallel_for(int64_t items, F&& f) {
  if (items <= 0) return;
  if (items == 1 || detail::on_worker() || kernel_threads() == 1) {
    for (int64_t i = 0; i < items; ++i) f(i);
    return;
  }
  using Function = std::remove_reference_t<F>;
  detail::run_parallel(
      items, [](void* context, size_t i) { (*static_cast<Function*>(context))(static_cast<int64_t>(i)); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace qconform::kernels
