/*
 * instancevg TensorRT plugins: helpers shared by the CUDA kernels and their host build.
 *
 * The per-element math of both plugins is written once, as functions usable from device code (nvcc) and
 * from plain C++ (the host library that CPU tests load). This header is the only place that knows which
 * of the two compilers is reading it.
 */
#ifndef INSTANCEVG_PLUGIN_HOST_DEVICE_H
#define INSTANCEVG_PLUGIN_HOST_DEVICE_H

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define IVG_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define IVG_HOST_DEVICE inline
#endif

namespace instancevg
{
namespace plugin
{

//! IEEE binary16 bit pattern: the half type of the host build (the device build uses __half).
struct HalfBits
{
    uint16_t bits;
};

//! binary16 -> binary32, exact (every half is representable as a float).
inline float halfBitsToFloat(uint16_t h)
{
    uint32_t const sign = static_cast<uint32_t>(h & 0x8000U) << 16;
    uint32_t exponent = (h >> 10) & 0x1FU;
    uint32_t mantissa = h & 0x3FFU;
    uint32_t bits;
    if (exponent == 0x1FU)
    {
        bits = sign | 0x7F800000U | (mantissa << 13); // inf / nan
    }
    else if (exponent != 0)
    {
        bits = sign | ((exponent + 112U) << 23) | (mantissa << 13); // normal: rebias 15 -> 127
    }
    else if (mantissa == 0)
    {
        bits = sign; // signed zero
    }
    else
    {
        // Subnormal half: normalise the mantissa into a float exponent.
        exponent = 113U;
        while ((mantissa & 0x400U) == 0)
        {
            mantissa <<= 1;
            --exponent;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3FFU) << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
}

//! binary32 -> binary16 with round-to-nearest-even, the rounding of __float2half_rn.
inline uint16_t floatToHalfBits(float f)
{
    uint32_t x;
    std::memcpy(&x, &f, sizeof(x));
    uint16_t const sign = static_cast<uint16_t>((x >> 16) & 0x8000U);
    uint32_t const absX = x & 0x7FFFFFFFU;
    if (absX >= 0x7F800000U)
    {
        return static_cast<uint16_t>(sign | 0x7C00U | (absX > 0x7F800000U ? 0x200U : 0U)); // inf / quiet nan
    }
    if (absX >= 0x477FF000U)
    {
        return static_cast<uint16_t>(sign | 0x7C00U); // rounds to >= 65520: overflow to inf
    }
    if (absX < 0x38800000U)
    {
        // Result is a half subnormal (or zero): shift the full mantissa into place, round to nearest even.
        if (absX < 0x33000000U)
        {
            return sign; // below half of the smallest subnormal
        }
        uint32_t const exponent = absX >> 23;
        uint32_t const mantissa = (absX & 0x7FFFFFU) | 0x800000U;
        uint32_t const shift = 126U - exponent; // 14..24
        uint32_t const value = mantissa >> shift;
        uint32_t const rest = mantissa & ((1U << shift) - 1U);
        uint32_t const halfway = 1U << (shift - 1U);
        uint32_t const rounded = value + ((rest > halfway || (rest == halfway && (value & 1U))) ? 1U : 0U);
        return static_cast<uint16_t>(sign | rounded);
    }
    uint32_t const rebased = absX - 0x38000000U; // exponent 127 -> 15
    uint32_t const value = rebased >> 13;
    uint32_t const rest = rebased & 0x1FFFU;
    uint32_t const rounded = value + ((rest > 0x1000U || (rest == 0x1000U && (value & 1U))) ? 1U : 0U);
    return static_cast<uint16_t>(sign | rounded);
}

IVG_HOST_DEVICE float toFloat(float v)
{
    return v;
}

inline float toFloat(HalfBits v)
{
    return halfBitsToFloat(v.bits);
}

IVG_HOST_DEVICE void fromFloat(float v, float* out)
{
    *out = v;
}

inline void fromFloat(float v, HalfBits* out)
{
    out->bits = floatToHalfBits(v);
}

#if defined(__CUDACC__)
IVG_HOST_DEVICE float toFloat(__half v)
{
    return __half2float(v);
}

IVG_HOST_DEVICE void fromFloat(float v, __half* out)
{
    *out = __float2half_rn(v);
}
#endif

// Rounded float operations that the compiler may not fuse into an FMA: PointSelect's ranking must reproduce
// the reference's separately rounded multiply and add, bit for bit, or ties and near-ties break differently.
IVG_HOST_DEVICE float mulRn(float a, float b)
{
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

IVG_HOST_DEVICE float addRn(float a, float b)
{
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

IVG_HOST_DEVICE float divRn(float a, float b)
{
#if defined(__CUDA_ARCH__)
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}

IVG_HOST_DEVICE float sqrtRn(float a)
{
#if defined(__CUDA_ARCH__)
    return __fsqrt_rn(a);
#else
    return std::sqrt(a);
#endif
}

} // namespace plugin
} // namespace instancevg

#endif // INSTANCEVG_PLUGIN_HOST_DEVICE_H
