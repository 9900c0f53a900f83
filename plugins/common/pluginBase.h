/*
 * What every IPluginV3 plugin of this library and its IPluginCreatorV3One creator implement the same way, written
 * once (CRTP). A plugin class Derived provides:
 *
 *   static constexpr char kNAME[]            plugin name (= ONNX op_type)
 *   static constexpr int32_t kNB_INPUTS      number of inputs
 *   static constexpr int32_t kNB_OUTPUTS     number of outputs
 *   a copy constructor                       used by clone() and attachToContext()
 *
 * and the methods that differ per plugin (types, shapes, formats, configure, workspace, enqueue, serialization).
 * Namespace and version are this library's (kPLUGIN_NAMESPACE, kPLUGIN_VERSION).
 */
#ifndef INSTANCEVG_PLUGIN_BASE_H
#define INSTANCEVG_PLUGIN_BASE_H

#include "common/pluginUtils.h"

#include <NvInferRuntime.h>

#include <cstdint>
#include <new>
#include <string>

namespace instancevg
{
namespace plugin
{

//! Interface (IPluginV3OneCore or IPluginCreatorV3One) with the name, version and namespace of Plugin.
template <typename Interface, typename Plugin>
class PluginIdentity : public Interface
{
public:
    char const* getPluginName() const noexcept override
    {
        return Plugin::kNAME;
    }

    char const* getPluginVersion() const noexcept override
    {
        return kPLUGIN_VERSION;
    }

    char const* getPluginNamespace() const noexcept override
    {
        return kPLUGIN_NAMESPACE;
    }

protected:
    PluginIdentity() = default;
    PluginIdentity(PluginIdentity const&) = default;
    PluginIdentity& operator=(PluginIdentity const&) = delete;
    ~PluginIdentity() override = default;
};

template <typename Derived>
class PluginV3Base : public nvinfer1::IPluginV3,
                     public PluginIdentity<nvinfer1::IPluginV3OneCore, Derived>,
                     public nvinfer1::IPluginV3OneBuild,
                     public nvinfer1::IPluginV3OneRuntime
{
public:
    PluginV3Base& operator=(PluginV3Base const&) = delete;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override
    {
        switch (type)
        {
        case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
        case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
        case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
        }
        return nullptr;
    }

    nvinfer1::IPluginV3* clone() noexcept override
    {
        return new (std::nothrow) Derived(static_cast<Derived const&>(*this));
    }

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override
    {
        return Derived::kNB_OUTPUTS;
    }

    // IPluginV3OneRuntime: no per-context resources, the clone serves the new context.
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept override
    {
        return clone();
    }

protected:
    PluginV3Base() = default;
    PluginV3Base(PluginV3Base const&) = default;
    ~PluginV3Base() override = default;

    //! Whether TensorRT passes the plugin's numbers of inputs and outputs; logs the refusal when not.
    static bool countsOk(int32_t nbInputs, int32_t nbOutputs) noexcept
    {
        if (nbInputs == Derived::kNB_INPUTS && nbOutputs == Derived::kNB_OUTPUTS)
        {
            return true;
        }
        try
        {
            auto count = [](int32_t n, char const* what) {
                return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
            };
            logError(Derived::kNAME,
                "expects " + count(Derived::kNB_INPUTS, "input") + " and " + count(Derived::kNB_OUTPUTS, "output")
                    + ", got " + std::to_string(nbInputs) + " and " + std::to_string(nbOutputs));
        }
        catch (...)
        {
        }
        return false;
    }

    //! Whether why is empty (the check passed); logs it as the refusal when not.
    static bool accepted(std::string const& why) noexcept
    {
        if (why.empty())
        {
            return true;
        }
        logError(Derived::kNAME, why);
        return false;
    }
};

//! Creator of Plugin: Plugin's identity, and the field names the derived creator publishes with setFieldNames
//! (none by default).
template <typename Plugin>
class PluginCreatorV3Base : public PluginIdentity<nvinfer1::IPluginCreatorV3One, Plugin>
{
public:
    PluginCreatorV3Base(PluginCreatorV3Base const&) = delete;

    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override
    {
        return &mFieldNames;
    }

protected:
    PluginCreatorV3Base() = default;
    ~PluginCreatorV3Base() override = default;

    //! fields must live as long as the creator (a member of the derived creator).
    void setFieldNames(nvinfer1::PluginField const* fields, int32_t nbFields) noexcept
    {
        mFieldNames.nbFields = nbFields;
        mFieldNames.fields = fields;
    }

private:
    nvinfer1::PluginFieldCollection mFieldNames{0, nullptr};
};

} // namespace plugin
} // namespace instancevg

#endif // INSTANCEVG_PLUGIN_BASE_H
