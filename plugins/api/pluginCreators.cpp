#include "pluginCreators.h"

#include "msDeformAttnPlugin/msDeformAttnPlugin.h"
#include "pointSelectPlugin/pointSelectPlugin.h"

namespace instancevg
{
namespace plugin
{

nvinfer1::IPluginCreatorInterface* const* pluginCreators(int32_t& nbCreators) noexcept
{
    static MSDeformAttnPluginCreator msDeformAttnCreator;
    static PointSelectPluginCreator pointSelectCreator;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&msDeformAttnCreator, &pointSelectCreator};
    nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
    return creators;
}

} // namespace plugin
} // namespace instancevg
