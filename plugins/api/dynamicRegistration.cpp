/*
 * Entry points of libinstancevg_plugins.so for IPluginRegistry::loadLibrary (trtexec --dynamicPlugins,
 * trt.get_plugin_registry().load_library, plugins serialized into version-compatible engines). The library
 * registers nothing by itself: TensorRT registers what getCreators returns and can deregister it again.
 */
#include "api/pluginCreators.h"
#include "common/pluginUtils.h"

#include <NvInferRuntime.h>
#include <NvInferVersion.h>

#define INSTANCEVG_STR_(x) #x
#define INSTANCEVG_STR(x) INSTANCEVG_STR_(x)

extern "C" {

//! The TensorRT version whose headers this library was compiled against ("10.14.1"): engines are refused to
//! load a library built for another major (TensorRT 11 renumbered enums and removed APIs).
__attribute__((visibility("default"))) char const* instancevgPluginsTensorRTVersion()
{
    return INSTANCEVG_STR(NV_TENSORRT_MAJOR) "." INSTANCEVG_STR(NV_TENSORRT_MINOR) "." INSTANCEVG_STR(
        NV_TENSORRT_PATCH);
}

__attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    instancevg::plugin::setLoggerFinder(finder);
}

__attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    return instancevg::plugin::pluginCreators(nbCreators);
}

} // extern "C"
