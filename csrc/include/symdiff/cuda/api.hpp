// Host-side entry points of the CUDA kernels (compiled only when nvcc is found).
//
// Two forms of each kernel:
//  - `name_device(...)` takes device pointers and an optional stream (a cudaStream_t passed as
//    void*, so this header needs no CUDA include); it only launches: errors in the launch
//    configuration throw at once, faults inside the kernel surface at the next synchronising call.
//    This is the form generated code calls.
//  - `name(...)` takes host pointers: it copies in, runs, copies back and synchronises.
// Every failure is a std::runtime_error carrying cudaGetErrorString's text (std::invalid_argument
// for sizes the kernels cannot take). All arrays are row-major and densely packed unless a leading
// dimension is given.
#pragma once

#include <cstdint>
#include <string>

namespace symdiff::cuda {

int device_count();  // 0 when there is no driver or no device: never throws
std::string device_name(int device);

// Reductions of axis `n` of the (outer, n, inner) view: out has outer * inner elements.
// sum and mean accumulate in double; mean of an empty axis is NaN; max needs n >= 1 and
// propagates NaN.
void sum_axis(const float* host_in, float* host_out, int64_t outer, int64_t n, int64_t inner);
void sum_axis(const double* host_in, double* host_out, int64_t outer, int64_t n, int64_t inner);
void mean_axis(const float* host_in, float* host_out, int64_t outer, int64_t n, int64_t inner);
void mean_axis(const double* host_in, double* host_out, int64_t outer, int64_t n, int64_t inner);
void max_axis(const float* host_in, float* host_out, int64_t outer, int64_t n, int64_t inner);
void max_axis(const double* host_in, double* host_out, int64_t outer, int64_t n, int64_t inner);
void sum_axis_device(const float* in, float* out, int64_t outer, int64_t n, int64_t inner, void* stream = nullptr);
void sum_axis_device(const double* in, double* out, int64_t outer, int64_t n, int64_t inner, void* stream = nullptr);
void mean_axis_device(const float* in, float* out, int64_t outer, int64_t n, int64_t inner, void* stream = nullptr);
void mean_axis_device(const double* in, double* out, int64_t outer, int64_t n, int64_t inner, void* stream = nullptr);
void max_axis_device(const float* in, float* out, int64_t outer, int64_t n, int64_t inner, void* stream = nullptr);
void max_axis_device(const double* in, double* out, int64_t outer, int64_t n, int64_t inner, void* stream = nullptr);

// C (m x n) = alpha * op(A) * op(B) + beta * C, op(A) m x k, op(B) k x n, op = transpose when
// trans_* is set (A is then stored k x m, B n x k). C is not read when beta == 0.
void gemm_device(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                 void* stream = nullptr);
void gemm_device(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                 int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc,
                 void* stream = nullptr);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* host_a,
          const float* host_b, float beta, float* host_c);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* host_a,
          const double* host_b, double beta, double* host_c);

// Along each row of a (rows, n) matrix: softmax and log_softmax write rows * n values, logsumexp
// writes rows. Stable for any finite input (the row max is subtracted first); an empty or
// all -inf row has logsumexp -inf.
void softmax_rows(const float* host_in, float* host_out, int64_t rows, int64_t n);
void softmax_rows(const double* host_in, double* host_out, int64_t rows, int64_t n);
void log_softmax_rows(const float* host_in, float* host_out, int64_t rows, int64_t n);
void log_softmax_rows(const double* host_in, double* host_out, int64_t rows, int64_t n);
void logsumexp_rows(const float* host_in, float* host_out, int64_t rows, int64_t n);
void logsumexp_rows(const double* host_in, double* host_out, int64_t rows, int64_t n);
void softmax_rows_device(const float* in, float* out, int64_t rows, int64_t n, void* stream = nullptr);
void softmax_rows_device(const double* in, double* out, int64_t rows, int64_t n, void* stream = nullptr);
void log_softmax_rows_device(const float* in, float* out, int64_t rows, int64_t n, void* stream = nullptr);
void log_softmax_rows_device(const double* in, double* out, int64_t rows, int64_t n, void* stream = nullptr);
void logsumexp_rows_device(const float* in, float* out, int64_t rows, int64_t n, void* stream = nullptr);
void logsumexp_rows_device(const double* in, double* out, int64_t rows, int64_t n, void* stream = nullptr);

}  // namespace symdiff::cuda
