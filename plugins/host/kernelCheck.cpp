/*
 * instancevg_kernel_check: small launches of both CUDA kernels through their launchers, for compute-sanitizer
 * (memcheck, racecheck, initcheck, synccheck). It takes every code path: MSDeformAttn in FP32, in FP16 with
 * paired (even D) and single channels, with locations outside the map, on its borders and NaN/inf;
 * PointSelect with the running distances in shared memory and in the workspace (a map too large for shared
 * memory), ties (a flat map) and a batch of several maps. Exits 0 when every launch and synchronisation
 * succeeded and every output is what the contract allows (finite MSDeformAttn outputs, valid distinct cells).
 */
#include "msDeformAttnPlugin/msDeformAttnKernel.cuh"
#include "pointSelectPlugin/pointSelectKernel.cuh"

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <vector>

using namespace instancevg::plugin;

namespace
{

int gFailures = 0;

void check(cudaError_t status, char const* what)
{
    if (status != cudaSuccess)
    {
        std::fprintf(stderr, "FAIL %s: %s\n", what, cudaGetErrorString(status));
        ++gFailures;
    }
}

void expect(bool ok, char const* what)
{
    if (!ok)
    {
        std::fprintf(stderr, "FAIL %s\n", what);
        ++gFailures;
    }
}

//! Deterministic uniform numbers in [low, high) (a 64-bit LCG): no <random> differences between compilers.
struct Uniform
{
    uint64_t state;
    float operator()(float low, float high)
    {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return low + (high - low) * static_cast<float>((state >> 40) & 0xFFFFFF) / 16777216.F;
    }
};

template <typename T>
T* toDevice(std::vector<T> const& host)
{
    T* device = nullptr;
    check(cudaMalloc(reinterpret_cast<void**>(&device), host.size() * sizeof(T)), "cudaMalloc");
    check(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
    return device;
}

template <typename T>
std::vector<T> toHost(T const* device, size_t count)
{
    std::vector<T> host(count);
    check(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
    return host;
}

void msDeformAttnCase(ScalarType type, int32_t channels)
{
    std::vector<int32_t> const shapes = {5, 7, 3, 3, 1, 4};
    std::vector<int32_t> const starts = {0, 35, 44};
    MSDeformAttnDims const dims{2, 48, 2, channels, 5, 3, 2};
    size_t const values = static_cast<size_t>(dims.batch) * dims.numValues * dims.numHeads * dims.channels;
    size_t const samples = static_cast<size_t>(dims.batch) * dims.numQueries * dims.numHeads * dims.numLevels
        * dims.numPoints;
    size_t const outputs = static_cast<size_t>(dims.batch) * dims.numQueries * dims.numHeads * dims.channels;
    Uniform uniform{static_cast<uint64_t>(channels) * 7919U + static_cast<uint64_t>(type)};
    std::vector<float> value(values), locations(2 * samples), weights(samples);
    for (float& v : value)
    {
        v = uniform(-2.F, 2.F);
    }
    for (size_t i = 0; i < locations.size(); ++i)
    {
        locations[i] = uniform(-0.3F, 1.3F); // a share lands outside the map
    }
    float const specials[] = {0.F, 1.F, -0.5F / 7.F, 1.F + 0.5F / 7.F, std::numeric_limits<float>::quiet_NaN(),
        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
    for (size_t i = 0; i < 7; ++i)
    {
        locations[3 * i] = specials[i]; // borders and non-finite coordinates
    }
    for (float& w : weights)
    {
        w = uniform(0.F, 0.25F);
    }
    int32_t* dShapes = toDevice(shapes);
    int32_t* dStarts = toDevice(starts);
    void *dValue, *dLocations, *dWeights, *dOut;
    size_t const elementBytes = type == ScalarType::kFLOAT32 ? 4 : 2;
    if (type == ScalarType::kFLOAT32)
    {
        dValue = toDevice(value);
        dLocations = toDevice(locations);
        dWeights = toDevice(weights);
    }
    else
    {
        auto half = [](std::vector<float> const& v) {
            std::vector<__half> h(v.size());
            for (size_t i = 0; i < v.size(); ++i)
            {
                h[i] = __float2half_rn(v[i]);
            }
            return h;
        };
        dValue = toDevice(half(value));
        dLocations = toDevice(half(locations));
        dWeights = toDevice(half(weights));
    }
    check(cudaMalloc(&dOut, outputs * elementBytes), "cudaMalloc out");
    check(launchMSDeformAttn(dims, type, dValue, dShapes, dStarts, dLocations, dWeights, dOut, nullptr),
        "MSDeformAttn launch");
    check(cudaDeviceSynchronize(), "MSDeformAttn run");
    bool finite = true;
    if (type == ScalarType::kFLOAT32)
    {
        for (float v : toHost(static_cast<float*>(dOut), outputs))
        {
            finite = finite && std::isfinite(v);
        }
    }
    else
    {
        for (__half v : toHost(static_cast<__half*>(dOut), outputs))
        {
            finite = finite && std::isfinite(__half2float(v));
        }
    }
    expect(finite, "MSDeformAttn outputs finite (NaN/inf locations contribute nothing)");
    for (void* p : {dValue, dLocations, dWeights, dOut, static_cast<void*>(dShapes), static_cast<void*>(dStarts)})
    {
        check(cudaFree(p), "cudaFree");
    }
}

void pointSelectCase(int32_t batch, int32_t height, int32_t width, int32_t numPoints, bool flat)
{
    size_t const cells = static_cast<size_t>(height) * width;
    Uniform uniform{cells + static_cast<uint64_t>(batch)};
    std::vector<float> scores(batch * cells);
    for (float& s : scores)
    {
        s = flat ? 0.5F : 0.5F + uniform(0.F, 3e-3F);
    }
    float* dScores = toDevice(scores);
    int32_t* dIndices = nullptr;
    float* dPoints = nullptr;
    void* dWorkspace = nullptr;
    check(cudaMalloc(reinterpret_cast<void**>(&dIndices), batch * numPoints * sizeof(int32_t)), "cudaMalloc indices");
    check(cudaMalloc(reinterpret_cast<void**>(&dPoints), batch * numPoints * 2 * sizeof(float)), "cudaMalloc points");
    size_t const workspace = pointSelectWorkspaceSize(batch, height, width);
    if (workspace > 0)
    {
        check(cudaMalloc(&dWorkspace, workspace), "cudaMalloc workspace");
    }
    check(launchPointSelect(dScores, batch, height, width, numPoints, 0.003F, dWorkspace, dIndices, dPoints, nullptr),
        "PointSelect launch");
    check(cudaDeviceSynchronize(), "PointSelect run");
    std::vector<int32_t> const indices = toHost(dIndices, batch * numPoints);
    for (int32_t b = 0; b < batch; ++b)
    {
        std::set<int32_t> distinct(indices.begin() + b * numPoints, indices.begin() + (b + 1) * numPoints);
        bool valid = static_cast<int32_t>(distinct.size()) == numPoints && *distinct.begin() >= 0
            && *distinct.rbegin() < static_cast<int32_t>(cells);
        expect(valid, "PointSelect picks distinct cells of the map");
        if (flat)
        {
            expect(indices[b * numPoints] == 0, "PointSelect breaks a tie towards the first cell");
        }
    }
    for (void* p : {static_cast<void*>(dScores), static_cast<void*>(dIndices), static_cast<void*>(dPoints), dWorkspace})
    {
        if (p != nullptr)
        {
            check(cudaFree(p), "cudaFree");
        }
    }
}

} // namespace

int main()
{
    int32_t devices = 0;
    cudaError_t const status = cudaGetDeviceCount(&devices);
    if (status != cudaSuccess || devices == 0)
    {
        std::fprintf(stderr, "no usable CUDA device: %s\n", status != cudaSuccess ? cudaGetErrorString(status) : "none");
        return 2;
    }
    msDeformAttnCase(ScalarType::kFLOAT32, 3);
    msDeformAttnCase(ScalarType::kFLOAT16, 4); // half2 pairs
    msDeformAttnCase(ScalarType::kFLOAT16, 3); // single halves
    pointSelectCase(3, 5, 6, 4, false);        // shared memory
    pointSelectCase(2, 20, 20, 10, true);      // ties everywhere
    pointSelectCase(2, 128, 129, 3, false);    // 16512 cells: the workspace path
    std::printf("%s: %d failure(s)\n", gFailures == 0 ? "ok" : "FAILED", gFailures);
    return gFailures == 0 ? 0 : 1;
}
