// Batch-norm loops, compiled once per ISA region by norm.cpp (no include guard on
// purpose). Layout: x (N,C,S) contiguous, S = product of the spatial dims; channel c is
// N rows of S contiguous elements, row n starting at (n*C + c)*S.
//
// Two schedules:
//   per channel (S > 1 and C >= threads): one thread owns a channel and makes all its
//     passes (stats, then normalize; or reductions, then dx) back to back, so the
//     channel's N*S elements are read from DRAM once and revisited in cache;
//   per row block (S == 1, or fewer channels than threads): threads split N, keep
//     per-channel partial sums in a workspace, and each pass sweeps the whole tensor.
// Sums of one row are in T with SIMD partials (omp simd reduction); rows are added in double.

// ---- row-level pieces ----

// Touch the cache lines of a row that is about to be read: in the per-channel schedule
// rows are short (S elements) and a channel stride apart, too short for the hardware
// prefetcher to ramp up on its own.
template <class T>
inline void prefetch_row(const T* p, int64_t S) {
  const char* b = reinterpret_cast<const char*>(p);
  const int64_t bytes = S * static_cast<int64_t>(sizeof(T));
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(b + o);
}
// The same for a row about to be written (fetch the lines for ownership early).
template <class T>
inline void prefetch_row_for_write(T* p, int64_t S) {
  char* b = reinterpret_cast<char*>(p);
  const int64_t bytes = S * static_cast<int64_t>(sizeof(T));
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(b + o, 1);
}

constexpr int64_t kPrefetchRows = 2;  // rows ahead
template <class T>
inline T row_sum(const T* x, int64_t S) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t s = 0; s < S; ++s) acc += x[s];
  return acc;
}

// sum(x - m) and sum((x - m)^2) of a row: the second pass of the two-pass variance.
template <class T>
inline void row_centered(const T* x, int64_t S, T m, T& d1, T& d2) {
  T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int64_t s = 0; s < S; ++s) {
    const T d = x[s] - m;
    a += d;
    b += d * d;
  }
  d1 = a;
  d2 = b;
}

// sum(dy) and sum(dy * (x - m)) of a row: the reductions of the backward pass.
template <class T>
inline void row_grad_sums(const T* dy, const T* x, int64_t S, T m, T& g1, T& g2) {
  T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int64_t s = 0; s < S; ++s) {
    a += dy[s];
    b += dy[s] * (x[s] - m);
  }
  g1 = a;
  g2 = b;
}

template <class T>
inline void row_affine(const T* x, T* y, int64_t S, T scale, T shift) {
#pragma omp simd
  for (int64_t s = 0; s < S; ++s) y[s] = x[s] * scale + shift;
}

// dx = k1*dy - k2*(x - m) - k0
template <class T>
inline void row_dx(const T* dy, const T* x, T* dx, int64_t S, T m, T k1, T k2, T k0) {
#pragma omp simd
  for (int64_t s = 0; s < S; ++s) dx[s] = k1 * dy[s] - k2 * (x[s] - m) - k0;
}

// ---- whole-tensor passes ----

// Channels per thread so that a thread gets at least kElementwiseGrain elements: small
// tensors stay on one thread (waking a team costs more than the work).
inline int64_t channel_grain(int64_t per_channel) {
  return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, per_channel));
}

// Per-channel (mean, biased var) of x, two-pass with the rounding correction
// (Chan/Golub/LeVeque "corrected two-pass"), exact enough for large means in float32.
// fin(c, mean, var) runs once per channel, right after its stats; in the per-channel
// schedule `after(c)` then runs on the same thread while the channel is in cache.
// Returns true when it ran the per-channel schedule (after() done), false otherwise.
template <class T, class Fin, class After>
bool bn_stats(const T* x, int64_t N, int64_t C, int64_t S, double* work, Fin fin, After after) {
  const double M = static_cast<double>(N) * static_cast<double>(S);
  const int nt = omp_get_max_threads();
  if (S > 1 && C >= nt) {
    parallel_chunks(C, channel_grain(N * S), [&](int, int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double s = 0;
        for (int64_t n = 0; n < N; ++n) {
          if (n + kPrefetchRows < N) prefetch_row(x + ((n + kPrefetchRows) * C + c) * S, S);
          s += row_sum(x + (n * C + c) * S, S);
        }
        const T m = static_cast<T>(s / M);
        double d1 = 0, d2 = 0;
        for (int64_t n = 0; n < N; ++n) {
          T a, b;
          row_centered(x + (n * C + c) * S, S, m, a, b);
          d1 += a;
          d2 += b;
        }
        fin(c, m + d1 / M, std::max(0.0, (d2 - d1 * d1 / M) / M));
        after(c);
      }
    });
    return true;
  }
  // Per row block: work holds nt*2*C partials, then C means (as T, via double).
  double* part = work;
  double* mean = work + static_cast<int64_t>(nt) * 2 * C;
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, C * S));
  int used = parallel_chunks(N, grain, [&](int t, int64_t n0, int64_t n1) {
    double* p = part + static_cast<int64_t>(t) * 2 * C;
    for (int64_t c = 0; c < C; ++c) p[c] = 0;
    for (int64_t n = n0; n < n1; ++n) {
      const T* row = x + n * C * S;
      if (S == 1) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) p[c] += row[c];
      } else {
        for (int64_t c = 0; c < C; ++c) p[c] += row_sum(row + c * S, S);
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int t = 0; t < used; ++t) s += part[static_cast<int64_t>(t) * 2 * C + c];
    mean[c] = static_cast<double>(static_cast<T>(s / M));
  }
  used = parallel_chunks(N, grain, [&](int t, int64_t n0, int64_t n1) {
    double* p1 = part + static_cast<int64_t>(t) * 2 * C;
    double* p2 = p1 + C;
    for (int64_t c = 0; c < C; ++c) p1[c] = p2[c] = 0;
    for (int64_t n = n0; n < n1; ++n) {
      const T* row = x + n * C * S;
      if (S == 1) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const T d = row[c] - static_cast<T>(mean[c]);
          p1[c] += d;
          p2[c] += static_cast<double>(d) * d;
        }
      } else {
        for (int64_t c = 0; c < C; ++c) {
          T a, b;
          row_centered(row + c * S, S, static_cast<T>(mean[c]), a, b);
          p1[c] += a;
          p2[c] += b;
        }
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    double d1 = 0, d2 = 0;
    for (int t = 0; t < used; ++t) {
      d1 += part[static_cast<int64_t>(t) * 2 * C + c];
      d2 += part[static_cast<int64_t>(t) * 2 * C + C + c];
    }
    fin(c, mean[c] + d1 / M, std::max(0.0, (d2 - d1 * d1 / M) / M));
  }
  return false;
}

// y = x * scale[c] + shift[c] over the whole tensor.
template <class T>
void bn_affine_all(const T* x, T* y, int64_t N, int64_t C, int64_t S, const T* scale, const T* shift) {
  if (S == 1) {
    parallel_chunks(N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, C)), [&](int, int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const T* xr = x + n * C;
        T* yr = y + n * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * scale[c] + shift[c];
      }
    });
    return;
  }
  parallel_chunks(N * C, std::max<int64_t>(1, kElementwiseGrain / S), [&](int, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % C;
      row_affine(x + r * S, y + r * S, S, scale[c], shift[c]);
    }
  });
}

// y = x * scale[c] + shift[c] for one channel (the per-channel schedule's second pass).
template <class T>
void bn_affine_channel(const T* x, T* y, int64_t N, int64_t C, int64_t S, int64_t c, T scale, T shift) {
  for (int64_t n = 0; n < N; ++n) {
    if (n + kPrefetchRows < N) prefetch_row_for_write(y + ((n + kPrefetchRows) * C + c) * S, S);
    row_affine(x + (n * C + c) * S, y + (n * C + c) * S, S, scale, shift);
  }
}

// Per-channel g1 = sum(dy), g2 = sum(dy * (x - mean[c])); fin(c, g1, g2) once per
// channel, then (per-channel schedule) after(c) on the same thread.
template <class T, class Fin, class After>
bool bn_grad_sums(const T* dy, const T* x, const T* mean, int64_t N, int64_t C, int64_t S, double* work, Fin fin,
                  After after) {
  const int nt = omp_get_max_threads();
  if (S > 1 && C >= nt) {
    parallel_chunks(C, channel_grain(N * S), [&](int, int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double g1 = 0, g2 = 0;
        for (int64_t n = 0; n < N; ++n) {
          T a, b;
          const int64_t o = (n * C + c) * S;
          if (n + kPrefetchRows < N) {
            prefetch_row(dy + o + kPrefetchRows * C * S, S);
            prefetch_row(x + o + kPrefetchRows * C * S, S);
          }
          row_grad_sums(dy + o, x + o, S, mean[c], a, b);
          g1 += a;
          g2 += b;
        }
        fin(c, g1, g2);
        after(c);
      }
    });
    return true;
  }
  double* part = work;
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, C * S));
  int used = parallel_chunks(N, grain, [&](int t, int64_t n0, int64_t n1) {
    double* p1 = part + static_cast<int64_t>(t) * 2 * C;
    double* p2 = p1 + C;
    for (int64_t c = 0; c < C; ++c) p1[c] = p2[c] = 0;
    for (int64_t n = n0; n < n1; ++n) {
      const T* dr = dy + n * C * S;
      const T* xr = x + n * C * S;
      if (S == 1) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          p1[c] += dr[c];
          p2[c] += static_cast<double>(dr[c] * (xr[c] - mean[c]));
        }
      } else {
        for (int64_t c = 0; c < C; ++c) {
          T a, b;
          row_grad_sums(dr + c * S, xr + c * S, S, mean[c], a, b);
          p1[c] += a;
          p2[c] += b;
        }
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    double g1 = 0, g2 = 0;
    for (int t = 0; t < used; ++t) {
      g1 += part[static_cast<int64_t>(t) * 2 * C + c];
      g2 += part[static_cast<int64_t>(t) * 2 * C + C + c];
    }
    fin(c, g1, g2);
  }
  return false;
}

// dx = k1[c]*dy - k2[c]*(x - mean[c]) - k0[c] over the whole tensor.
template <class T>
void bn_dx_all(const T* dy, const T* x, T* dx, int64_t N, int64_t C, int64_t S, const T* mean, const T* k1,
               const T* k2, const T* k0) {
  if (S == 1) {
    parallel_chunks(N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, C)), [&](int, int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const T* dr = dy + n * C;
        const T* xr = x + n * C;
        T* o = dx + n * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) o[c] = k1[c] * dr[c] - k2[c] * (xr[c] - mean[c]) - k0[c];
      }
    });
    return;
  }
  parallel_chunks(N * C, std::max<int64_t>(1, kElementwiseGrain / S), [&](int, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % C;
      row_dx(dy + r * S, x + r * S, dx + r * S, S, mean[c], k1[c], k2[c], k0[c]);
    }
  });
}

template <class T>
void bn_dx_channel(const T* dy, const T* x, T* dx, int64_t N, int64_t C, int64_t S, int64_t c, T m, T k1, T k2,
                   T k0) {
  for (int64_t n = 0; n < N; ++n) {
    const int64_t o = (n * C + c) * S;
    if (n + kPrefetchRows < N) prefetch_row_for_write(dx + o + kPrefetchRows * C * S, S);
    row_dx(dy + o, x + o, dx + o, S, m, k1, k2, k0);
  }
}
