// swift-tools-version: 6.1
//
// A client of SSMKit: depends on it as any package would (here by path; from elsewhere by its
// git URL), and trains an S4D model on the bundled 8×8 digits by `import`.

import PackageDescription

let package = Package(
    name: "Digits",
    dependencies: [
        .package(name: "SSMKit", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "Digits",
            dependencies: [
                .product(name: "SSMKit", package: "SSMKit"),
                .product(name: "SSMTraining", package: "SSMKit"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
