// Error metrics shared by every test that compares numbers with a reference.
// Invariants: a metric never hides a failure. Any NaN or Inf in either input
// makes the metric +Inf (so EXPECT_LE(err, tol) fails and prints "inf"), and
// inputs of different sizes throw (gtest reports the exception as a failure).
// std::max(x, NaN) returns x, so running maxima here go through nan_max().
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

namespace moe::test {

// Running maximum that keeps a NaN once it has seen one (std::max drops it).
inline double nan_max(double acc, double v) {
  if (std::isnan(acc) || std::isnan(v)) return NAN;
  return v > acc ? v : acc;
}

inline void require_same_size(size_t a, size_t ref, const char* what) {
  if (a != ref || a == 0)
    throw std::invalid_argument(std::string(what) + ": size " + std::to_string(a) + " vs reference " +
                                std::to_string(ref) + (a == 0 ? " (empty)" : ""));
}

// max_i |a_i - ref_i|; +Inf if anything is not finite.
// A and B: any contiguous container of numbers (std::vector, std::span, std::array).
template <class A, class B>
double max_abs_err(const A& a, const B& ref) {
  require_same_size(a.size(), ref.size(), "max_abs_err");
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double x = double(a[i]), r = double(ref[i]);
    if (!std::isfinite(x) || !std::isfinite(r)) return INFINITY;
    worst = nan_max(worst, std::abs(x - r));
  }
  return worst;
}

// max_i |a_i - ref_i| / max_i |ref_i|; +Inf if anything is not finite or ref is all zero.
template <class A, class B>
double max_rel_err(const A& a, const B& ref) {
  const double d = max_abs_err(a, ref);
  double mr = 0;
  for (size_t i = 0; i < ref.size(); ++i) mr = nan_max(mr, std::abs(double(ref[i])));
  if (!std::isfinite(d)) return INFINITY;
  if (mr == 0) return d == 0 ? 0.0 : INFINITY;
  return d / mr;
}

// Per row of n_cols: max_j |a - ref| / max_j |ref|; the largest over rows.
inline double max_row_rel_err(std::span<const float> a, std::span<const float> ref, int64_t n_cols) {
  require_same_size(a.size(), ref.size(), "max_row_rel_err");
  if (n_cols <= 0 || ref.size() % static_cast<size_t>(n_cols) != 0)
    throw std::invalid_argument("max_row_rel_err: " + std::to_string(ref.size()) +
                                " values are not rows of " + std::to_string(n_cols));
  double worst = 0;
  const size_t n = static_cast<size_t>(n_cols);
  for (size_t r = 0; r < ref.size() / n; ++r)
    worst = nan_max(worst, max_rel_err(a.subspan(r * n, n), ref.subspan(r * n, n)));
  return worst;
}

// ||a - ref|| / ||ref|| over everything; +Inf if anything is not finite.
template <class A, class B>
double rel_l2(const A& a, const B& ref) {
  require_same_size(a.size(), ref.size(), "rel_l2");
  double d = 0, r = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double x = double(a[i]), y = double(ref[i]);
    if (!std::isfinite(x) || !std::isfinite(y)) return INFINITY;
    d += (x - y) * (x - y);
    r += y * y;
  }
  if (r == 0) return d == 0 ? 0.0 : INFINITY;
  return std::sqrt(d / r);
}

}  // namespace moe::test
