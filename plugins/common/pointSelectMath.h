/*
 * Dynamic point selection: per-cell math shared by the CUDA kernel and the host library.
 *
 * Semantics: instancevg/ops/select_points.py (the dynamic point selector). Step 0 picks argmax(s); step k
 * picks argmax over cells of  chosen ? -inf : s + scale * dmin  with scale = w_dist / sqrt(h^2 + w^2) and dmin
 * the Euclidean distance in (row, col) cells to the nearest chosen cell; ties go to the lowest row-major index.
 * Every operation is a separately rounded FP32 operation, as in the reference, so both builds reproduce its
 * ranking bit for bit.
 */
#ifndef INSTANCEVG_PLUGIN_POINT_SELECT_MATH_H
#define INSTANCEVG_PLUGIN_POINT_SELECT_MATH_H

#include "hostDevice.h"

#include <limits>

namespace instancevg
{
namespace plugin
{

//! Running distance of a chosen cell. Distances are >= 0, so min(kChosen, d) keeps a cell chosen.
constexpr float kChosen = -1.F;

//! Index that loses every tie against a real cell: the identity of the argmax reduction.
constexpr int32_t kNoCell = std::numeric_limits<int32_t>::max();

//! The scale applied to distances: computed in double and rounded once to float, as PyTorch rounds the Python
//! scalar w_dist / math.sqrt(h * h + w * w) when it multiplies a float32 tensor.
inline float pointSelectScale(float wDist, int32_t height, int32_t width)
{
    double const diagonal = std::sqrt(static_cast<double>(height) * height + static_cast<double>(width) * width);
    return static_cast<float>(static_cast<double>(wDist) / diagonal);
}

//! Checks the plugin fields on their own (the creator's check, before shapes are known). nullptr or the reason.
inline char const* checkPointSelectFields(int32_t numPoints, float wDist)
{
    if (numPoints < 1)
    {
        return "num_points must be >= 1";
    }
    if (!std::isfinite(wDist))
    {
        return "w_dist must be finite";
    }
    return nullptr;
}

//! Checks sizes and parameters of one call. Returns nullptr or the reason.
inline char const* checkPointSelectArgs(int32_t batch, int32_t height, int32_t width, int32_t numPoints, float wDist)
{
    if (char const* why = checkPointSelectFields(numPoints, wDist))
    {
        return why;
    }
    if (batch < 0 || height <= 0 || width <= 0)
    {
        return "scores must be [B, h, w] with B >= 0, h > 0 and w > 0";
    }
    if (static_cast<int64_t>(height) * width > std::numeric_limits<int32_t>::max())
    {
        return "h * w must fit in int32 (indices are int32)";
    }
    if (static_cast<int64_t>(numPoints) > static_cast<int64_t>(height) * width)
    {
        return "num_points must not exceed h * w";
    }
    return nullptr;
}

IVG_HOST_DEVICE bool isNan(float v)
{
    return v != v;
}

//! True when candidate (a, ia) beats (b, ib) in torch.argmax order: NaN is the maximum, equal values go to
//! the lower index.
IVG_HOST_DEVICE bool isBetter(float a, int32_t ia, float b, int32_t ib)
{
    bool const nanA = isNan(a);
    bool const nanB = isNan(b);
    if (nanA != nanB)
    {
        return nanA;
    }
    if (!nanA && a != b)
    {
        return a > b;
    }
    return ia < ib;
}

//! The ranked value of a cell at step k (> 0); the first step ranks the bare scores.
IVG_HOST_DEVICE float selectionScore(float score, float dmin, float scale)
{
    return dmin == kChosen ? -INFINITY : addRn(score, mulRn(scale, dmin));
}

//! Euclidean distance in cells between flat row-major cells a and b, computed as the reference does
//! (float rows and cols, separately rounded squares and sum, correctly rounded sqrt).
IVG_HOST_DEVICE float cellDistance(int32_t a, int32_t b, int32_t width)
{
    float const dr = static_cast<float>(a / width) - static_cast<float>(b / width);
    float const dc = static_cast<float>(a % width) - static_cast<float>(b % width);
    return sqrtRn(addRn(mulRn(dr, dr), mulRn(dc, dc)));
}

//! New running distance of cell c once cell pick is chosen.
IVG_HOST_DEVICE float updatedDistance(float dmin, int32_t c, int32_t pick, int32_t width)
{
    if (c == pick)
    {
        return kChosen;
    }
    float const d = cellDistance(c, pick, width);
    return d < dmin ? d : dmin; // a chosen cell keeps kChosen (< any distance)
}

//! Cell centre ((col + 0.5) / w, (row + 0.5) / h) as (x, y).
IVG_HOST_DEVICE void cellCentre(int32_t cell, int32_t height, int32_t width, float* xy)
{
    xy[0] = divRn(static_cast<float>(cell % width) + 0.5F, static_cast<float>(width));
    xy[1] = divRn(static_cast<float>(cell / width) + 0.5F, static_cast<float>(height));
}

} // namespace plugin
} // namespace instancevg

#endif // INSTANCEVG_PLUGIN_POINT_SELECT_MATH_H
