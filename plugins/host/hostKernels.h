/*
 * C ABI of the host build of the plugin kernels (libinstancevg_plugins_host.so).
 *
 * The same per-element functions as the CUDA kernels (common/msDeformAttnMath.h, common/pointSelectMath.h),
 * run serially on the CPU. Built with the C++ compiler alone (no CUDA, no TensorRT) so that CPU tests compare
 * the plugin math with instancevg/ops. All tensors are dense, row-major, host memory. FP16 tensors are passed
 * as IEEE binary16 bit patterns (uint16). Every function returns 0 on success or a negative code, with the
 * reason in ivg_host_last_error() (thread-local).
 */
#ifndef INSTANCEVG_PLUGIN_HOST_KERNELS_H
#define INSTANCEVG_PLUGIN_HOST_KERNELS_H

#include <stdint.h>

#if defined(_WIN32)
#define IVG_HOST_API __declspec(dllexport)
#else
#define IVG_HOST_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum
{
    IVG_HOST_OK = 0,
    IVG_HOST_NULL_POINTER = -1,
    IVG_HOST_BAD_SHAPE = -2,
    IVG_HOST_BAD_VALUE = -3
};

//! Version of this ABI; bumped whenever a signature below changes.
IVG_HOST_API int32_t ivg_host_abi_version(void);

//! Reason of the last failure on this thread ("" when none).
IVG_HOST_API char const* ivg_host_last_error(void);

//! value [B,S,M,D], spatial_shapes [L,2], level_start_index [L], sampling_locations [B,Q,M,L,P,2],
//! attention_weights [B,Q,M,L,P] -> out [B,Q,M*D]. spatial_shapes and level_start_index are checked
//! against S (the CUDA kernel, which cannot report, reads zeros for an inconsistent level instead).
IVG_HOST_API int32_t ivg_ms_deform_attn_f32(float const* value, int32_t const* spatial_shapes,
    int32_t const* level_start_index, float const* sampling_locations, float const* attention_weights, float* out,
    int32_t batch, int32_t num_values, int32_t num_heads, int32_t channels, int32_t num_queries, int32_t num_levels,
    int32_t num_points);

//! As ivg_ms_deform_attn_f32 with binary16 value, locations, weights and output (FP32 math inside).
IVG_HOST_API int32_t ivg_ms_deform_attn_f16(uint16_t const* value, int32_t const* spatial_shapes,
    int32_t const* level_start_index, uint16_t const* sampling_locations, uint16_t const* attention_weights,
    uint16_t* out, int32_t batch, int32_t num_values, int32_t num_heads, int32_t channels, int32_t num_queries,
    int32_t num_levels, int32_t num_points);

//! scores [B,h,w] -> indices [B,N] (row * w + col) and points [B,N,2] (x, y).
IVG_HOST_API int32_t ivg_point_select(float const* scores, int32_t batch, int32_t height, int32_t width,
    int32_t num_points, float w_dist, int32_t* indices, float* points);

//! Validation the PointSelect creator applies to its fields before shapes are known (num_points >= 1,
//! w_dist finite): 0 when accepted.
IVG_HOST_API int32_t ivg_point_select_check_fields(int32_t num_points, float w_dist);

#ifdef __cplusplus
}
#endif

#endif // INSTANCEVG_PLUGIN_HOST_KERNELS_H
