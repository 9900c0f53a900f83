/*
 * PointSelect kernel: the whole greedy selection of one batch item in one block, one launch for the batch.
 *
 * Each thread owns the cells c = threadIdx.x + j * kBlockSize and keeps their running minimum distance to the
 * chosen cells (shared memory, or the workspace for large maps). A step is: every thread ranks its own cells,
 * a warp-shuffle argmax, an argmax over the warps' winners, and every thread folds the distance to the new
 * cell into its own cells. The argmax order (value, then lower index; NaN highest) is a total order, so the
 * reduction tree picks what the reference's serial argmax picks.
 */
#include "pointSelectKernel.cuh"

namespace instancevg
{
namespace plugin
{
namespace
{

constexpr int32_t kBlockSize = 256;
constexpr int32_t kWarpSize = 32;
constexpr int32_t kNbWarps = kBlockSize / kWarpSize;

__device__ __forceinline__ void warpArgmax(float& value, int32_t& cell)
{
#pragma unroll
    for (int32_t offset = kWarpSize / 2; offset > 0; offset /= 2)
    {
        float const otherValue = __shfl_down_sync(0xFFFFFFFFU, value, offset);
        int32_t const otherCell = __shfl_down_sync(0xFFFFFFFFU, cell, offset);
        if (isBetter(otherValue, otherCell, value, cell))
        {
            value = otherValue;
            cell = otherCell;
        }
    }
}

__global__ void __launch_bounds__(kBlockSize) pointSelectKernel(float const* __restrict__ scores, int32_t height,
    int32_t width, int32_t numPoints, float scale, float* __restrict__ workspace, int32_t* __restrict__ indices,
    float* __restrict__ points)
{
    extern __shared__ float sharedDistance[];
    __shared__ float warpValue[kNbWarps];
    __shared__ int32_t warpCell[kNbWarps];
    __shared__ int32_t picked;

    int32_t const cells = height * width;
    int64_t const item = blockIdx.x;
    float const* s = scores + item * cells;
    float* dmin = workspace != nullptr ? workspace + item * cells : sharedDistance;
    int32_t const lane = threadIdx.x % kWarpSize;
    int32_t const warp = threadIdx.x / kWarpSize;

    for (int32_t c = threadIdx.x; c < cells; c += kBlockSize)
    {
        dmin[c] = INFINITY;
    }
    for (int32_t k = 0; k < numPoints; ++k)
    {
        float best = -INFINITY;
        int32_t bestCell = kNoCell;
        for (int32_t c = threadIdx.x; c < cells; c += kBlockSize)
        {
            float const score = __ldg(s + c);
            float const v = k == 0 ? score : selectionScore(score, dmin[c], scale);
            if (isBetter(v, c, best, bestCell))
            {
                best = v;
                bestCell = c;
            }
        }
        warpArgmax(best, bestCell);
        if (lane == 0)
        {
            warpValue[warp] = best;
            warpCell[warp] = bestCell;
        }
        __syncthreads();
        if (warp == 0)
        {
            best = lane < kNbWarps ? warpValue[lane] : -INFINITY;
            bestCell = lane < kNbWarps ? warpCell[lane] : kNoCell;
            warpArgmax(best, bestCell);
            if (lane == 0)
            {
                picked = bestCell;
                int64_t const out = item * numPoints + k;
                indices[out] = bestCell;
                cellCentre(bestCell, height, width, points + 2 * out);
            }
        }
        __syncthreads();
        int32_t const pick = picked;
        for (int32_t c = threadIdx.x; c < cells; c += kBlockSize)
        {
            dmin[c] = updatedDistance(dmin[c], c, pick, width);
        }
    }
}

} // namespace

size_t pointSelectWorkspaceSize(int64_t batch, int64_t height, int64_t width) noexcept
{
    int64_t const cells = height * width;
    if (batch <= 0 || cells <= kPointSelectMaxSharedCells)
    {
        return 0;
    }
    return static_cast<size_t>(batch * cells) * sizeof(float);
}

cudaError_t launchPointSelect(float const* scores, int32_t batch, int32_t height, int32_t width, int32_t numPoints,
    float wDist, void* workspace, int32_t* indices, float* points, cudaStream_t stream) noexcept
{
    if (checkPointSelectArgs(batch, height, width, numPoints, wDist) != nullptr)
    {
        return cudaErrorInvalidValue;
    }
    if (batch == 0)
    {
        return cudaSuccess;
    }
    int32_t const cells = height * width;
    bool const useShared = cells <= kPointSelectMaxSharedCells;
    if (!useShared && workspace == nullptr)
    {
        return cudaErrorInvalidValue;
    }
    size_t const sharedBytes = useShared ? static_cast<size_t>(cells) * sizeof(float) : 0;
    pointSelectKernel<<<static_cast<uint32_t>(batch), kBlockSize, sharedBytes, stream>>>(scores, height, width,
        numPoints, pointSelectScale(wDist, height, width), useShared ? nullptr : static_cast<float*>(workspace),
        indices, points);
    return cudaGetLastError();
}

} // namespace plugin
} // namespace instancevg
