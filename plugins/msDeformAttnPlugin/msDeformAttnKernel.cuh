/*
 * MSDeformAttn CUDA kernel launcher. No TensorRT types: the plugin and the GPU-test C ABI both call it.
 */
#ifndef INSTANCEVG_MS_DEFORM_ATTN_KERNEL_CUH
#define INSTANCEVG_MS_DEFORM_ATTN_KERNEL_CUH

#include "common/msDeformAttnMath.h"

#include <cuda_runtime_api.h>

namespace instancevg
{
namespace plugin
{

//! Storage type of value, sampling_locations, attention_weights and the output.
enum class ScalarType : int32_t
{
    kFLOAT32 = 0,
    kFLOAT16 = 1,
};

//! Enqueues out[B,Q,M*D] = MSDeformAttn(value, spatialShapes, levelStartIndex, samplingLocations,
//! attentionWeights) on stream. All pointers are device memory; spatialShapes [L,2] and levelStartIndex [L] are
//! int32 and read on the device. Returns the launch status (no synchronisation).
cudaError_t launchMSDeformAttn(MSDeformAttnDims const& dims, ScalarType type, void const* value,
    int32_t const* spatialShapes, int32_t const* levelStartIndex, void const* samplingLocations,
    void const* attentionWeights, void* output, cudaStream_t stream) noexcept;

} // namespace plugin
} // namespace instancevg

#endif // INSTANCEVG_MS_DEFORM_ATTN_KERNEL_CUH
