/*
 * Entry points of libinstancevg_plugins.so for IPluginRegistry::loadLibrary (trtexec --dynamicPlugins,
 * trt.get_plugin_registry().load_library, plugins serialized into version-compatible engines). The library
 * registers nothing by itself: TensorRT registers what getCreators returns and can deregister it again.
 */
#include "api/pluginCreators.h"
#include "common/pluginUtils.h"

#include <NvInferRuntime.h>

extern "C" {

__attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    instancevg::plugin::setLoggerFinder(finder);
}

__attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    return instancevg::plugin::pluginCreators(nbCreators);
}

} // extern "C"
