// swift-tools-version: 6.1
import PackageDescription

import class Foundation.ProcessInfo

// Dependencies point downward only: canon → CanonServer → CasePlatform → Canon.
// Engines (CanonSQLite, later CanonPostgres) depend on Canon alone and are chosen at start-up.
let package = Package(
    name: "Canon",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "canon", targets: ["canon"]),
        .library(name: "Canon", targets: ["Canon"]),
        .library(name: "CanonSQLite", targets: ["CanonSQLite"]),
        .library(name: "CanonPostgres", targets: ["CanonPostgres"]),
        .library(name: "CasePlatform", targets: ["CasePlatform"]),
        .library(name: "CanonServer", targets: ["CanonServer"]),
        .library(name: "CanonEmbedded", targets: ["CanonEmbedded"]),
        .library(name: "CanonTesting", targets: ["CanonTesting"]),
        .library(name: "Embeddings", targets: ["Embeddings"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
    ],
    targets: [
        .target(
            name: "Canon",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // SQLite settings made before SQLite initializes (sqlite3_config is variadic: C only).
        .target(name: "CSQLiteTuning", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(
            name: "CanonSQLite",
            dependencies: [
                "Canon", "CSQLiteTuning", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // The scale-out engine: canonical store, outbox, projections and leases on PostgreSQL 15.
        .target(
            name: "CanonPostgres",
            dependencies: [
                "Canon",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "CasePlatform",
            dependencies: ["Canon", .product(name: "Crypto", package: "swift-crypto")],
            // The shipped portfolio is compiled into the binary; `portfolio.yaml` at the root links to it.
            resources: [.embedInCode("Portfolio/portfolio.yaml")]
        ),
        .target(
            name: "CanonServer",
            dependencies: [
                "Canon", "CasePlatform",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "CanonEmbedded",
            dependencies: [
                "Canon", "CanonSQLite", "CanonPostgres", "CasePlatform", "CanonServer", "Embeddings",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // OpenBLAS's CBLAS (apt: libopenblas-dev) for the embedding model's matrix products.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", providers: [.apt(["libopenblas-dev"])]),
        // Sentence embeddings in pure Swift; no dependency on the domain or the server.
        .target(
            name: "Embeddings",
            dependencies: ["CBLAS", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "CanonTesting",
            dependencies: ["Canon", "CanonSQLite", "CanonPostgres", "CasePlatform"]
        ),
        .executableTarget(
            name: "canon",
            dependencies: [
                "Canon", "CanonSQLite", "CasePlatform", "CanonServer", "CanonEmbedded", "Embeddings",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(
            name: "CanonTests",
            dependencies: ["Canon", "CanonTesting", "CanonSQLite", "CasePlatform", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "CanonSQLiteTests", dependencies: ["CanonSQLite", "CanonTesting", "CasePlatform", "CanonEmbedded", "Embeddings", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "CasePlatformTests", dependencies: ["CasePlatform", "CanonSQLite", "CanonTesting"]),
        .testTarget(name: "EmbeddingsTests", dependencies: ["Embeddings"]),
        .testTarget(
            name: "CanonPostgresTests",
            dependencies: ["Canon", "CanonPostgres", "CanonTesting", "CasePlatform", .product(name: "PostgresNIO", package: "postgres-nio")]),
        .testTarget(
            name: "CanonServerTests",
            dependencies: [
                "CanonServer", "CasePlatform", "CanonSQLite", "CanonTesting", "CanonEmbedded", "Embeddings",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
    ]
)

// Benchmarks (package-benchmark) build only when asked, so the test build stays lean:
//   CANON_BENCHMARKS=1 swift package --scratch-path .build-bench benchmark
// `scripts/bench` does exactly that.
if ProcessInfo.processInfo.environment["CANON_BENCHMARKS"] != nil {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]))
    package.targets.append(
        .executableTarget(
            name: "CanonicalStoreBenchmarks",
            dependencies: [
                "Canon", "CanonSQLite", "CasePlatform",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Benchmarks/CanonicalStoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]))
}
