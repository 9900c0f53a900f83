/*
 * PointSelect CUDA kernel launcher. No TensorRT types: the plugin and the GPU-test C ABI both call it.
 */
#ifndef INSTANCEVG_POINT_SELECT_KERNEL_CUH
#define INSTANCEVG_POINT_SELECT_KERNEL_CUH

#include "common/pointSelectMath.h"

#include <cstddef>
#include <cuda_runtime_api.h>

namespace instancevg
{
namespace plugin
{

//! Maps up to this many cells keep their running distances in shared memory (48 KiB, no opt-in needed);
//! larger maps keep them in the workspace.
constexpr int32_t kPointSelectMaxSharedCells = 48 * 1024 / static_cast<int32_t>(sizeof(float));

//! Workspace bytes launchPointSelect needs for [batch, height, width] scores (0 for maps that fit in shared memory).
size_t pointSelectWorkspaceSize(int64_t batch, int64_t height, int64_t width) noexcept;

//! Enqueues the greedy selection of numPoints cells per batch item: one block per item, one launch.
//! scores [B,h,w] float32, indices [B,N] int32, points [B,N,2] float32, all device memory. workspace must hold
//! pointSelectWorkspaceSize(batch, height, width) bytes. Returns the launch status (no synchronisation).
cudaError_t launchPointSelect(float const* scores, int32_t batch, int32_t height, int32_t width, int32_t numPoints,
    float wDist, void* workspace, int32_t* indices, float* points, cudaStream_t stream) noexcept;

} // namespace plugin
} // namespace instancevg

#endif // INSTANCEVG_POINT_SELECT_KERNEL_CUH
