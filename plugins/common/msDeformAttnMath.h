/*
 * Multi-scale deformable attention: per-output math shared by the CUDA kernel and the host library.
 *
 * Semantics: instancevg/ops/ms_deform_attn.py. For output channel m*D + d of query (b, q):
 *   out = sum_{l, p} w[b,q,m,l,p] * bilinear(value[b, start_l : start_l + H_l*W_l, m, d] as an H_l x W_l map,
 *                                              x = loc_x * W_l - 0.5, y = loc_y * H_l - 0.5)
 * with zero padding outside the map (grid_sample, align_corners=False). Coordinates, bilinear weights and the
 * accumulation are FP32 whatever the storage type.
 */
#ifndef INSTANCEVG_PLUGIN_MS_DEFORM_ATTN_MATH_H
#define INSTANCEVG_PLUGIN_MS_DEFORM_ATTN_MATH_H

#include "hostDevice.h"

namespace instancevg
{
namespace plugin
{

//! Sizes of one MSDeformAttn call: value [B,S,M,D], locations [B,Q,M,L,P,2], weights [B,Q,M,L,P].
struct MSDeformAttnDims
{
    int32_t batch;
    int32_t numValues; // S = sum over levels of H_l * W_l
    int32_t numHeads;  // M
    int32_t channels;  // D, channels per head
    int32_t numQueries;
    int32_t numLevels;
    int32_t numPoints;
};

//! Checks sizes only (the level table is data: kernels guard it per level). Returns nullptr or the reason.
inline char const* checkMSDeformAttnDims(MSDeformAttnDims const& d)
{
    if (d.batch < 0 || d.numValues < 0 || d.numQueries < 0)
    {
        return "batch, number of values and number of queries must be >= 0";
    }
    if (d.numHeads <= 0 || d.channels <= 0 || d.numLevels <= 0 || d.numPoints <= 0)
    {
        return "heads, channels per head, levels and points must be > 0";
    }
    return nullptr;
}

template <int32_t kVec>
struct FloatVec
{
    float v[kVec];
};

//! Loads kVec consecutive channels of a value tensor as floats, one element at a time.
template <typename T, int32_t kVec>
struct ScalarLoad
{
    T const* base;
    IVG_HOST_DEVICE FloatVec<kVec> operator()(int64_t offset) const
    {
        FloatVec<kVec> r;
#if defined(__CUDACC__)
#pragma unroll
#endif
        for (int32_t i = 0; i < kVec; ++i)
        {
            r.v[i] = toFloat(base[offset + i]);
        }
        return r;
    }
};

//! Accumulates channels [d, d + kVec) of output (b, q, m) into acc (caller zero-initialises acc).
//! bqm = (b * Q + q) * M + m indexes the (b, q, m) row of locations and weights. Levels whose table entry is
//! inconsistent with S read zeros instead of memory outside value.
template <int32_t kVec, typename T, typename Load>
IVG_HOST_DEVICE void msDeformAttnAccumulate(MSDeformAttnDims const& dims, int32_t const* spatialShapes,
    int32_t const* levelStartIndex, T const* samplingLocations, T const* attentionWeights, int64_t bqm, int32_t b,
    int32_t m, int32_t d, Load const& load, float (&acc)[kVec])
{
    int64_t const headStride = static_cast<int64_t>(dims.numHeads) * dims.channels; // one value row
    int64_t const batchBase = static_cast<int64_t>(b) * dims.numValues;
    int64_t const channelBase = static_cast<int64_t>(m) * dims.channels + d;
    int64_t sample = bqm * dims.numLevels * dims.numPoints;
    for (int32_t l = 0; l < dims.numLevels; ++l)
    {
        int32_t const height = spatialShapes[2 * l];
        int32_t const width = spatialShapes[2 * l + 1];
        int32_t const start = levelStartIndex[l];
        if (height <= 0 || width <= 0 || start < 0
            || static_cast<int64_t>(start) + static_cast<int64_t>(height) * width > dims.numValues)
        {
            sample += dims.numPoints;
            continue;
        }
        for (int32_t p = 0; p < dims.numPoints; ++p, ++sample)
        {
            float const weight = toFloat(attentionWeights[sample]);
            float const x = toFloat(samplingLocations[2 * sample]) * static_cast<float>(width) - 0.5F;
            float const y = toFloat(samplingLocations[2 * sample + 1]) * static_cast<float>(height) - 0.5F;
            // Entirely outside (or NaN): every corner is padding. Also keeps the int conversions below in range.
            if (!(x > -1.F && y > -1.F && x < static_cast<float>(width) && y < static_cast<float>(height)))
            {
                continue;
            }
            float const x0f = floorf(x);
            float const y0f = floorf(y);
            int32_t const x0 = static_cast<int32_t>(x0f);
            int32_t const y0 = static_cast<int32_t>(y0f);
            float const fx = x - x0f;
            float const fy = y - y0f;
            int32_t const xs[2] = {x0, x0 + 1};
            int32_t const ys[2] = {y0, y0 + 1};
            float const wx[2] = {1.F - fx, fx};
            float const wy[2] = {1.F - fy, fy};
#if defined(__CUDACC__)
#pragma unroll
#endif
            for (int32_t cy = 0; cy < 2; ++cy)
            {
#if defined(__CUDACC__)
#pragma unroll
#endif
                for (int32_t cx = 0; cx < 2; ++cx)
                {
                    if (ys[cy] < 0 || ys[cy] >= height || xs[cx] < 0 || xs[cx] >= width)
                    {
                        continue;
                    }
                    int64_t const row = batchBase + start + static_cast<int64_t>(ys[cy]) * width + xs[cx];
                    FloatVec<kVec> const v = load(row * headStride + channelBase);
                    float const cw = weight * wy[cy] * wx[cx];
#if defined(__CUDACC__)
#pragma unroll
#endif
                    for (int32_t i = 0; i < kVec; ++i)
                    {
                        acc[i] += cw * v.v[i];
                    }
                }
            }
        }
    }
}

} // namespace plugin
} // namespace instancevg

#endif // INSTANCEVG_PLUGIN_MS_DEFORM_ATTN_MATH_H
