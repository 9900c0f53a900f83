/*
 * Host harness for libinstancevg_plugins.so: what TensorRT does with a plugin library before any GPU work,
 * done without TensorRT, libnvinfer or a GPU.
 *
 *   instancevg_plugin_harness <libinstancevg_plugins.so> [<libinstancevg_plugins_static.so>]
 *
 * dlopens the library like IPluginRegistry::loadLibrary (setLoggerFinder, getCreators), checks every creator's
 * name, version, namespace and fields, creates each plugin from fields, drives the build-phase methods
 * (types, formats, shapes through a host IExprBuilder), checks that enqueue refuses bad input without touching
 * CUDA, serialises through getFieldsToSerialize, re-creates from those fields and compares, and checks that the
 * creators refuse unknown fields and bad values. With the static library it checks that the library loads
 * without libnvinfer and exports no getCreators. Prints one "PASS <check>" / "FAIL <check>: <why>" line per
 * check; the exit status is the number of failures (capped at 100).
 */
#include <NvInferRuntime.h>

#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

using namespace nvinfer1;

namespace
{

int32_t gFailures = 0;

void check(bool ok, std::string const& name, std::string const& why = "")
{
    if (ok)
    {
        std::printf("PASS %s\n", name.c_str());
    }
    else
    {
        std::printf("FAIL %s: %s\n", name.c_str(), why.empty() ? "check failed" : why.c_str());
        ++gFailures;
    }
    std::fflush(stdout);
}

class CapturingLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kWARNING)
        {
            mLastError = msg != nullptr ? msg : "";
            ++mNbErrors;
        }
    }
    //! Whether an error or warning was logged since the last call, and whether it mentions text.
    bool takeError(char const* text = nullptr)
    {
        bool const logged = mNbErrors > 0 && (text == nullptr || mLastError.find(text) != std::string::npos);
        mNbErrors = 0;
        mLastError.clear();
        return logged;
    }
    std::string const& lastError() const
    {
        return mLastError;
    }

private:
    int32_t mNbErrors{0};
    std::string mLastError;
};

class HarnessLoggerFinder : public ILoggerFinder
{
public:
    ILogger* findLogger() override
    {
        return &logger;
    }
    CapturingLogger logger;
};

HarnessLoggerFinder gFinder;

// A host IExprBuilder: constant extents fold, anything involving a non-constant extent stays symbolic.
class HostDimImpl : public apiv::VDimensionExpr
{
public:
    explicit HostDimImpl(int64_t value)
        : mValue(value)
    {
    }
    bool isConstant() const override
    {
        return mValue >= 0;
    }
    int64_t getConstantValue() const override
    {
        return mValue;
    }
    bool isSizeTensor() const override
    {
        return false;
    }

private:
    int64_t mValue;
};

class HostDim : public IDimensionExpr
{
public:
    explicit HostDim(int64_t value)
        : mHostImpl(value)
    {
        mImpl = &mHostImpl;
    }

private:
    HostDimImpl mHostImpl;
};

class HostExprBuilderImpl : public apiv::VExprBuilder
{
public:
    //! value < 0: a symbolic (runtime) extent.
    IDimensionExpr const* dim(int64_t value)
    {
        mDims.emplace_back(value);
        return &mDims.back();
    }
    IDimensionExpr const* constant(int64_t value) override
    {
        return dim(value);
    }
    IDimensionExpr const* operation(
        DimensionOperation op, IDimensionExpr const& first, IDimensionExpr const& second) override
    {
        if (!first.isConstant() || !second.isConstant())
        {
            return dim(-1);
        }
        int64_t const a = first.getConstantValue();
        int64_t const b = second.getConstantValue();
        switch (op)
        {
        case DimensionOperation::kSUM: return dim(a + b);
        case DimensionOperation::kPROD: return dim(a * b);
        case DimensionOperation::kMAX: return dim(a > b ? a : b);
        case DimensionOperation::kMIN: return dim(a < b ? a : b);
        case DimensionOperation::kSUB: return dim(a - b);
        default: return nullptr;
        }
    }
    IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override
    {
        return nullptr;
    }

private:
    std::deque<HostDim> mDims; // stable addresses
};

class HostExprBuilder : public IExprBuilder
{
public:
    HostExprBuilder()
    {
        mImpl = &mHostImpl;
    }
    DimsExprs exprs(std::vector<int64_t> const& extents)
    {
        DimsExprs e{};
        e.nbDims = static_cast<int32_t>(extents.size());
        for (size_t i = 0; i < extents.size(); ++i)
        {
            e.d[i] = mHostImpl.dim(extents[i]);
        }
        return e;
    }

private:
    HostExprBuilderImpl mHostImpl;
};

Dims makeDims(std::vector<int64_t> const& extents)
{
    Dims d{};
    d.nbDims = static_cast<int32_t>(extents.size());
    for (size_t i = 0; i < extents.size(); ++i)
    {
        d.d[i] = extents[i];
    }
    return d;
}

std::vector<int64_t> extentsOf(DimsExprs const& e)
{
    std::vector<int64_t> v;
    for (int32_t i = 0; i < e.nbDims; ++i)
    {
        v.push_back(e.d[i] != nullptr && e.d[i]->isConstant() ? e.d[i]->getConstantValue() : -1);
    }
    return v;
}

std::string str(std::vector<int64_t> const& v)
{
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i)
    {
        s += (i ? "," : "") + std::to_string(v[i]);
    }
    return s + "]";
}

PluginTensorDesc desc(std::vector<int64_t> const& extents, DataType type, TensorFormat format = TensorFormat::kLINEAR)
{
    PluginTensorDesc d{};
    d.dims = makeDims(extents);
    d.type = type;
    d.format = format;
    d.scale = 1.F;
    return d;
}

DynamicPluginTensorDesc dynDesc(PluginTensorDesc const& d)
{
    DynamicPluginTensorDesc dd{};
    dd.desc = d;
    dd.min = d.dims;
    dd.opt = d.dims;
    dd.max = d.dims;
    return dd;
}

struct PluginDeleter
{
    void operator()(IPluginV3* p) const
    {
        delete p;
    }
};
using PluginPtr = std::unique_ptr<IPluginV3, PluginDeleter>;

struct Capabilities
{
    IPluginV3OneCore* core;
    IPluginV3OneBuild* build;
    IPluginV3OneRuntime* runtime;
};

Capabilities capabilities(IPluginV3* plugin)
{
    return {static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE)),
        static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD)),
        static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME))};
}

//! Field-by-field copy of a collection (names, types, lengths, bytes), for comparing serialisations.
struct FieldCopy
{
    std::string name;
    PluginFieldType type;
    int32_t length;
    std::vector<unsigned char> bytes;
    bool operator==(FieldCopy const& o) const
    {
        return name == o.name && type == o.type && length == o.length && bytes == o.bytes;
    }
};

size_t fieldBytes(PluginField const& f)
{
    switch (f.type)
    {
    case PluginFieldType::kINT8:
    case PluginFieldType::kCHAR: return static_cast<size_t>(f.length);
    case PluginFieldType::kINT16:
    case PluginFieldType::kFLOAT16: return 2 * static_cast<size_t>(f.length);
    case PluginFieldType::kINT32:
    case PluginFieldType::kFLOAT32: return 4 * static_cast<size_t>(f.length);
    case PluginFieldType::kINT64:
    case PluginFieldType::kFLOAT64: return 8 * static_cast<size_t>(f.length);
    default: return 0;
    }
}

std::vector<FieldCopy> copyFields(PluginFieldCollection const* fc)
{
    std::vector<FieldCopy> out;
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
    {
        PluginField const& f = fc->fields[i];
        FieldCopy c{f.name != nullptr ? f.name : "", f.type, f.length, {}};
        if (f.data != nullptr)
        {
            auto const* p = static_cast<unsigned char const*>(f.data);
            c.bytes.assign(p, p + fieldBytes(f));
        }
        out.push_back(c);
    }
    return out;
}

IPluginCreatorV3One* findCreator(IPluginCreatorInterface* const* creators, int32_t n, char const* name)
{
    for (int32_t i = 0; i < n; ++i)
    {
        auto* c = static_cast<IPluginCreatorV3One*>(creators[i]);
        if (std::strcmp(c->getPluginName(), name) == 0)
        {
            return c;
        }
    }
    return nullptr;
}

//! Checks every IPluginV3 facet TensorRT uses on the host, common to both plugins.
void checkCommon(char const* tag, IPluginV3* plugin, char const* name, int32_t nbOutputs)
{
    Capabilities const caps = capabilities(plugin);
    check(caps.core != nullptr && caps.build != nullptr && caps.runtime != nullptr,
        std::string(tag) + ".capabilities", "a capability interface is null");
    if (caps.core == nullptr || caps.build == nullptr || caps.runtime == nullptr)
    {
        return;
    }
    InterfaceInfo const core = caps.core->getInterfaceInfo();
    InterfaceInfo const build = caps.build->getInterfaceInfo();
    InterfaceInfo const runtime = caps.runtime->getInterfaceInfo();
    check(std::strcmp(core.kind, "PLUGIN_V3ONE_CORE") == 0 && std::strcmp(build.kind, "PLUGIN_V3ONE_BUILD") == 0
            && std::strcmp(runtime.kind, "PLUGIN_V3ONE_RUNTIME") == 0,
        std::string(tag) + ".capability_kinds",
        std::string(core.kind) + " / " + build.kind + " / " + runtime.kind);
    check(std::strcmp(caps.core->getPluginName(), name) == 0 && std::strcmp(caps.core->getPluginVersion(), "1") == 0
            && std::strcmp(caps.core->getPluginNamespace(), "instancevg") == 0,
        std::string(tag) + ".core_identity",
        std::string(caps.core->getPluginName()) + " v" + caps.core->getPluginVersion() + " ns "
            + caps.core->getPluginNamespace());
    check(caps.build->getNbOutputs() == nbOutputs, std::string(tag) + ".nb_outputs");

    PluginPtr clone(plugin->clone());
    check(clone != nullptr && std::strcmp(capabilities(clone.get()).core->getPluginName(), name) == 0,
        std::string(tag) + ".clone");
    PluginPtr attached(caps.runtime->attachToContext(nullptr));
    check(attached != nullptr && attached.get() != plugin, std::string(tag) + ".attach_to_context");
}

//! getFieldsToSerialize -> createPlugin(kRUNTIME) -> getFieldsToSerialize gives the same fields; a clone
//! serialises the same fields from its own storage.
void checkRoundTrip(char const* tag, IPluginCreatorV3One* creator, IPluginV3* plugin,
    std::vector<FieldCopy> const& expected)
{
    std::vector<FieldCopy> const first = copyFields(capabilities(plugin).runtime->getFieldsToSerialize());
    check(first == expected, std::string(tag) + ".serialize_fields", "serialised fields differ from the creation fields");

    PluginFieldCollection const* fc = capabilities(plugin).runtime->getFieldsToSerialize();
    PluginPtr recreated(creator->createPlugin("recreated", fc, TensorRTPhase::kRUNTIME));
    check(recreated != nullptr, std::string(tag) + ".recreate_runtime", gFinder.logger.lastError());
    if (recreated == nullptr)
    {
        return;
    }
    std::vector<FieldCopy> const second = copyFields(capabilities(recreated.get()).runtime->getFieldsToSerialize());
    check(second == first, std::string(tag) + ".round_trip", "re-created plugin serialises different fields");

    // The clone must own its serialised data: destroy the original's copy first.
    PluginPtr clone(recreated->clone());
    recreated.reset();
    check(clone != nullptr && copyFields(capabilities(clone.get()).runtime->getFieldsToSerialize()) == first,
        std::string(tag) + ".clone_serialize");
}

void checkMSDeformAttn(IPluginCreatorV3One* creator)
{
    char const* tag = "MSDeformAttn";
    PluginFieldCollection const* names = creator->getFieldNames();
    check(names != nullptr && names->nbFields == 0, "MSDeformAttn.field_names", "expected no fields");

    PluginFieldCollection const empty{0, nullptr};
    PluginPtr plugin(creator->createPlugin("msda", &empty, TensorRTPhase::kBUILD));
    check(plugin != nullptr, "MSDeformAttn.create_from_fields", gFinder.logger.lastError());
    if (plugin == nullptr)
    {
        return;
    }
    checkCommon(tag, plugin.get(), "MSDeformAttn", 1);
    Capabilities const caps = capabilities(plugin.get());
    CapturingLogger& log = gFinder.logger;
    log.takeError();

    // Types.
    DataType out[1] = {DataType::kINT8};
    DataType const f32[5] = {DataType::kFLOAT, DataType::kINT32, DataType::kINT32, DataType::kFLOAT, DataType::kFLOAT};
    DataType const f16[5] = {DataType::kHALF, DataType::kINT32, DataType::kINT32, DataType::kHALF, DataType::kHALF};
    check(caps.build->getOutputDataTypes(out, 1, f32, 5) == 0 && out[0] == DataType::kFLOAT,
        "MSDeformAttn.output_type_f32");
    check(caps.build->getOutputDataTypes(out, 1, f16, 5) == 0 && out[0] == DataType::kHALF,
        "MSDeformAttn.output_type_f16");
    DataType const i64[5] = {DataType::kFLOAT, DataType::kINT64, DataType::kINT32, DataType::kFLOAT, DataType::kFLOAT};
    check(caps.build->getOutputDataTypes(out, 1, i64, 5) != 0 && log.takeError("int32"),
        "MSDeformAttn.refuse_int64_spatial_shapes", log.lastError());
    DataType const mixed[5] = {DataType::kHALF, DataType::kINT32, DataType::kINT32, DataType::kFLOAT, DataType::kHALF};
    check(caps.build->getOutputDataTypes(out, 1, mixed, 5) != 0 && log.takeError("sampling_locations"),
        "MSDeformAttn.refuse_mixed_float_types", log.lastError());
    DataType const bf16[5] = {DataType::kBF16, DataType::kINT32, DataType::kINT32, DataType::kBF16, DataType::kBF16};
    check(caps.build->getOutputDataTypes(out, 1, bf16, 5) != 0 && log.takeError("value"),
        "MSDeformAttn.refuse_bf16_value", log.lastError());
    check(caps.build->getOutputDataTypes(out, 1, f32, 4) != 0 && log.takeError("5 inputs"),
        "MSDeformAttn.refuse_input_count", log.lastError());

    // Formats: value f32|f16, indices int32, the rest value's type, all linear.
    std::vector<int64_t> const vDims{2, 8500, 8, 32}, ssDims{4, 2}, lsDims{4}, locDims{2, 20, 8, 4, 4, 2},
        wDims{2, 20, 8, 4, 4}, oDims{2, 20, 256};
    auto combo = [&](DataType floatType, DataType indexType, DataType locType, TensorFormat valueFormat) {
        std::vector<DynamicPluginTensorDesc> io{dynDesc(desc(vDims, floatType, valueFormat)),
            dynDesc(desc(ssDims, indexType)), dynDesc(desc(lsDims, DataType::kINT32)), dynDesc(desc(locDims, locType)),
            dynDesc(desc(wDims, floatType)), dynDesc(desc(oDims, floatType))};
        return io;
    };
    auto allSupported = [&](std::vector<DynamicPluginTensorDesc> const& io) {
        for (int32_t pos = 0; pos < 6; ++pos)
        {
            if (!caps.build->supportsFormatCombination(pos, io.data(), 5, 1))
            {
                return false;
            }
        }
        return true;
    };
    check(allSupported(combo(DataType::kFLOAT, DataType::kINT32, DataType::kFLOAT, TensorFormat::kLINEAR)),
        "MSDeformAttn.formats_f32");
    check(allSupported(combo(DataType::kHALF, DataType::kINT32, DataType::kHALF, TensorFormat::kLINEAR)),
        "MSDeformAttn.formats_f16");
    check(!allSupported(combo(DataType::kFLOAT, DataType::kINT64, DataType::kFLOAT, TensorFormat::kLINEAR)),
        "MSDeformAttn.formats_refuse_int64");
    check(!allSupported(combo(DataType::kHALF, DataType::kINT32, DataType::kFLOAT, TensorFormat::kLINEAR)),
        "MSDeformAttn.formats_refuse_mixed");
    check(!allSupported(combo(DataType::kFLOAT, DataType::kINT32, DataType::kFLOAT, TensorFormat::kCHW32)),
        "MSDeformAttn.formats_refuse_vectorized");

    // Shapes, through a host IExprBuilder; -1 = a runtime extent (dynamic batch).
    HostExprBuilder eb;
    auto shapes = [&](std::vector<std::vector<int64_t>> const& in, std::vector<int64_t>* result) {
        DimsExprs inputs[5];
        for (int32_t i = 0; i < 5; ++i)
        {
            inputs[i] = eb.exprs(in[i]);
        }
        DimsExprs outputs[1];
        int32_t const status = caps.build->getOutputShapes(inputs, 5, nullptr, 0, outputs, 1, eb);
        if (status == 0 && result != nullptr)
        {
            *result = extentsOf(outputs[0]);
        }
        return status;
    };
    std::vector<int64_t> shape;
    check(shapes({vDims, ssDims, lsDims, locDims, wDims}, &shape) == 0 && shape == oDims,
        "MSDeformAttn.output_shape", str(shape));
    check(shapes({{-1, 8500, 8, 32}, ssDims, lsDims, {-1, 20, 8, 4, 4, 2}, {-1, 20, 8, 4, 4}}, &shape) == 0
            && shape == std::vector<int64_t>{-1, 20, 256},
        "MSDeformAttn.output_shape_dynamic_batch", str(shape));
    check(shapes({{2, 8500, 4, 32}, ssDims, lsDims, locDims, wDims}, nullptr) != 0 && log.takeError("M"),
        "MSDeformAttn.refuse_heads_mismatch", log.lastError());
    check(shapes({vDims, {3, 2}, lsDims, locDims, wDims}, nullptr) != 0 && log.takeError("L"),
        "MSDeformAttn.refuse_levels_mismatch", log.lastError());
    check(shapes({vDims, ssDims, lsDims, {2, 20, 8, 4, 4, 3}, wDims}, nullptr) != 0 && log.takeError(),
        "MSDeformAttn.refuse_location_pairs", log.lastError());
    check(shapes({vDims, ssDims, lsDims, {2, 20, 8, 4, 4}, wDims}, nullptr) != 0 && log.takeError("rank"),
        "MSDeformAttn.refuse_rank", log.lastError());

    // configurePlugin / onShapeChange.
    auto io = combo(DataType::kFLOAT, DataType::kINT32, DataType::kFLOAT, TensorFormat::kLINEAR);
    check(caps.build->configurePlugin(io.data(), 5, io.data() + 5, 1) == 0, "MSDeformAttn.configure",
        log.lastError());
    PluginTensorDesc in[5] = {io[0].desc, io[1].desc, io[2].desc, io[3].desc, io[4].desc};
    PluginTensorDesc outDesc[1] = {io[5].desc};
    check(caps.runtime->onShapeChange(in, 5, outDesc, 1) == 0, "MSDeformAttn.on_shape_change", log.lastError());
    PluginTensorDesc badOut[1] = {desc({2, 20, 128}, DataType::kFLOAT)};
    check(caps.runtime->onShapeChange(in, 5, badOut, 1) != 0 && log.takeError("output"),
        "MSDeformAttn.refuse_output_shape", log.lastError());

    // enqueue refuses bad runtime input before any CUDA call (this machine may have no GPU at all).
    void const* inputs[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
    void* outputs[1] = {nullptr};
    check(caps.runtime->enqueue(in, outDesc, nullptr, outputs, nullptr, nullptr) != 0 && log.takeError(),
        "MSDeformAttn.enqueue_refuses_null_arrays");
    check(caps.runtime->enqueue(in, outDesc, inputs, outputs, nullptr, nullptr) != 0 && log.takeError("null"),
        "MSDeformAttn.enqueue_refuses_null_tensors", log.lastError());
    PluginTensorDesc badIn[5] = {in[0], in[1], in[2], desc({2, 20, 8, 3, 4, 2}, DataType::kFLOAT), in[4]};
    check(caps.runtime->enqueue(badIn, outDesc, inputs, outputs, nullptr, nullptr) != 0 && log.takeError("L"),
        "MSDeformAttn.enqueue_refuses_mismatched_dims", log.lastError());
    PluginTensorDesc wrongType[5] = {in[0], desc(ssDims, DataType::kINT64), in[2], in[3], in[4]};
    check(caps.runtime->enqueue(wrongType, outDesc, inputs, outputs, nullptr, nullptr) != 0 && log.takeError(),
        "MSDeformAttn.enqueue_refuses_wrong_type", log.lastError());
    PluginTensorDesc emptyIn[5] = {desc({0, 8500, 8, 32}, DataType::kFLOAT), in[1], in[2],
        desc({0, 20, 8, 4, 4, 2}, DataType::kFLOAT), desc({0, 20, 8, 4, 4}, DataType::kFLOAT)};
    PluginTensorDesc emptyOut[1] = {desc({0, 20, 256}, DataType::kFLOAT)};
    check(caps.runtime->enqueue(emptyIn, emptyOut, inputs, outputs, nullptr, nullptr) == 0,
        "MSDeformAttn.enqueue_empty_batch_is_noop", log.lastError());

    checkRoundTrip(tag, creator, plugin.get(), {});

    // Refusals: every field is unknown to MSDeformAttn.
    int32_t const step = 64;
    PluginField const unknown[1] = {PluginField("im2col_step", &step, PluginFieldType::kINT32, 1)};
    PluginFieldCollection const unknownFc{1, unknown};
    PluginPtr refused(creator->createPlugin("msda", &unknownFc, TensorRTPhase::kBUILD));
    check(refused == nullptr && log.takeError("im2col_step"), "MSDeformAttn.refuse_unknown_field", log.lastError());
}

void checkPointSelect(IPluginCreatorV3One* creator)
{
    char const* tag = "PointSelect";
    CapturingLogger& log = gFinder.logger;
    PluginFieldCollection const* names = creator->getFieldNames();
    bool namesOk = names != nullptr && names->nbFields == 2;
    if (namesOk)
    {
        PluginField const& a = names->fields[0];
        PluginField const& b = names->fields[1];
        namesOk = std::strcmp(a.name, "num_points") == 0 && a.type == PluginFieldType::kINT32 && a.length == 1
            && std::strcmp(b.name, "w_dist") == 0 && b.type == PluginFieldType::kFLOAT32 && b.length == 1;
    }
    check(namesOk, "PointSelect.field_names", "expected num_points int32[1], w_dist float32[1]");

    int32_t numPoints = 10;
    float wDist = 0.003F;
    PluginField const fields[2] = {PluginField("num_points", &numPoints, PluginFieldType::kINT32, 1),
        PluginField("w_dist", &wDist, PluginFieldType::kFLOAT32, 1)};
    PluginFieldCollection const fc{2, fields};
    PluginPtr plugin(creator->createPlugin("ps", &fc, TensorRTPhase::kBUILD));
    check(plugin != nullptr, "PointSelect.create_from_fields", log.lastError());
    if (plugin == nullptr)
    {
        return;
    }
    checkCommon(tag, plugin.get(), "PointSelect", 2);
    Capabilities const caps = capabilities(plugin.get());
    log.takeError();

    DataType out[2] = {DataType::kINT8, DataType::kINT8};
    DataType const f32[1] = {DataType::kFLOAT};
    DataType const f16[1] = {DataType::kHALF};
    check(caps.build->getOutputDataTypes(out, 2, f32, 1) == 0 && out[0] == DataType::kINT32
            && out[1] == DataType::kFLOAT,
        "PointSelect.output_types");
    check(caps.build->getOutputDataTypes(out, 2, f16, 1) != 0 && log.takeError("float32"),
        "PointSelect.refuse_f16_scores", log.lastError());

    std::vector<DynamicPluginTensorDesc> io{dynDesc(desc({3, 20, 20}, DataType::kFLOAT)),
        dynDesc(desc({3, 10}, DataType::kINT32)), dynDesc(desc({3, 10, 2}, DataType::kFLOAT))};
    bool formats = true;
    for (int32_t pos = 0; pos < 3; ++pos)
    {
        formats = formats && caps.build->supportsFormatCombination(pos, io.data(), 1, 2);
    }
    check(formats, "PointSelect.formats");
    std::vector<DynamicPluginTensorDesc> badIo{dynDesc(desc({3, 20, 20}, DataType::kFLOAT)),
        dynDesc(desc({3, 10}, DataType::kINT64)), dynDesc(desc({3, 10, 2}, DataType::kFLOAT))};
    check(!caps.build->supportsFormatCombination(1, badIo.data(), 1, 2), "PointSelect.formats_refuse_int64_indices");

    HostExprBuilder eb;
    auto shapes = [&](std::vector<int64_t> const& scores, std::vector<int64_t>* a, std::vector<int64_t>* b) {
        DimsExprs inputs[1] = {eb.exprs(scores)};
        DimsExprs outputs[2];
        int32_t const status = caps.build->getOutputShapes(inputs, 1, nullptr, 0, outputs, 2, eb);
        if (status == 0)
        {
            *a = extentsOf(outputs[0]);
            *b = extentsOf(outputs[1]);
        }
        return status;
    };
    std::vector<int64_t> a, b;
    check(shapes({3, 20, 20}, &a, &b) == 0 && a == std::vector<int64_t>{3, 10} && b == std::vector<int64_t>{3, 10, 2},
        "PointSelect.output_shapes", str(a) + " " + str(b));
    check(shapes({-1, 20, 20}, &a, &b) == 0 && a == std::vector<int64_t>{-1, 10}
            && b == std::vector<int64_t>{-1, 10, 2},
        "PointSelect.output_shapes_dynamic_batch", str(a) + " " + str(b));
    check(shapes({3, 2, 2}, &a, &b) != 0 && log.takeError("num_points"), "PointSelect.refuse_too_few_cells",
        log.lastError());
    check(shapes({3, 400}, &a, &b) != 0 && log.takeError("[B, h, w]"), "PointSelect.refuse_rank", log.lastError());

    check(caps.build->configurePlugin(io.data(), 1, io.data() + 1, 2) == 0, "PointSelect.configure", log.lastError());
    check(caps.build->getWorkspaceSize(io.data(), 1, io.data() + 1, 2) == 0, "PointSelect.workspace_small_map");
    std::vector<DynamicPluginTensorDesc> big{dynDesc(desc({2, 200, 200}, DataType::kFLOAT)),
        dynDesc(desc({2, 10}, DataType::kINT32)), dynDesc(desc({2, 10, 2}, DataType::kFLOAT))};
    check(caps.build->getWorkspaceSize(big.data(), 1, big.data() + 1, 2) == 2 * 200 * 200 * sizeof(float),
        "PointSelect.workspace_large_map");

    PluginTensorDesc in[1] = {io[0].desc};
    PluginTensorDesc outs[2] = {io[1].desc, io[2].desc};
    check(caps.runtime->onShapeChange(in, 1, outs, 2) == 0, "PointSelect.on_shape_change", log.lastError());
    void const* inputs[1] = {nullptr};
    void* outputs[2] = {nullptr, nullptr};
    check(caps.runtime->enqueue(in, outs, inputs, outputs, nullptr, nullptr) != 0 && log.takeError("null"),
        "PointSelect.enqueue_refuses_null_tensors", log.lastError());
    PluginTensorDesc wrongOut[2] = {desc({3, 9}, DataType::kINT32), io[2].desc};
    check(caps.runtime->enqueue(in, wrongOut, inputs, outputs, nullptr, nullptr) != 0 && log.takeError("indices"),
        "PointSelect.enqueue_refuses_mismatched_dims", log.lastError());
    PluginTensorDesc tiny[1] = {desc({3, 3, 3}, DataType::kFLOAT)};
    check(caps.runtime->enqueue(tiny, outs, inputs, outputs, nullptr, nullptr) != 0 && log.takeError("num_points"),
        "PointSelect.enqueue_refuses_small_map", log.lastError());
    PluginTensorDesc emptyIn[1] = {desc({0, 20, 20}, DataType::kFLOAT)};
    PluginTensorDesc emptyOut[2] = {desc({0, 10}, DataType::kINT32), desc({0, 10, 2}, DataType::kFLOAT)};
    check(caps.runtime->enqueue(emptyIn, emptyOut, inputs, outputs, nullptr, nullptr) == 0,
        "PointSelect.enqueue_empty_batch_is_noop", log.lastError());

    checkRoundTrip(tag, creator, plugin.get(), copyFields(&fc));

    // Refusals.
    auto refuses = [&](std::string const& name, std::vector<PluginField> const& given, char const* mention) {
        PluginFieldCollection const bad{static_cast<int32_t>(given.size()), given.data()};
        PluginPtr p(creator->createPlugin("ps", &bad, TensorRTPhase::kBUILD));
        check(p == nullptr && log.takeError(mention), "PointSelect.refuse_" + name,
            p != nullptr ? "plugin was created" : "logged: " + log.lastError());
    };
    int32_t const zero = 0, negative = -3, two[2] = {10, 10};
    float const nan = std::nanf(""), inf = INFINITY, floatPoints = 10.F;
    int64_t const wide = 10;
    PluginField const goodN("num_points", &numPoints, PluginFieldType::kINT32, 1);
    PluginField const goodW("w_dist", &wDist, PluginFieldType::kFLOAT32, 1);
    refuses("unknown_field", {goodN, goodW, PluginField("im2col_step", &numPoints, PluginFieldType::kINT32, 1)},
        "im2col_step");
    refuses("plugin_version_field", {goodN, goodW, PluginField("plugin_version", "1", PluginFieldType::kCHAR, 1)},
        "plugin_version");
    refuses("missing_w_dist", {goodN}, "w_dist");
    refuses("missing_num_points", {goodW}, "num_points");
    refuses("duplicate_field", {goodN, goodW, goodN}, "twice");
    refuses("float_num_points", {PluginField("num_points", &floatPoints, PluginFieldType::kFLOAT32, 1), goodW},
        "num_points");
    refuses("int64_num_points", {PluginField("num_points", &wide, PluginFieldType::kINT64, 1), goodW}, "int64");
    refuses("num_points_length_2", {PluginField("num_points", two, PluginFieldType::kINT32, 2), goodW}, "num_points");
    refuses("num_points_without_data", {PluginField("num_points", nullptr, PluginFieldType::kINT32, 1), goodW},
        "data");
    refuses("zero_num_points", {PluginField("num_points", &zero, PluginFieldType::kINT32, 1), goodW}, ">= 1");
    refuses("negative_num_points", {PluginField("num_points", &negative, PluginFieldType::kINT32, 1), goodW}, ">= 1");
    refuses("nan_w_dist", {goodN, PluginField("w_dist", &nan, PluginFieldType::kFLOAT32, 1)}, "finite");
    refuses("inf_w_dist", {goodN, PluginField("w_dist", &inf, PluginFieldType::kFLOAT32, 1)}, "finite");
    PluginFieldCollection const malformed{1, nullptr};
    PluginPtr p(creator->createPlugin("ps", &malformed, TensorRTPhase::kBUILD));
    check(p == nullptr && log.takeError("malformed"), "PointSelect.refuse_malformed_collection", log.lastError());
}

int32_t runDynamic(char const* path)
{
    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    check(handle != nullptr, "dlopen", handle == nullptr ? dlerror() : "");
    if (handle == nullptr)
    {
        return 1;
    }
    using GetCreators = IPluginCreatorInterface* const* (*) (int32_t&);
    using SetLoggerFinder = void (*)(ILoggerFinder*);
    auto getCreators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
    auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(handle, "setLoggerFinder"));
    check(getCreators != nullptr && setLoggerFinder != nullptr, "exports", "getCreators or setLoggerFinder missing");
    if (getCreators == nullptr || setLoggerFinder == nullptr)
    {
        return 1;
    }
    setLoggerFinder(&gFinder);
    int32_t nbCreators = -1;
    IPluginCreatorInterface* const* creators = getCreators(nbCreators);
    check(creators != nullptr && nbCreators == 2, "get_creators", "got " + std::to_string(nbCreators));
    if (creators == nullptr || nbCreators <= 0)
    {
        return 1;
    }
    for (int32_t i = 0; i < nbCreators; ++i)
    {
        InterfaceInfo const info = creators[i]->getInterfaceInfo();
        bool const v3 = std::strcmp(info.kind, "PLUGIN CREATOR_V3ONE") == 0 && info.major == 1;
        auto* c = static_cast<IPluginCreatorV3One*>(creators[i]);
        std::string const name = v3 ? c->getPluginName() : "creator" + std::to_string(i);
        check(v3, name + ".creator_kind", info.kind);
        if (v3)
        {
            std::printf("INFO creator %s version %s namespace %s\n", c->getPluginName(), c->getPluginVersion(),
                c->getPluginNamespace());
            check(std::strcmp(c->getPluginVersion(), "1") == 0, name + ".creator_version", c->getPluginVersion());
            check(std::strcmp(c->getPluginNamespace(), "instancevg") == 0, name + ".creator_namespace",
                c->getPluginNamespace());
        }
    }
    IPluginCreatorV3One* msda = findCreator(creators, nbCreators, "MSDeformAttn");
    IPluginCreatorV3One* pointSelect = findCreator(creators, nbCreators, "PointSelect");
    check(msda != nullptr && pointSelect != nullptr, "creator_names", "MSDeformAttn or PointSelect missing");
    if (msda != nullptr)
    {
        checkMSDeformAttn(msda);
    }
    if (pointSelect != nullptr)
    {
        checkPointSelect(pointSelect);
    }
    // Creators stay valid for the library's lifetime: only now is it unloaded.
    check(dlclose(handle) == 0, "dlclose");
    return gFailures;
}

void runStatic(char const* path)
{
    // Without libnvinfer in the process the weak getPluginRegistry is null: the library must load anyway.
    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    check(handle != nullptr, "static.dlopen_without_libnvinfer", handle == nullptr ? dlerror() : "");
    if (handle == nullptr)
    {
        return;
    }
    check(dlsym(handle, "getCreators") == nullptr, "static.no_getCreators_export",
        "loadLibrary would register the creators a second time");
    dlclose(handle);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2 || argc > 3)
    {
        std::fprintf(stderr, "usage: %s <libinstancevg_plugins.so> [<libinstancevg_plugins_static.so>]\n", argv[0]);
        return 2;
    }
    runDynamic(argv[1]);
    if (argc == 3)
    {
        runStatic(argv[2]);
    }
    std::printf("SUMMARY %d failure(s)\n", gFailures);
    return gFailures > 100 ? 100 : gFailures;
}
