/*
 * The creators of this library, shared by its two ways of registering them.
 */
#ifndef INSTANCEVG_PLUGIN_CREATORS_H
#define INSTANCEVG_PLUGIN_CREATORS_H

#include <NvInferRuntime.h>

namespace instancevg
{
namespace plugin
{

//! MSDeformAttn and PointSelect creators, alive for the lifetime of the library.
nvinfer1::IPluginCreatorInterface* const* pluginCreators(int32_t& nbCreators) noexcept;

} // namespace plugin
} // namespace instancevg

#endif // INSTANCEVG_PLUGIN_CREATORS_H
