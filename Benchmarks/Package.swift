// swift-tools-version: 6.1
//
// SSMKit's benchmark suites (ordo-one/package-benchmark), in a nested package so that users of
// SSMKit never build them. Run from this folder:
//
//     swift package benchmark                       # all suites
//     swift package benchmark --filter 'conv.*'     # one family
//     swift package benchmark baseline update main  # record a baseline
//     swift package benchmark baseline compare main # compare the working tree with it

import PackageDescription

/// One suite: an executable target under Benchmarks/<name> run by the benchmark plugin.
func suite(_ name: String) -> Target {
    .executableTarget(
        name: name,
        dependencies: [
            .product(name: "SSMKit", package: "SSMKit"),
            .product(name: "SSMTraining", package: "SSMKit"),
            .product(name: "Benchmark", package: "benchmark"),
        ],
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

let package = Package(
    name: "SSMKitBenchmarks",
    dependencies: [
        .package(name: "SSMKit", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: ["ConvolutionBenchmarks", "KernelBenchmarks", "SelectiveScanBenchmarks", "StepEngineBenchmarks",
              "TrainingBenchmarks"].map(suite),
    swiftLanguageModes: [.v6]
)
