#include "msDeformAttnPlugin.h"

#include "common/pluginUtils.h"
#include "msDeformAttnKernel.cuh"

#include <cstdint>
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

enum Input : int32_t
{
    kVALUE = 0,
    kSPATIAL_SHAPES = 1,
    kLEVEL_START_INDEX = 2,
    kSAMPLING_LOCATIONS = 3,
    kATTENTION_WEIGHTS = 4,
};

constexpr char const* kINPUT_NAMES[MSDeformAttnPlugin::kNB_INPUTS]
    = {"value", "spatial_shapes", "level_start_index", "sampling_locations", "attention_weights"};
constexpr int32_t kINPUT_RANKS[MSDeformAttnPlugin::kNB_INPUTS] = {4, 2, 1, 6, 5};

void refuse(std::string const& why) noexcept
{
    logError(MSDeformAttnPlugin::kNAME, why);
}

std::string describeInputs(Dims const* in)
{
    std::string text;
    for (int32_t i = 0; i < MSDeformAttnPlugin::kNB_INPUTS; ++i)
    {
        text += (i ? ", " : "") + std::string(kINPUT_NAMES[i]) + " " + dimsToString(in[i]);
    }
    return text;
}

//! Ranks and the extents the inputs share (B, M, L, Q, P, the trailing 2s); -1 (not known yet) matches anything.
//! Returns "" when consistent, else the reason.
std::string checkInputDims(Dims const* in)
{
    for (int32_t i = 0; i < MSDeformAttnPlugin::kNB_INPUTS; ++i)
    {
        if (in[i].nbDims != kINPUT_RANKS[i])
        {
            return std::string(kINPUT_NAMES[i]) + " must have rank " + std::to_string(kINPUT_RANKS[i]) + ", got "
                + dimsToString(in[i]);
        }
    }
    struct Axis
    {
        int32_t input;
        int32_t axis;
    };
    struct Extent
    {
        char const* name;
        Axis axes[4];
        int32_t nbAxes;
    };
    Extent const extents[] = {
        {"B", {{kVALUE, 0}, {kSAMPLING_LOCATIONS, 0}, {kATTENTION_WEIGHTS, 0}}, 3},
        {"M", {{kVALUE, 2}, {kSAMPLING_LOCATIONS, 2}, {kATTENTION_WEIGHTS, 2}}, 3},
        {"L", {{kSPATIAL_SHAPES, 0}, {kLEVEL_START_INDEX, 0}, {kSAMPLING_LOCATIONS, 3}, {kATTENTION_WEIGHTS, 3}}, 4},
        {"Q", {{kSAMPLING_LOCATIONS, 1}, {kATTENTION_WEIGHTS, 1}}, 2},
        {"P", {{kSAMPLING_LOCATIONS, 4}, {kATTENTION_WEIGHTS, 4}}, 2},
    };
    for (Extent const& e : extents)
    {
        int64_t known = -1;
        for (int32_t a = 0; a < e.nbAxes; ++a)
        {
            int64_t const v = in[e.axes[a].input].d[e.axes[a].axis];
            if (v >= 0 && known >= 0 && v != known)
            {
                return std::string("inputs disagree on ") + e.name + ": " + describeInputs(in);
            }
            known = v >= 0 ? v : known;
        }
    }
    if (in[kSPATIAL_SHAPES].d[1] >= 0 && in[kSPATIAL_SHAPES].d[1] != 2)
    {
        return "spatial_shapes must be [L, 2], got " + dimsToString(in[kSPATIAL_SHAPES]);
    }
    if (in[kSAMPLING_LOCATIONS].d[5] >= 0 && in[kSAMPLING_LOCATIONS].d[5] != 2)
    {
        return "sampling_locations must be [B, Q, M, L, P, 2] (x, y), got " + dimsToString(in[kSAMPLING_LOCATIONS]);
    }
    return {};
}

std::string checkInputTypes(DataType const* types)
{
    DataType const t = types[kVALUE];
    if (t != DataType::kFLOAT && t != DataType::kHALF)
    {
        return std::string("value must be float32 or float16, got ") + dataTypeName(t);
    }
    for (int32_t i : {kSPATIAL_SHAPES, kLEVEL_START_INDEX})
    {
        if (types[i] != DataType::kINT32)
        {
            return std::string(kINPUT_NAMES[i]) + " must be int32, got " + dataTypeName(types[i])
                + " (cast it to int32 in the graph: the ONNX parser narrows int64 only for NVIDIA's plugins)";
        }
    }
    for (int32_t i : {kSAMPLING_LOCATIONS, kATTENTION_WEIGHTS})
    {
        if (types[i] != t)
        {
            return std::string(kINPUT_NAMES[i]) + " must have value's type " + dataTypeName(t) + ", got "
                + dataTypeName(types[i]);
        }
    }
    return {};
}

//! Full check of concrete or partially known descriptors (configurePlugin, onShapeChange, enqueue).
std::string checkDescs(PluginTensorDesc const* in, PluginTensorDesc const& out, bool requireKnown)
{
    Dims dims[MSDeformAttnPlugin::kNB_INPUTS];
    DataType types[MSDeformAttnPlugin::kNB_INPUTS];
    for (int32_t i = 0; i < MSDeformAttnPlugin::kNB_INPUTS; ++i)
    {
        dims[i] = in[i].dims;
        types[i] = in[i].type;
        if (in[i].format != TensorFormat::kLINEAR)
        {
            return std::string(kINPUT_NAMES[i]) + " must be in linear format";
        }
    }
    std::string why = checkInputTypes(types);
    if (why.empty())
    {
        why = checkInputDims(dims);
    }
    if (!why.empty())
    {
        return why;
    }
    if (out.type != types[kVALUE] || out.format != TensorFormat::kLINEAR)
    {
        return std::string("output must be linear ") + dataTypeName(types[kVALUE]) + ", got "
            + dataTypeName(out.type);
    }
    Dims const& v = dims[kVALUE];
    int64_t const b = v.d[0];
    int64_t const q = dims[kSAMPLING_LOCATIONS].d[1];
    int64_t const md = v.d[2] >= 0 && v.d[3] >= 0 ? v.d[2] * v.d[3] : -1;
    if (out.dims.nbDims != 3 || (out.dims.d[0] >= 0 && b >= 0 && out.dims.d[0] != b)
        || (out.dims.d[1] >= 0 && q >= 0 && out.dims.d[1] != q) || (out.dims.d[2] >= 0 && md >= 0 && out.dims.d[2] != md))
    {
        return "output must be [B, Q, M*D], got " + dimsToString(out.dims) + " for " + describeInputs(dims);
    }
    if (requireKnown)
    {
        for (int32_t i = 0; i < MSDeformAttnPlugin::kNB_INPUTS; ++i)
        {
            for (int32_t a = 0; a < dims[i].nbDims; ++a)
            {
                if (dims[i].d[a] < 0 || dims[i].d[a] > std::numeric_limits<int32_t>::max())
                {
                    return "extents must lie in [0, 2^31): " + describeInputs(dims);
                }
            }
        }
        MSDeformAttnDims const d{static_cast<int32_t>(b), static_cast<int32_t>(v.d[1]), static_cast<int32_t>(v.d[2]),
            static_cast<int32_t>(v.d[3]), static_cast<int32_t>(q), static_cast<int32_t>(dims[kSPATIAL_SHAPES].d[0]),
            static_cast<int32_t>(dims[kSAMPLING_LOCATIONS].d[4])};
        if (char const* reason = checkMSDeformAttnDims(d))
        {
            return std::string(reason) + ": " + describeInputs(dims);
        }
    }
    return {};
}

} // namespace

int32_t MSDeformAttnPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    try
    {
        if (!countsOk(nbInputs, nbOutputs) || outputTypes == nullptr || inputTypes == nullptr)
        {
            return -1;
        }
        if (!accepted(checkInputTypes(inputTypes)))
        {
            return -1;
        }
        outputTypes[0] = inputTypes[kVALUE];
        return 0;
    }
    catch (...)
    {
        return -1;
    }
}

int32_t MSDeformAttnPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
    DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
    IExprBuilder& exprBuilder) noexcept
{
    try
    {
        if (!countsOk(nbInputs, nbOutputs) || inputs == nullptr || outputs == nullptr)
        {
            return -1;
        }
        Dims known[kNB_INPUTS];
        for (int32_t i = 0; i < kNB_INPUTS; ++i)
        {
            known[i] = constantDims(inputs[i]);
        }
        if (!accepted(checkInputDims(known)))
        {
            return -1;
        }
        DimsExprs const& value = inputs[kVALUE];
        outputs[0].nbDims = 3;
        outputs[0].d[0] = value.d[0];
        outputs[0].d[1] = inputs[kSAMPLING_LOCATIONS].d[1];
        outputs[0].d[2] = exprBuilder.operation(DimensionOperation::kPROD, *value.d[2], *value.d[3]);
        return outputs[0].d[2] != nullptr ? 0 : -1;
    }
    catch (...)
    {
        return -1;
    }
}

bool MSDeformAttnPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    try
    {
        if (!countsOk(nbInputs, nbOutputs) || inOut == nullptr || pos < 0 || pos >= kNB_INPUTS + kNB_OUTPUTS)
        {
            return false;
        }
        PluginTensorDesc const& desc = inOut[pos].desc;
        char const* name = pos < kNB_INPUTS ? kINPUT_NAMES[pos] : "output";
        if (desc.format != TensorFormat::kLINEAR)
        {
            logVerbose(kNAME, std::string("refusing a non-linear format for ") + name);
            return false;
        }
        bool ok = false;
        switch (pos)
        {
        case kVALUE: ok = desc.type == DataType::kFLOAT || desc.type == DataType::kHALF; break;
        case kSPATIAL_SHAPES:
        case kLEVEL_START_INDEX: ok = desc.type == DataType::kINT32; break;
        default: ok = desc.type == inOut[kVALUE].desc.type; break; // locations, weights, output
        }
        if (!ok)
        {
            logVerbose(kNAME,
                std::string("refusing ") + dataTypeName(desc.type) + " for " + name
                    + " (value float32|float16, spatial_shapes and level_start_index int32, the rest value's type)");
        }
        return ok;
    }
    catch (...)
    {
        return false;
    }
}

int32_t MSDeformAttnPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        if (!countsOk(nbInputs, nbOutputs) || in == nullptr || out == nullptr)
        {
            return -1;
        }
        PluginTensorDesc descs[kNB_INPUTS];
        for (int32_t i = 0; i < kNB_INPUTS; ++i)
        {
            descs[i] = in[i].desc;
        }
        return accepted(checkDescs(descs, out[0].desc, /*requireKnown=*/false)) ? 0 : -1;
    }
    catch (...)
    {
        return -1;
    }
}

size_t MSDeformAttnPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    return 0;
}

int32_t MSDeformAttnPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        if (!countsOk(nbInputs, nbOutputs) || in == nullptr || out == nullptr)
        {
            return -1;
        }
        return accepted(checkDescs(in, out[0], /*requireKnown=*/true)) ? 0 : -1;
    }
    catch (...)
    {
        return -1;
    }
}

int32_t MSDeformAttnPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
    void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept
{
    try
    {
        if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            refuse("enqueue called with null descriptors or tensor arrays");
            return -1;
        }
        std::string const why = checkDescs(inputDesc, outputDesc[0], /*requireKnown=*/true);
        if (!why.empty())
        {
            refuse("enqueue: " + why);
            return -1;
        }
        Dims const& v = inputDesc[kVALUE].dims;
        Dims const& loc = inputDesc[kSAMPLING_LOCATIONS].dims;
        MSDeformAttnDims const dims{static_cast<int32_t>(v.d[0]), static_cast<int32_t>(v.d[1]),
            static_cast<int32_t>(v.d[2]), static_cast<int32_t>(v.d[3]), static_cast<int32_t>(loc.d[1]),
            static_cast<int32_t>(loc.d[3]), static_cast<int32_t>(loc.d[4])};
        int64_t const outputElements = static_cast<int64_t>(dims.batch) * dims.numQueries * dims.numHeads * dims.channels;
        if (outputElements == 0)
        {
            return 0;
        }
        bool const valueNeeded = dims.numValues > 0;
        if (outputs[0] == nullptr || inputs[kSPATIAL_SHAPES] == nullptr || inputs[kLEVEL_START_INDEX] == nullptr
            || inputs[kSAMPLING_LOCATIONS] == nullptr || inputs[kATTENTION_WEIGHTS] == nullptr
            || (valueNeeded && inputs[kVALUE] == nullptr))
        {
            refuse("enqueue: a tensor address is null");
            return -1;
        }
        ScalarType const type = inputDesc[kVALUE].type == DataType::kHALF ? ScalarType::kFLOAT16 : ScalarType::kFLOAT32;
        cudaError_t const status = launchMSDeformAttn(dims, type, inputs[kVALUE],
            static_cast<int32_t const*>(inputs[kSPATIAL_SHAPES]), static_cast<int32_t const*>(inputs[kLEVEL_START_INDEX]),
            inputs[kSAMPLING_LOCATIONS], inputs[kATTENTION_WEIGHTS], outputs[0], stream);
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

PluginFieldCollection const* MSDeformAttnPlugin::getFieldsToSerialize() noexcept
{
    return &mFieldsToSerialize;
}

IPluginV3* MSDeformAttnPluginCreator::createPlugin(
    char const* /*name*/, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept
{
    // No fields: anything given is refused by name rather than silently ignored.
    if (!readFields(MSDeformAttnPlugin::kNAME, fc, nullptr, 0))
    {
        return nullptr;
    }
    return new (std::nothrow) MSDeformAttnPlugin();
}

} // namespace plugin
} // namespace instancevg
