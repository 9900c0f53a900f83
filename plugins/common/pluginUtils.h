/*
 * TensorRT-side helpers shared by the plugins: identity constants, logging through TensorRT's logger, readable
 * names for types and dims, and strict reading of creator fields.
 */
#ifndef INSTANCEVG_PLUGIN_UTILS_H
#define INSTANCEVG_PLUGIN_UTILS_H

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>

namespace instancevg
{
namespace plugin
{

constexpr char kPLUGIN_NAMESPACE[] = "instancevg";
constexpr char kPLUGIN_VERSION[] = "1";

//! Logger finder handed over by TensorRT (setLoggerFinder of the dynamic library).
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

//! Logger used when no finder was handed over (static registration: libnvinfer's getLogger()).
void setFallbackLogger(nvinfer1::ILogger* logger) noexcept;

//! Logs "[instancevg::<plugin>] <message>"; without any TensorRT logger, warnings and errors go to stderr.
void logMessage(nvinfer1::ILogger::Severity severity, char const* plugin, std::string const& message) noexcept;

inline void logError(char const* plugin, std::string const& message) noexcept
{
    logMessage(nvinfer1::ILogger::Severity::kERROR, plugin, message);
}

inline void logVerbose(char const* plugin, std::string const& message) noexcept
{
    logMessage(nvinfer1::ILogger::Severity::kVERBOSE, plugin, message);
}

char const* dataTypeName(nvinfer1::DataType type) noexcept;
char const* fieldTypeName(nvinfer1::PluginFieldType type) noexcept;
std::string dimsToString(nvinfer1::Dims const& dims);

//! Dims of a symbolic shape: constant extents, -1 where the extent is not a build-time constant.
nvinfer1::Dims constantDims(nvinfer1::DimsExprs const& dims) noexcept;

//! One scalar field a creator accepts. read copies it into dest when present.
struct FieldSpec
{
    char const* name;
    nvinfer1::PluginFieldType type; // kINT32 or kFLOAT32, length 1
    void* dest;
    bool found;
};

//! Reads fc into specs. Refuses (logs why, returns false): a field not in specs, a duplicate, a wrong type or
//! length, missing data, or a spec left unset.
bool readFields(char const* plugin, nvinfer1::PluginFieldCollection const* fc, FieldSpec* specs, int32_t nbSpecs) noexcept;

} // namespace plugin
} // namespace instancevg

#endif // INSTANCEVG_PLUGIN_UTILS_H
