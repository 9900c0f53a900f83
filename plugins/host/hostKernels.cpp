/*
 * Host build of the plugin kernels: the CUDA kernels' per-element functions driven by serial loops.
 * Built with the C++ compiler alone; see hostKernels.h for the ABI.
 */
#include "hostKernels.h"

#include "common/msDeformAttnMath.h"
#include "common/pointSelectMath.h"

#include <string>
#include <vector>

using namespace instancevg::plugin;

namespace
{

thread_local std::string gLastError;

int32_t fail(int32_t code, std::string const& why)
{
    gLastError = why;
    return code;
}

//! Level table checks the host can afford (the kernels only guard against out-of-range reads).
int32_t checkLevels(MSDeformAttnDims const& dims, int32_t const* spatialShapes, int32_t const* levelStartIndex)
{
    int64_t expectedStart = 0;
    for (int32_t l = 0; l < dims.numLevels; ++l)
    {
        int32_t const h = spatialShapes[2 * l];
        int32_t const w = spatialShapes[2 * l + 1];
        if (h <= 0 || w <= 0)
        {
            return fail(IVG_HOST_BAD_VALUE,
                "spatial_shapes[" + std::to_string(l) + "] = (" + std::to_string(h) + ", " + std::to_string(w)
                    + "): sizes must be > 0");
        }
        if (levelStartIndex[l] != expectedStart)
        {
            return fail(IVG_HOST_BAD_VALUE,
                "level_start_index[" + std::to_string(l) + "] = " + std::to_string(levelStartIndex[l])
                    + ", expected " + std::to_string(expectedStart) + " from spatial_shapes");
        }
        expectedStart += static_cast<int64_t>(h) * w;
    }
    if (expectedStart != dims.numValues)
    {
        return fail(IVG_HOST_BAD_SHAPE,
            "spatial_shapes cover " + std::to_string(expectedStart) + " values but value has S = "
                + std::to_string(dims.numValues));
    }
    return IVG_HOST_OK;
}

template <typename T, int32_t kVec>
int32_t msDeformAttn(T const* value, int32_t const* spatialShapes, int32_t const* levelStartIndex,
    T const* samplingLocations, T const* attentionWeights, T* out, MSDeformAttnDims const& dims)
{
    if (char const* why = checkMSDeformAttnDims(dims))
    {
        return fail(IVG_HOST_BAD_SHAPE, why);
    }
    if (!spatialShapes || !levelStartIndex || !samplingLocations || !attentionWeights || !out
        || (!value && dims.numValues > 0 && dims.batch > 0))
    {
        return fail(IVG_HOST_NULL_POINTER, "a tensor pointer is null");
    }
    if (int32_t const status = checkLevels(dims, spatialShapes, levelStartIndex))
    {
        return status;
    }
    ScalarLoad<T, kVec> const load{value};
    for (int32_t b = 0; b < dims.batch; ++b)
    {
        for (int32_t q = 0; q < dims.numQueries; ++q)
        {
            for (int32_t m = 0; m < dims.numHeads; ++m)
            {
                int64_t const bqm = (static_cast<int64_t>(b) * dims.numQueries + q) * dims.numHeads + m;
                // One iteration here is one CUDA thread: kVec channels of one (b, q, m).
                for (int32_t d = 0; d < dims.channels; d += kVec)
                {
                    float acc[kVec] = {};
                    msDeformAttnAccumulate<kVec>(dims, spatialShapes, levelStartIndex, samplingLocations,
                        attentionWeights, bqm, b, m, d, load, acc);
                    for (int32_t i = 0; i < kVec; ++i)
                    {
                        fromFloat(acc[i], out + bqm * dims.channels + d + i);
                    }
                }
            }
        }
    }
    gLastError.clear();
    return IVG_HOST_OK;
}

} // namespace

extern "C" {

int32_t ivg_host_abi_version(void)
{
    return 1;
}

char const* ivg_host_last_error(void)
{
    return gLastError.c_str();
}

int32_t ivg_ms_deform_attn_f32(float const* value, int32_t const* spatial_shapes, int32_t const* level_start_index,
    float const* sampling_locations, float const* attention_weights, float* out, int32_t batch, int32_t num_values,
    int32_t num_heads, int32_t channels, int32_t num_queries, int32_t num_levels, int32_t num_points)
{
    MSDeformAttnDims const dims{batch, num_values, num_heads, channels, num_queries, num_levels, num_points};
    return msDeformAttn<float, 1>(
        value, spatial_shapes, level_start_index, sampling_locations, attention_weights, out, dims);
}

int32_t ivg_ms_deform_attn_f16(uint16_t const* value, int32_t const* spatial_shapes,
    int32_t const* level_start_index, uint16_t const* sampling_locations, uint16_t const* attention_weights,
    uint16_t* out, int32_t batch, int32_t num_values, int32_t num_heads, int32_t channels, int32_t num_queries,
    int32_t num_levels, int32_t num_points)
{
    static_assert(sizeof(HalfBits) == sizeof(uint16_t), "HalfBits must be a bare binary16");
    MSDeformAttnDims const dims{batch, num_values, num_heads, channels, num_queries, num_levels, num_points};
    auto const* v = reinterpret_cast<HalfBits const*>(value);
    auto const* loc = reinterpret_cast<HalfBits const*>(sampling_locations);
    auto const* w = reinterpret_cast<HalfBits const*>(attention_weights);
    auto* o = reinterpret_cast<HalfBits*>(out);
    // Same channel grouping as the CUDA kernel: half2 pairs when D is even.
    if (channels > 0 && channels % 2 == 0)
    {
        return msDeformAttn<HalfBits, 2>(v, spatial_shapes, level_start_index, loc, w, o, dims);
    }
    return msDeformAttn<HalfBits, 1>(v, spatial_shapes, level_start_index, loc, w, o, dims);
}

int32_t ivg_point_select(float const* scores, int32_t batch, int32_t height, int32_t width, int32_t num_points,
    float w_dist, int32_t* indices, float* points)
{
    if (char const* why = checkPointSelectArgs(batch, height, width, num_points, w_dist))
    {
        return fail(IVG_HOST_BAD_SHAPE, why);
    }
    if ((!scores || !indices || !points) && batch > 0)
    {
        return fail(IVG_HOST_NULL_POINTER, "a tensor pointer is null");
    }
    int32_t const cells = height * width;
    float const scale = pointSelectScale(w_dist, height, width);
    std::vector<float> dmin(static_cast<size_t>(cells));
    for (int32_t b = 0; b < batch; ++b)
    {
        float const* s = scores + static_cast<int64_t>(b) * cells;
        dmin.assign(static_cast<size_t>(cells), INFINITY);
        for (int32_t k = 0; k < num_points; ++k)
        {
            // One block-wide argmax of the CUDA kernel.
            float best = -INFINITY;
            int32_t bestCell = kNoCell;
            for (int32_t c = 0; c < cells; ++c)
            {
                float const v = k == 0 ? s[c] : selectionScore(s[c], dmin[c], scale);
                if (isBetter(v, c, best, bestCell))
                {
                    best = v;
                    bestCell = c;
                }
            }
            int64_t const out = static_cast<int64_t>(b) * num_points + k;
            indices[out] = bestCell;
            cellCentre(bestCell, height, width, points + 2 * out);
            for (int32_t c = 0; c < cells; ++c)
            {
                dmin[c] = updatedDistance(dmin[c], c, bestCell, width);
            }
        }
    }
    gLastError.clear();
    return IVG_HOST_OK;
}

int32_t ivg_point_select_check_fields(int32_t num_points, float w_dist)
{
    if (char const* why = checkPointSelectFields(num_points, w_dist))
    {
        return fail(IVG_HOST_BAD_VALUE, why);
    }
    gLastError.clear();
    return IVG_HOST_OK;
}

} // extern "C"
