/*
 * C ABI of the CUDA kernels without TensorRT (libinstancevg_kernels_cuda.so), for GPU tests: the same launchers
 * the plugins call, taking device pointers (e.g. torch CUDA tensors' data_ptr()) and a CUDA stream handle.
 * Every launcher returns a cudaError_t value (0 = success); with synchronize != 0 it synchronises the stream
 * first, so that tests see kernel faults at the call that caused them. The library links the CUDA runtime
 * statically, so its current device is its own: callers select the device of their tensors with
 * ivg_cuda_set_device before launching on a stream of that device.
 */
#ifndef INSTANCEVG_PLUGIN_CUDA_KERNELS_H
#define INSTANCEVG_PLUGIN_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define IVG_CUDA_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C" {
#endif

//! Version of this ABI; bumped whenever a signature below changes.
IVG_CUDA_API int32_t ivg_cuda_abi_version(void);

//! cudaSetDevice for this library's runtime on the calling thread.
IVG_CUDA_API int32_t ivg_cuda_set_device(int32_t device);

//! dtype 0 = float32, 1 = float16 for value, sampling_locations, attention_weights and out.
IVG_CUDA_API int32_t ivg_cuda_ms_deform_attn(int32_t dtype, void const* value, int32_t const* spatial_shapes,
    int32_t const* level_start_index, void const* sampling_locations, void const* attention_weights, void* out,
    int32_t batch, int32_t num_values, int32_t num_heads, int32_t channels, int32_t num_queries, int32_t num_levels,
    int32_t num_points, void* stream, int32_t synchronize);

IVG_CUDA_API size_t ivg_cuda_point_select_workspace_size(int32_t batch, int32_t height, int32_t width);

IVG_CUDA_API int32_t ivg_cuda_point_select(float const* scores, int32_t batch, int32_t height, int32_t width,
    int32_t num_points, float w_dist, void* workspace, int32_t* indices, float* points, void* stream,
    int32_t synchronize);

//! cudaGetErrorString of a status returned above.
IVG_CUDA_API char const* ivg_cuda_error_string(int32_t status);

#ifdef __cplusplus
}
#endif

#endif // INSTANCEVG_PLUGIN_CUDA_KERNELS_H
