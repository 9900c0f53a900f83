/*
 * C ABI over the kernel launchers for GPU tests (see cudaKernels.h). synchronize = 0 leaves the launch
 * asynchronous, for timing loops.
 */
#include "cudaKernels.h"

#include "msDeformAttnPlugin/msDeformAttnKernel.cuh"
#include "pointSelectPlugin/pointSelectKernel.cuh"

#include <cuda_runtime_api.h>

using namespace instancevg::plugin;

namespace
{

int32_t finish(cudaError_t status, cudaStream_t stream, int32_t synchronize)
{
    if (status == cudaSuccess && synchronize != 0)
    {
        status = cudaStreamSynchronize(stream);
    }
    return static_cast<int32_t>(status);
}

} // namespace

extern "C" {

int32_t ivg_cuda_abi_version(void)
{
    return 1;
}

int32_t ivg_cuda_set_device(int32_t device)
{
    return static_cast<int32_t>(cudaSetDevice(device));
}

int32_t ivg_cuda_ms_deform_attn(int32_t dtype, void const* value, int32_t const* spatial_shapes,
    int32_t const* level_start_index, void const* sampling_locations, void const* attention_weights, void* out,
    int32_t batch, int32_t num_values, int32_t num_heads, int32_t channels, int32_t num_queries, int32_t num_levels,
    int32_t num_points, void* stream, int32_t synchronize)
{
    if (dtype != 0 && dtype != 1)
    {
        return static_cast<int32_t>(cudaErrorInvalidValue);
    }
    MSDeformAttnDims const dims{batch, num_values, num_heads, channels, num_queries, num_levels, num_points};
    auto const s = static_cast<cudaStream_t>(stream);
    cudaError_t const status = launchMSDeformAttn(dims, dtype == 0 ? ScalarType::kFLOAT32 : ScalarType::kFLOAT16,
        value, spatial_shapes, level_start_index, sampling_locations, attention_weights, out, s);
    return finish(status, s, synchronize);
}

size_t ivg_cuda_point_select_workspace_size(int32_t batch, int32_t height, int32_t width)
{
    return pointSelectWorkspaceSize(batch, height, width);
}

int32_t ivg_cuda_point_select(float const* scores, int32_t batch, int32_t height, int32_t width,
    int32_t num_points, float w_dist, void* workspace, int32_t* indices, float* points, void* stream,
    int32_t synchronize)
{
    auto const s = static_cast<cudaStream_t>(stream);
    cudaError_t const status
        = launchPointSelect(scores, batch, height, width, num_points, w_dist, workspace, indices, points, s);
    return finish(status, s, synchronize);
}

char const* ivg_cuda_error_string(int32_t status)
{
    return cudaGetErrorString(static_cast<cudaError_t>(status));
}

} // extern "C"
