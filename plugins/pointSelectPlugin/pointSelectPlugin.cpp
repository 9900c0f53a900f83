#include "pointSelectPlugin.h"

#include "common/pluginUtils.h"
#include "pointSelectKernel.cuh"

#include <limits>
#include <new>
#include <string>

using namespace nvinfer1;

namespace instancevg
{
namespace plugin
{
namespace
{

constexpr char kNUM_POINTS[] = "num_points";
constexpr char kW_DIST[] = "w_dist";

void refuse(std::string const& why) noexcept
{
    logError(PointSelectPlugin::kNAME, why);
}

//! scores [B, h, w] with N <= h * w where h and w are known; -1 extents match anything. "" when consistent.
std::string checkScoresDims(Dims const& scores, int32_t numPoints)
{
    if (scores.nbDims != 3)
    {
        return "scores must be [B, h, w], got " + dimsToString(scores);
    }
    int64_t const h = scores.d[1];
    int64_t const w = scores.d[2];
    if (h >= 0 && w >= 0 && (h == 0 || w == 0 || h * w < numPoints || h * w > std::numeric_limits<int32_t>::max()))
    {
        return "scores " + dimsToString(scores) + " must have 1 <= num_points (" + std::to_string(numPoints)
            + ") <= h * w < 2^31";
    }
    return {};
}

std::string checkDescs(PluginTensorDesc const& in, PluginTensorDesc const* out, int32_t numPoints, bool requireKnown)
{
    if (in.type != DataType::kFLOAT || in.format != TensorFormat::kLINEAR)
    {
        return std::string("scores must be linear float32, got ") + dataTypeName(in.type);
    }
    std::string why = checkScoresDims(in.dims, numPoints);
    if (!why.empty())
    {
        return why;
    }
    int64_t const b = in.dims.d[0];
    auto agree = [](int64_t a, int64_t e) { return a < 0 || e < 0 || a == e; };
    if (out[0].type != DataType::kINT32 || out[0].format != TensorFormat::kLINEAR || out[0].dims.nbDims != 2
        || !agree(out[0].dims.d[0], b) || !agree(out[0].dims.d[1], numPoints))
    {
        return "indices must be linear int32 [B, N] = [" + std::to_string(b) + "," + std::to_string(numPoints)
            + "], got " + dataTypeName(out[0].type) + " " + dimsToString(out[0].dims);
    }
    if (out[1].type != DataType::kFLOAT || out[1].format != TensorFormat::kLINEAR || out[1].dims.nbDims != 3
        || !agree(out[1].dims.d[0], b) || !agree(out[1].dims.d[1], numPoints) || !agree(out[1].dims.d[2], 2))
    {
        return "points must be linear float32 [B, N, 2], got " + std::string(dataTypeName(out[1].type)) + " "
            + dimsToString(out[1].dims);
    }
    if (requireKnown && (b < 0 || b > std::numeric_limits<int32_t>::max() || in.dims.d[1] < 0 || in.dims.d[2] < 0))
    {
        return "scores extents must be known and < 2^31, got " + dimsToString(in.dims);
    }
    return {};
}

} // namespace

PointSelectPlugin::PointSelectPlugin(int32_t numPoints, float wDist) noexcept
    : mNumPoints(numPoints)
    , mWDist(wDist)
{
}

PointSelectPlugin::PointSelectPlugin(PointSelectPlugin const& other) noexcept
    : PointSelectPlugin(other.mNumPoints, other.mWDist)
{
}

int32_t PointSelectPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    try
    {
        if (!countsOk(nbInputs, nbOutputs) || outputTypes == nullptr || inputTypes == nullptr)
        {
            return -1;
        }
        if (inputTypes[0] != DataType::kFLOAT)
        {
            // FP16 cannot resolve neighbouring sigmoid scores (export/README.md): the selection path stays FP32.
            refuse(std::string("scores must be float32, got ") + dataTypeName(inputTypes[0])
                + " (keep the selection path in float32)");
            return -1;
        }
        outputTypes[0] = DataType::kINT32;
        outputTypes[1] = DataType::kFLOAT;
        return 0;
    }
    catch (...)
    {
        return -1;
    }
}

int32_t PointSelectPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
    DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
    IExprBuilder& exprBuilder) noexcept
{
    try
    {
        if (!countsOk(nbInputs, nbOutputs) || inputs == nullptr || outputs == nullptr)
        {
            return -1;
        }
        if (!accepted(checkScoresDims(constantDims(inputs[0]), mNumPoints)))
        {
            return -1;
        }
        IDimensionExpr const* n = exprBuilder.constant(mNumPoints);
        IDimensionExpr const* two = exprBuilder.constant(2);
        if (n == nullptr || two == nullptr)
        {
            return -1;
        }
        outputs[0].nbDims = 2;
        outputs[0].d[0] = inputs[0].d[0];
        outputs[0].d[1] = n;
        outputs[1].nbDims = 3;
        outputs[1].d[0] = inputs[0].d[0];
        outputs[1].d[1] = n;
        outputs[1].d[2] = two;
        return 0;
    }
    catch (...)
    {
        return -1;
    }
}

bool PointSelectPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    try
    {
        if (!countsOk(nbInputs, nbOutputs) || inOut == nullptr || pos < 0 || pos >= kNB_INPUTS + kNB_OUTPUTS)
        {
            return false;
        }
        PluginTensorDesc const& desc = inOut[pos].desc;
        static char const* const kNames[] = {"scores", "indices", "points"};
        DataType const expected = pos == 1 ? DataType::kINT32 : DataType::kFLOAT;
        if (desc.format != TensorFormat::kLINEAR || desc.type != expected)
        {
            logVerbose(kNAME,
                std::string("refusing ") + dataTypeName(desc.type) + " / non-default format for " + kNames[pos]
                    + " (scores float32, indices int32, points float32, all linear)");
            return false;
        }
        return true;
    }
    catch (...)
    {
        return false;
    }
}

int32_t PointSelectPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        if (!countsOk(nbInputs, nbOutputs) || in == nullptr || out == nullptr)
        {
            return -1;
        }
        PluginTensorDesc const outs[kNB_OUTPUTS] = {out[0].desc, out[1].desc};
        return accepted(checkDescs(in[0].desc, outs, mNumPoints, /*requireKnown=*/false)) ? 0 : -1;
    }
    catch (...)
    {
        return -1;
    }
}

size_t PointSelectPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    if (inputs == nullptr || nbInputs != kNB_INPUTS || inputs[0].max.nbDims != 3)
    {
        return 0;
    }
    Dims const& max = inputs[0].max;
    return pointSelectWorkspaceSize(max.d[0], max.d[1], max.d[2]);
}

int32_t PointSelectPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        if (!countsOk(nbInputs, nbOutputs) || in == nullptr || out == nullptr)
        {
            return -1;
        }
        return accepted(checkDescs(in[0], out, mNumPoints, /*requireKnown=*/true)) ? 0 : -1;
    }
    catch (...)
    {
        return -1;
    }
}

int32_t PointSelectPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
    void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept
{
    try
    {
        if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            refuse("enqueue called with null descriptors or tensor arrays");
            return -1;
        }
        std::string const why = checkDescs(inputDesc[0], outputDesc, mNumPoints, /*requireKnown=*/true);
        if (!why.empty())
        {
            refuse("enqueue: " + why);
            return -1;
        }
        Dims const& d = inputDesc[0].dims;
        auto const batch = static_cast<int32_t>(d.d[0]);
        auto const height = static_cast<int32_t>(d.d[1]);
        auto const width = static_cast<int32_t>(d.d[2]);
        if (batch == 0)
        {
            return 0;
        }
        if (inputs[0] == nullptr || outputs[0] == nullptr || outputs[1] == nullptr)
        {
            refuse("enqueue: a tensor address is null");
            return -1;
        }
        if (pointSelectWorkspaceSize(batch, height, width) > 0 && workspace == nullptr)
        {
            refuse("enqueue: scores " + dimsToString(d) + " need a workspace and none was given");
            return -1;
        }
        cudaError_t const status = launchPointSelect(static_cast<float const*>(inputs[0]), batch, height, width,
            mNumPoints, mWDist, workspace, static_cast<int32_t*>(outputs[0]), static_cast<float*>(outputs[1]), stream);
        if (status != cudaSuccess)
        {
            refuse(std::string("kernel launch failed: ") + cudaGetErrorString(status));
            return -1;
        }
        return 0;
    }
    catch (...)
    {
        return -1;
    }
}

PluginFieldCollection const* PointSelectPlugin::getFieldsToSerialize() noexcept
{
    mFields[0] = PluginField(kNUM_POINTS, &mNumPoints, PluginFieldType::kINT32, 1);
    mFields[1] = PluginField(kW_DIST, &mWDist, PluginFieldType::kFLOAT32, 1);
    mFieldsToSerialize.nbFields = 2;
    mFieldsToSerialize.fields = mFields;
    return &mFieldsToSerialize;
}

PointSelectPluginCreator::PointSelectPluginCreator() noexcept
{
    mFieldNames[0] = PluginField(kNUM_POINTS, nullptr, PluginFieldType::kINT32, 1);
    mFieldNames[1] = PluginField(kW_DIST, nullptr, PluginFieldType::kFLOAT32, 1);
    setFieldNames(mFieldNames, 2);
}

IPluginV3* PointSelectPluginCreator::createPlugin(
    char const* /*name*/, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept
{
    try
    {
        int32_t numPoints = 0;
        float wDist = 0.F;
        FieldSpec specs[] = {
            {kNUM_POINTS, PluginFieldType::kINT32, &numPoints, false},
            {kW_DIST, PluginFieldType::kFLOAT32, &wDist, false},
        };
        if (!readFields(PointSelectPlugin::kNAME, fc, specs, 2))
        {
            return nullptr;
        }
        if (char const* why = checkPointSelectFields(numPoints, wDist))
        {
            refuse(std::string("refusing fields num_points=") + std::to_string(numPoints) + ", w_dist="
                + std::to_string(wDist) + ": " + why);
            return nullptr;
        }
        return new (std::nothrow) PointSelectPlugin(numPoints, wDist);
    }
    catch (...)
    {
        return nullptr;
    }
}

} // namespace plugin
} // namespace instancevg
