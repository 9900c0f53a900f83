#include "pluginUtils.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace instancevg
{
namespace plugin
{
namespace
{

std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};
std::atomic<nvinfer1::ILogger*> gFallbackLogger{nullptr};

nvinfer1::ILogger* currentLogger() noexcept
{
    // Ask the finder every time: TensorRT may route plugin logs to the logger of the builder or runtime in use.
    if (nvinfer1::ILoggerFinder* finder = gLoggerFinder.load())
    {
        if (nvinfer1::ILogger* logger = finder->findLogger())
        {
            return logger;
        }
    }
    return gFallbackLogger.load();
}

} // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    gLoggerFinder.store(finder);
}

void setFallbackLogger(nvinfer1::ILogger* logger) noexcept
{
    gFallbackLogger.store(logger);
}

void logMessage(nvinfer1::ILogger::Severity severity, char const* plugin, std::string const& message) noexcept
{
    try
    {
        std::string const text = std::string("[") + kPLUGIN_NAMESPACE + "::" + plugin + "] " + message;
        if (nvinfer1::ILogger* logger = currentLogger())
        {
            logger->log(severity, text.c_str());
        }
        else if (severity <= nvinfer1::ILogger::Severity::kWARNING)
        {
            std::fprintf(stderr, "%s\n", text.c_str());
        }
    }
    catch (...)
    {
        // Logging must never turn a refusal into a crash.
    }
}

char const* dataTypeName(nvinfer1::DataType type) noexcept
{
    switch (type)
    {
    case nvinfer1::DataType::kFLOAT: return "float32";
    case nvinfer1::DataType::kHALF: return "float16";
    case nvinfer1::DataType::kBF16: return "bfloat16";
    case nvinfer1::DataType::kINT8: return "int8";
    case nvinfer1::DataType::kINT32: return "int32";
    case nvinfer1::DataType::kINT64: return "int64";
    case nvinfer1::DataType::kBOOL: return "bool";
    case nvinfer1::DataType::kUINT8: return "uint8";
    default: return "an unsupported type";
    }
}

char const* fieldTypeName(nvinfer1::PluginFieldType type) noexcept
{
    switch (type)
    {
    case nvinfer1::PluginFieldType::kFLOAT16: return "float16";
    case nvinfer1::PluginFieldType::kFLOAT32: return "float32";
    case nvinfer1::PluginFieldType::kFLOAT64: return "float64";
    case nvinfer1::PluginFieldType::kINT8: return "int8";
    case nvinfer1::PluginFieldType::kINT16: return "int16";
    case nvinfer1::PluginFieldType::kINT32: return "int32";
    case nvinfer1::PluginFieldType::kINT64: return "int64";
    case nvinfer1::PluginFieldType::kCHAR: return "char";
    case nvinfer1::PluginFieldType::kDIMS: return "dims";
    default: return "another type";
    }
}

std::string dimsToString(nvinfer1::Dims const& dims)
{
    std::ostringstream os;
    os << "[";
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        os << (i ? "," : "") << dims.d[i];
    }
    os << "]";
    return os.str();
}

nvinfer1::Dims constantDims(nvinfer1::DimsExprs const& dims) noexcept
{
    nvinfer1::Dims out{};
    out.nbDims = dims.nbDims;
    for (int32_t i = 0; i < dims.nbDims && i < nvinfer1::Dims::MAX_DIMS; ++i)
    {
        out.d[i] = dims.d[i] != nullptr && dims.d[i]->isConstant() ? dims.d[i]->getConstantValue() : -1;
    }
    return out;
}

bool readFields(char const* plugin, nvinfer1::PluginFieldCollection const* fc, FieldSpec* specs, int32_t nbSpecs) noexcept
{
    try
    {
        int32_t const nbFields = fc != nullptr ? fc->nbFields : 0;
        if (nbFields < 0 || (nbFields > 0 && fc->fields == nullptr))
        {
            logError(plugin, "refusing a malformed field collection (nbFields " + std::to_string(nbFields) + ")");
            return false;
        }
        for (int32_t i = 0; i < nbFields; ++i)
        {
            nvinfer1::PluginField const& field = fc->fields[i];
            std::string const name = field.name != nullptr ? field.name : "<null>";
            FieldSpec* spec = nullptr;
            for (int32_t j = 0; j < nbSpecs; ++j)
            {
                if (field.name != nullptr && std::strcmp(field.name, specs[j].name) == 0)
                {
                    spec = &specs[j];
                }
            }
            if (spec == nullptr)
            {
                std::string known;
                for (int32_t j = 0; j < nbSpecs; ++j)
                {
                    known += (j ? ", " : "") + std::string(specs[j].name);
                }
                logError(plugin,
                    "refusing unknown field '" + name + "' (fields: " + (known.empty() ? "none" : known) + ")");
                return false;
            }
            if (spec->found)
            {
                logError(plugin, "refusing field '" + name + "' given twice");
                return false;
            }
            if (field.type != spec->type || field.length != 1 || field.data == nullptr)
            {
                logError(plugin,
                    "refusing field '" + name + "': expected one " + fieldTypeName(spec->type) + ", got "
                        + std::to_string(field.length) + " x " + fieldTypeName(field.type)
                        + (field.data == nullptr ? " without data" : ""));
                return false;
            }
            std::memcpy(spec->dest, field.data, 4); // kINT32 and kFLOAT32 are both 4 bytes
            spec->found = true;
        }
        for (int32_t j = 0; j < nbSpecs; ++j)
        {
            if (!specs[j].found)
            {
                logError(plugin, std::string("refusing: field '") + specs[j].name + "' is missing");
                return false;
            }
        }
        return true;
    }
    catch (...)
    {
        return false;
    }
}

} // namespace plugin
} // namespace instancevg
