// The extension's Python module: binds the entry points of spense_mmasp.cu and spense_wgsp.cu (declared in
// spense_ext.h).  The one translation unit that includes torch/extension.h (pybind11); plain C++, so the build
// compiles it with the host compiler beside the two CUDA units.
#include <stdexcept>
#include <torch/extension.h>

#include "spense_ext.h"

// f with its argument checks' c10::Error raised to Python as a plain RuntimeError of the message alone (no C++
// backtrace symbolised on the way; one line for the user)
template <class R, class... A>
auto plain_errors(R (*f)(A...)) {
  return [f](A... a) -> R {
    try {
      return f(a...);
    } catch (const c10::Error& e) {
      throw std::runtime_error(e.what_without_backtrace());
    }
  };
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("spense_mmasp", plain_errors(&spense_mmasp),
        "Spense 2:4+dense decode GEMM (mma.sp; bf16 or e4m3 weights; stages > 0: bulk-copy variant, sm_90; "
        "xperm: x in x_perm order)");
  m.def("spense_wgsp", plain_errors(&spense_wgsp),
        "Spense GEMM on sparse warpgroup MMA (sm_90a builds; form 0 prefill, 1 prefill in clusters of two, 2 decode "
        "form for M <= 64 in clusters along K, 3 stream-K decode form, bf16 or e4m3 weights; false where it does not "
        "apply)");
}
