/*
 * MSDeformAttn (namespace "instancevg", version "1"): multi-scale deformable attention as one IPluginV3.
 *
 *   inputs  0 value              [B, S, M, D]        float32 | float16
 *           1 spatial_shapes     [L, 2]              int32 (H_l, W_l), read on the device
 *           2 level_start_index  [L]                 int32
 *           3 sampling_locations [B, Q, M, L, P, 2]  value's type
 *           4 attention_weights  [B, Q, M, L, P]     value's type
 *   output  0                    [B, Q, M * D]       value's type
 *
 * No fields. Semantics: instancevg/ops/ms_deform_attn.py.
 */
#ifndef INSTANCEVG_MS_DEFORM_ATTN_PLUGIN_H
#define INSTANCEVG_MS_DEFORM_ATTN_PLUGIN_H

#include "common/pluginBase.h"

#include <NvInferRuntime.h>

namespace instancevg
{
namespace plugin
{

class MSDeformAttnPlugin final : public PluginV3Base<MSDeformAttnPlugin>
{
public:
    static constexpr char kNAME[] = "MSDeformAttn";
    static constexpr int32_t kNB_INPUTS = 5;
    static constexpr int32_t kNB_OUTPUTS = 1;

    MSDeformAttnPlugin() = default;
    MSDeformAttnPlugin(MSDeformAttnPlugin const&) = default;
    ~MSDeformAttnPlugin() override = default;

    // IPluginV3OneBuild
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
        nvinfer1::DimsExprs const* shapeInputs, int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs,
        int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    nvinfer1::PluginFieldCollection mFieldsToSerialize{0, nullptr};
};

//! No fields.
class MSDeformAttnPluginCreator final : public PluginCreatorV3Base<MSDeformAttnPlugin>
{
public:
    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;
};

} // namespace plugin
} // namespace instancevg

#endif // INSTANCEVG_MS_DEFORM_ATTN_PLUGIN_H
