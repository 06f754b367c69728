// Host-side entry points of the CUDA kernels (compiled only when nvcc is found).
#pragma once

#include <cstdint>
#include <string>

namespace symdiff::cuda {

int device_count();  // 0 when there is no driver or no device: never throws
std::string device_name(int device);
// Copies to the device, reduces axis `n` of (outer, n, inner), copies back; throws
// std::runtime_error with CUDA's message on any failure.
void sum_axis(const float* host_in, float* host_out, int64_t outer, int64_t n, int64_t inner);
void sum_axis(const double* host_in, double* host_out, int64_t outer, int64_t n, int64_t inner);

}  // namespace symdiff::cuda
