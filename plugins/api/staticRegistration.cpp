/*
 * Self-registration of libinstancevg_plugins_static.so, for loaders that only dlopen (trtexec --staticPlugins,
 * Polygraphy --plugins, ctypes.CDLL after libnvinfer was loaded with RTLD_GLOBAL).
 *
 * This lives in its own library on purpose: IPluginRegistry::loadLibrary fails when any creator of the library
 * is already registered, so a library that registered itself on load and also exported getCreators would break
 * trtexec --dynamicPlugins (trtexec links libnvinfer, so the self-registration would always run first).
 *
 * getPluginRegistry and getLogger are weak references: when libnvinfer is not in the process's global scope the
 * library still loads, and says on stderr that nothing was registered.
 */
#include "api/pluginCreators.h"
#include "common/pluginUtils.h"

#include <NvInferRuntime.h>

#include <cstdio>

#pragma weak getPluginRegistry
#pragma weak getLogger

namespace
{

struct StaticRegistration
{
    StaticRegistration() noexcept
    {
        using namespace instancevg::plugin;
        if (&getPluginRegistry == nullptr || getPluginRegistry() == nullptr)
        {
            std::fprintf(stderr,
                "[instancevg] libinstancevg_plugins_static.so: no TensorRT plugin registry in this process "
                "(libnvinfer not loaded globally); nothing registered. Load libinstancevg_plugins.so with "
                "IPluginRegistry::loadLibrary instead.\n");
            return;
        }
        if (&getLogger != nullptr)
        {
            setFallbackLogger(getLogger());
        }
        nvinfer1::IPluginRegistry* registry = getPluginRegistry();
        int32_t nbCreators = 0;
        nvinfer1::IPluginCreatorInterface* const* creators = pluginCreators(nbCreators);
        for (int32_t i = 0; i < nbCreators; ++i)
        {
            auto* creator = static_cast<nvinfer1::IPluginCreatorV3One*>(creators[i]);
            if (registry->getCreator(creator->getPluginName(), kPLUGIN_VERSION, kPLUGIN_NAMESPACE) != nullptr)
            {
                logMessage(nvinfer1::ILogger::Severity::kWARNING, creator->getPluginName(),
                    "already registered (library loaded twice?): keeping the registered creator");
                continue;
            }
            if (!registry->registerCreator(*creators[i], kPLUGIN_NAMESPACE))
            {
                logError(creator->getPluginName(), "IPluginRegistry::registerCreator failed");
            }
        }
    }
};

StaticRegistration const gStaticRegistration;

} // namespace
