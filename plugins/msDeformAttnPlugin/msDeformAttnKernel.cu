/*
 * MSDeformAttn forward kernel.
 *
 * Thread mapping: one thread per (b, q, m, group of kVec channels), channels fastest. The D channels of one
 * (b, q, m) are consecutive threads, and value[b, s, m, :] is contiguous, so every bilinear corner is one
 * coalesced D-wide load per head (128 bytes for D = 32 in FP32, 64 bytes in FP16). FP16 uses kVec = 2: one
 * half2 load per corner and thread. The sampling locations and weights of (b, q, m) are the same addresses for
 * all threads of the group (broadcast loads); each thread recomputes the FP32 bilinear weights, which costs a
 * few FLOPs against four memory loads. Each output element is written by exactly one thread: no atomics.
 */
#include "msDeformAttnKernel.cuh"

#include <cuda_fp16.h>

namespace instancevg
{
namespace plugin
{
namespace
{

constexpr int32_t kBlockSize = 256;

template <typename T>
struct LdgLoad
{
    T const* base;
    __device__ __forceinline__ FloatVec<1> operator()(int64_t offset) const
    {
        return {{toFloat(__ldg(base + offset))}};
    }
};

struct Half2Load
{
    __half const* base;
    __device__ __forceinline__ FloatVec<2> operator()(int64_t offset) const
    {
        // offset is even (d even, D even) and TensorRT allocations are 256-byte aligned: a 4-byte aligned load.
        float2 const f = __half22float2(__ldg(reinterpret_cast<__half2 const*>(base + offset)));
        return {{f.x, f.y}};
    }
};

template <typename T, int32_t kVec>
__device__ __forceinline__ void storeOutput(T* out, float const (&acc)[kVec])
{
#pragma unroll
    for (int32_t i = 0; i < kVec; ++i)
    {
        fromFloat(acc[i], out + i);
    }
}

template <>
__device__ __forceinline__ void storeOutput<__half, 2>(__half* out, float const (&acc)[2])
{
    *reinterpret_cast<__half2*>(out) = __floats2half2_rn(acc[0], acc[1]);
}

template <typename T, int32_t kVec, typename Load>
__global__ void __launch_bounds__(kBlockSize) msDeformAttnKernel(MSDeformAttnDims dims,
    int32_t const* __restrict__ spatialShapes, int32_t const* __restrict__ levelStartIndex,
    T const* __restrict__ value, T const* __restrict__ samplingLocations, T const* __restrict__ attentionWeights,
    T* __restrict__ output, int64_t numThreads)
{
    int64_t const t = static_cast<int64_t>(blockIdx.x) * kBlockSize + threadIdx.x;
    if (t >= numThreads)
    {
        return;
    }
    int32_t const groups = dims.channels / kVec;
    int64_t const bqm = t / groups;
    int32_t const d = static_cast<int32_t>(t - bqm * groups) * kVec;
    int32_t const m = static_cast<int32_t>(bqm % dims.numHeads);
    int32_t const b = static_cast<int32_t>(bqm / (static_cast<int64_t>(dims.numHeads) * dims.numQueries));
    float acc[kVec] = {};
    msDeformAttnAccumulate<kVec>(
        dims, spatialShapes, levelStartIndex, samplingLocations, attentionWeights, bqm, b, m, d, Load{value}, acc);
    storeOutput<T, kVec>(output + bqm * dims.channels + d, acc);
}

template <typename T, int32_t kVec, typename Load>
cudaError_t launch(MSDeformAttnDims const& dims, void const* value, int32_t const* spatialShapes,
    int32_t const* levelStartIndex, void const* samplingLocations, void const* attentionWeights, void* output,
    cudaStream_t stream)
{
    int64_t const numThreads = static_cast<int64_t>(dims.batch) * dims.numQueries * dims.numHeads
        * (dims.channels / kVec);
    if (numThreads == 0)
    {
        return cudaSuccess;
    }
    int64_t const numBlocks = (numThreads + kBlockSize - 1) / kBlockSize;
    if (numBlocks > 0x7FFFFFFF)
    {
        return cudaErrorInvalidConfiguration;
    }
    msDeformAttnKernel<T, kVec, Load><<<static_cast<uint32_t>(numBlocks), kBlockSize, 0, stream>>>(dims,
        spatialShapes, levelStartIndex, static_cast<T const*>(value), static_cast<T const*>(samplingLocations),
        static_cast<T const*>(attentionWeights), static_cast<T*>(output), numThreads);
    return cudaGetLastError();
}

} // namespace

cudaError_t launchMSDeformAttn(MSDeformAttnDims const& dims, ScalarType type, void const* value,
    int32_t const* spatialShapes, int32_t const* levelStartIndex, void const* samplingLocations,
    void const* attentionWeights, void* output, cudaStream_t stream) noexcept
{
    if (checkMSDeformAttnDims(dims) != nullptr)
    {
        return cudaErrorInvalidValue;
    }
    if (type == ScalarType::kFLOAT32)
    {
        return launch<float, 1, LdgLoad<float>>(
            dims, value, spatialShapes, levelStartIndex, samplingLocations, attentionWeights, output, stream);
    }
    if (type == ScalarType::kFLOAT16)
    {
        bool const paired = dims.channels % 2 == 0 && reinterpret_cast<uintptr_t>(value) % 4 == 0
            && reinterpret_cast<uintptr_t>(output) % 4 == 0;
        if (paired)
        {
            return launch<__half, 2, Half2Load>(
                dims, value, spatialShapes, levelStartIndex, samplingLocations, attentionWeights, output, stream);
        }
        return launch<__half, 1, LdgLoad<__half>>(
            dims, value, spatialShapes, levelStartIndex, samplingLocations, attentionWeights, output, stream);
    }
    return cudaErrorInvalidValue;
}

} // namespace plugin
} // namespace instancevg
