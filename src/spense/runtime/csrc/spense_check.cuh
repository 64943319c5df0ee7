// SPENSE_CHECK: the extension's argument check with values in its message (its two CUDA translation units:
// spense_mmasp.cu and spense_wgsp.cu; after c10's headers, whose TORCH_CHECK it calls)
#pragma once
#include <cstdio>

// A check whose message carries values, formatted here into one C string: on the H200 build, TORCH_CHECK with
// values in its message (c10 formatting them into a std::string) ended the process with SIGSEGV, where a
// message of one C string raised (benchmarks/ext_refusal_probe.py, 2026-12-01: the form and variant checks
// crashed, the x and block-table checks raised).
#define SPENSE_CHECK(cond, ...)                    \
  do {                                             \
    if (!(cond)) {                                 \
      char spense_msg_[256];                       \
      snprintf(spense_msg_, sizeof spense_msg_, __VA_ARGS__); \
      TORCH_CHECK(false, (const char*)spense_msg_); \
    }                                              \
  } while (0)
