/*
 * PointSelect (namespace "instancevg", version "1"): the greedy dynamic point selector of AQSM as one IPluginV3.
 *
 *   fields  num_points int32 (N >= 1), w_dist float32 (finite)
 *   input   0 scores   [B, h, w]  float32 (already sigmoid-ed)
 *   outputs 0 indices  [B, N]     int32, row * w + col
 *           1 points   [B, N, 2]  float32, ((col + 0.5) / w, (row + 0.5) / h)
 *
 * Semantics: instancevg/ops/select_points.py.
 */
#ifndef INSTANCEVG_POINT_SELECT_PLUGIN_H
#define INSTANCEVG_POINT_SELECT_PLUGIN_H

#include "common/pluginBase.h"

#include <NvInferRuntime.h>

namespace instancevg
{
namespace plugin
{

class PointSelectPlugin final : public PluginV3Base<PointSelectPlugin>
{
public:
    static constexpr char kNAME[] = "PointSelect";
    static constexpr int32_t kNB_INPUTS = 1;
    static constexpr int32_t kNB_OUTPUTS = 2;

    PointSelectPlugin(int32_t numPoints, float wDist) noexcept;
    PointSelectPlugin(PointSelectPlugin const& other) noexcept;
    ~PointSelectPlugin() override = default;

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
    int32_t mNumPoints;
    float mWDist;
    // Point at mNumPoints / mWDist of this object: rebuilt by getFieldsToSerialize, never copied.
    nvinfer1::PluginField mFields[2];
    nvinfer1::PluginFieldCollection mFieldsToSerialize{};
};

//! Fields num_points, w_dist.
class PointSelectPluginCreator final : public PluginCreatorV3Base<PointSelectPlugin>
{
public:
    PointSelectPluginCreator() noexcept;

    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;

private:
    nvinfer1::PluginField mFieldNames[2];
};

} // namespace plugin
} // namespace instancevg

#endif // INSTANCEVG_POINT_SELECT_PLUGIN_H
